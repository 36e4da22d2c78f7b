"""The suite's own collection: what tests/conftest.py does to the tests a run names."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMED_APART = ["sub/test_a.py", "test_top.py", "sub/test_b.py"]


def test_a_directorys_conftest_reaches_its_files_named_apart(tmp_path: Path) -> None:
    """``sub/test_a.py test_top.py sub/test_b.py``: the second file of sub/ gets sub/conftest.py's fixture too
    (pytest 9.1 alone answers "fixture 'answer' not found" for it)."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.fixture
            def answer():
                return 42
            """
        )
    )
    for name in ("test_a", "test_b"):
        (tmp_path / "sub" / f"{name}.py").write_text(f"def {name}(answer):\n    assert answer == 42\n")
    (tmp_path / "test_top.py").write_text("def test_top():\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *NAMED_APART],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "3 passed" in out, out
