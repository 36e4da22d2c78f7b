"""The proof library stays usable on its own: importing it pulls in no API, web or chain-client code."""

from __future__ import annotations

import json
import subprocess
import sys

LIBRARY = ["verifier.hashing", "verifier.tree", "verifier.leaves", "verifier.commitment", "verifier.manifest",
           "verifier.verify"]  # fmt: skip
FORBIDDEN = ("api", "fastapi", "starlette", "uvicorn", "httpx", "web3", "sqlalchemy", "typer", "rich")


def test_library_imports_nothing_web_related() -> None:
    code = (
        f"import importlib, json, sys\nfor m in {LIBRARY!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
