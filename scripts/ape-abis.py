"""Write plain ABI files for ape (``contracts/abi/<Contract>.json``) from ``contracts/artifacts/*.json``.

ape cannot fetch a solc here, so it reads the contracts' interfaces through its built-in JSON ABI compiler
instead of compiling ``contracts/src``. The ABI files are generated, never edited: run this script after
``dxl compile`` and commit the result; ``tests/node/test_ape_config.py`` fails while they are out of sync.

Usage: ``.venv/bin/python scripts/ape-abis.py`` (write) or ``... --check`` (exit 1 if any file is stale).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from node.errors import ConfigurationError
from node.paths import ARTIFACTS_DIR, CONTRACTS_DIR

ABI_DIR = CONTRACTS_DIR / "abi"
# The solc standard-JSON bundle sits beside the per-contract artifacts but describes no single contract.
_NOT_A_CONTRACT = frozenset({"build-info.json"})


def expected_abis(artifacts_dir: Path = ARTIFACTS_DIR) -> dict[str, str]:
    """The ABI file contents ape should read, by file name, for every artifact with a non-empty ABI.

    Libraries without external functions (empty ABI) are left out: ape would only list them as empty types.

    Raises:
        ConfigurationError: the artifacts directory is missing, or an artifact is not JSON or has no
            ``abi`` list.
    """
    if not artifacts_dir.is_dir():
        raise ConfigurationError(f"no artifacts directory at {artifacts_dir}; run `dxl compile` first")
    abis: dict[str, str] = {}
    for artifact in sorted(artifacts_dir.glob("*.json")):
        if artifact.name in _NOT_A_CONTRACT:
            continue
        try:
            abi = json.loads(artifact.read_text(encoding="utf-8"))["abi"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"{artifact} is not a contract artifact with an 'abi' list: {exc}"
            ) from exc
        if not isinstance(abi, list):
            raise ConfigurationError(f"{artifact}: 'abi' is a {type(abi).__name__}, expected a list")
        if abi:
            abis[artifact.name] = json.dumps(abi, indent=2, sort_keys=True) + "\n"
    return abis


def stale_files(abi_dir: Path = ABI_DIR, artifacts_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Names of ABI files that are missing, differ from their artifact, or have no artifact any more.

    Raises:
        ConfigurationError: as :func:`expected_abis`.
    """
    want = expected_abis(artifacts_dir)
    have = {p.name: p.read_text(encoding="utf-8") for p in abi_dir.glob("*.json")} if abi_dir.is_dir() else {}
    return sorted(name for name in want.keys() | have.keys() if want.get(name) != have.get(name))


def write_abis(abi_dir: Path = ABI_DIR, artifacts_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Bring ``abi_dir`` in line with the artifacts; returns the names written or removed.

    Raises:
        ConfigurationError: as :func:`expected_abis`.
    """
    want = expected_abis(artifacts_dir)
    changed = stale_files(abi_dir, artifacts_dir)
    abi_dir.mkdir(parents=True, exist_ok=True)
    for name in changed:
        target = abi_dir / name
        if name in want:
            target.write_text(want[name], encoding="utf-8")
        else:
            target.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files; exit 1 if any")
    args = parser.parse_args(argv)
    try:
        names = stale_files() if args.check else write_abis()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verb = "stale" if args.check else "updated"
    for name in names:
        print(f"{verb}: {ABI_DIR.relative_to(CONTRACTS_DIR.parent) / name}")
    return 1 if args.check and names else 0


if __name__ == "__main__":
    sys.exit(main())
