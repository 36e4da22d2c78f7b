"""Running the ``dxl`` command line in the test process, as its entry point does."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dxl.main import main


def dxl(*args: str | Path) -> tuple[int, str, str]:
    """``dxl ARGS...``: the exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


class Ran(NamedTuple):
    """A run of ``dxl``: what the tests read of typer's ``CliRunner`` result (which built the command tree
    again for every run), from the entry point."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout, then stderr."""
        return self.stdout + self.stderr


def invoke(args: Sequence[str | Path]) -> Ran:
    """``dxl ARGS...`` as a :class:`Ran`."""
    return Ran(*dxl(*args))
