"""Running the ``dxl`` command line in the test process, as its entry point does."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from dxl.main import main


def dxl(*args: str | Path) -> tuple[int, str, str]:
    """``dxl ARGS...``: the exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()
