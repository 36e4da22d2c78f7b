"""``scripts/build-geth.sh`` without Go: `make test` goes on with the network tests skipped, saying why; CI
(``GETH_REQUIRED=1``, as ``.ci/run`` sets it) fails instead of passing without having run them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: What the script runs before it looks for Go (``env`` finds bash for the shebang).
TOOLS = ("env", "bash", "dirname", "mkdir", "rm")


@pytest.fixture
def checkout_without_go(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the script in a checkout with no geth built, and an environment whose PATH has no ``go``."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(PROJECT_ROOT / "scripts" / "build-geth.sh", tmp_path / "scripts")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if k != "GETH_REQUIRED"} | {"PATH": str(bin_dir)}
    return tmp_path / "scripts" / "build-geth.sh", env


def test_without_go_the_network_tests_are_skipped_saying_why(
    checkout_without_go: tuple[Path, dict[str, str]],
) -> None:
    script, env = checkout_without_go
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("network tests skipped: no Go toolchain on PATH"), done.stdout
    recorded = (script.parent.parent / ".tools" / "geth.unavailable").read_text()
    assert recorded.startswith("no Go toolchain on PATH to build geth v1.13.15")


def test_geth_required_without_go_fails_naming_why(checkout_without_go: tuple[Path, dict[str, str]]) -> None:
    script, env = checkout_without_go
    done = subprocess.run(
        [str(script)],
        env=env | {"GETH_REQUIRED": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "geth required (GETH_REQUIRED=1) but not available: no Go toolchain on PATH" in done.stderr


def test_ci_requires_geth() -> None:
    """CI's run builds geth as required, so that its `make test` cannot pass without the network tests."""
    lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert "GETH_REQUIRED=1 make geth" in lines
