"""Write ``verifier/ledger-abi.json``: the ledger functions and events the on-chain check reads.

The verifier ships them as package data so that an auditor's installed copy needs no ``contracts/`` tree. The
file is generated from ``contracts/artifacts/DataExchangeLedger.json``, never edited: run this script after
``dxl compile`` when the entries below change; ``tests/verifier/test_onchain.py`` fails while it is stale.

Usage: ``.venv/bin/python scripts/verifier-abi.py`` (write) or ``... --check`` (exit 1 if stale).
"""

from __future__ import annotations

import argparse
import json
import sys

from node.paths import ARTIFACTS_DIR
from verifier.onchain import LEDGER_ABI_FILE, LEDGER_ABI_NAMES


def expected() -> str:
    """The file's content: the artifact's entries named in :data:`verifier.onchain.LEDGER_ABI_NAMES`."""
    abi = json.loads((ARTIFACTS_DIR / "DataExchangeLedger.json").read_text(encoding="utf-8"))["abi"]
    entries = [e for e in abi if e.get("name") in LEDGER_ABI_NAMES and e.get("type") in ("function", "event")]
    missing = set(LEDGER_ABI_NAMES) - {e["name"] for e in entries}
    if missing:
        raise SystemExit(f"the ledger artifact has no {', '.join(sorted(missing))}")
    return json.dumps(sorted(entries, key=lambda e: (e["type"], e["name"])), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the shipped file is stale")
    want = expected()
    if parser.parse_args().check:
        have = LEDGER_ABI_FILE.read_text(encoding="utf-8") if LEDGER_ABI_FILE.is_file() else ""
        if have != want:
            print(
                f"{LEDGER_ABI_FILE} is stale: run .venv/bin/python scripts/verifier-abi.py", file=sys.stderr
            )
            return 1
        return 0
    LEDGER_ABI_FILE.write_text(want, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
