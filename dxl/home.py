"""``DXL_HOME`` read where the command line starts, for the commands that run without loading the settings."""

from __future__ import annotations

import os
from pathlib import Path


def dxl_home() -> Path:
    """The data directory as :class:`node.settings.Settings` reads it without a ``.env`` file: ``$DXL_HOME``,
    else ``./.dxl`` relative to the working directory. The layers below are handed a home, never look it up.
    """
    return Path(os.environ.get("DXL_HOME") or ".dxl").resolve()
