"""Write the ABI files the verifier ships: ``verifier/ledger-abi.json`` (the ledger functions and events the
on-chain check reads), ``verifier/anchors-abi.json`` (the receipt anchors entries the receipt check reads) and
``verifier/practice-abi.json`` (the sharing practice entries the sample derivation reads).

The verifier ships them as package data so that an auditor's installed copy needs no ``contracts/`` tree. They
are generated from ``contracts/artifacts/``, never edited: run this script after ``dxl compile`` when the
entries change; ``make lint`` and ``tests/verifier/test_onchain.py`` fail while they are stale.

Usage: ``.venv/bin/python scripts/verifier-abi.py`` (write) or ``... --check`` (exit 1 if stale).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from node.paths import ARTIFACTS_DIR
from verifier.onchain import LEDGER_ABI_FILE, LEDGER_ABI_NAMES
from verifier.receipt_check import ANCHORS_ABI_FILE, ANCHORS_ABI_NAMES
from verifier.sampling import PRACTICE_ABI_FILE, PRACTICE_ABI_NAMES

#: Shipped file -> (artifact it is cut from, entry names).
FILES: dict[Path, tuple[str, Sequence[str]]] = {
    LEDGER_ABI_FILE: ("DataExchangeLedger", LEDGER_ABI_NAMES),
    ANCHORS_ABI_FILE: ("ReceiptAnchors", ANCHORS_ABI_NAMES),
    PRACTICE_ABI_FILE: ("SharingPractice", PRACTICE_ABI_NAMES),
}


def expected(artifact: str = "DataExchangeLedger", names: Sequence[str] = LEDGER_ABI_NAMES) -> str:
    """A file's content: the artifact's functions and events named in ``names``."""
    abi = json.loads((ARTIFACTS_DIR / f"{artifact}.json").read_text(encoding="utf-8"))["abi"]
    entries = [e for e in abi if e.get("name") in names and e.get("type") in ("function", "event")]
    missing = set(names) - {e["name"] for e in entries}
    if missing:
        raise SystemExit(f"the {artifact} artifact has no {', '.join(sorted(missing))}")
    return json.dumps(sorted(entries, key=lambda e: (e["type"], e["name"])), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a shipped file is stale")
    check = parser.parse_args().check
    stale = False
    for path, (artifact, names) in FILES.items():
        want = expected(artifact, names)
        if not check:
            path.write_text(want, encoding="utf-8")
        elif (path.read_text(encoding="utf-8") if path.is_file() else "") != want:
            print(f"{path} is stale: run .venv/bin/python scripts/verifier-abi.py", file=sys.stderr)
            stale = True
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
