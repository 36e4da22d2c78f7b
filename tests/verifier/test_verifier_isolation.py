"""The proof library stays usable on its own: importing it pulls in no API, web or chain-client code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from tests.source_imports import top_level_imports

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


#: Third-party imports the verifier may make, by distribution its own pyproject.toml must declare.
DISTRIBUTIONS = {"sha3": "safe-pysha3", "coincurve": "coincurve", "cryptography": "cryptography"}
VERIFIER = Path(__file__).resolve().parents[2] / "verifier"


def test_every_import_is_the_standard_library_or_a_declared_dependency() -> None:
    declared = tomllib.loads((VERIFIER / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0] for d in declared["dependencies"]}
    for source in sorted(VERIFIER.glob("*.py")):
        outside = top_level_imports(source) - set(sys.stdlib_module_names) - {"__future__", "verifier"}
        assert outside <= set(DISTRIBUTIONS), (source.name, sorted(outside - set(DISTRIBUTIONS)))
        assert {DISTRIBUTIONS[m] for m in outside} <= required, (source.name, outside)


def test_the_package_alone_imports_and_works_without_the_project(tmp_path: Path) -> None:
    """What `pip install ./verifier` installs (its modules and the package data its pyproject.toml names),
    where nothing of dxl can be imported (no site-packages processing, so not the editable install either),
    loads every module and its data files."""
    config = tomllib.loads((VERIFIER / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert (config["package-dir"], config["packages"]) == ({"verifier": "."}, ["verifier"])
    site = tmp_path / "site"
    (site / "verifier").mkdir(parents=True)
    for name in [p.name for p in VERIFIER.glob("*.py")] + config["package-data"]["verifier"]:
        shutil.copy(VERIFIER / name, site / "verifier" / name)
    modules = sorted(f"verifier.{p.stem}" for p in VERIFIER.glob("*.py") if p.stem != "__init__")
    check = (
        "import importlib, json, sys\n"
        f"mods = [importlib.import_module(m) for m in {modules!r}]\n"
        "from verifier.onchain import load_ledger_abi\n"
        "from verifier.sampling import load_practice_abi\n"
        "from verifier.receipts import Receipt, batch_root\n"
        "assert load_ledger_abi() and load_practice_abi()\n"
        "r = Receipt(bytes(32), 1, bytes(32), 1, 2, 3)\n"
        "assert batch_root([r.leaf_hash()]) == r.leaf_hash()\n"
        "loaded = {n.split('.')[0] for n in sys.modules} & {'node', 'api', 'dxl'}\n"
        "assert not loaded, loaded\n"
        "print(json.dumps([m.__file__ for m in mods]))"
    )
    purelib = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": os.pathsep.join([str(site), purelib]), "PATH": os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-S", "-c", check], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert all(f.startswith(str(site)) for f in json.loads(done.stdout))
    # Nothing of the project is reachable there: an import of it would have failed the check above.
    probe = subprocess.run([sys.executable, "-S", "-c", "import node"], cwd=tmp_path, env=env,
                           capture_output=True, timeout=60)  # fmt: skip
    assert probe.returncode != 0
