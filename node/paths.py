"""Where dxl finds its own files (repository tree) and keeps its state (``DXL_HOME``)."""

from __future__ import annotations

import os
from pathlib import Path

#: Root of the source tree: contracts/, node_modules/ and the committed build artifacts live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
NODE_MODULES = PROJECT_ROOT / "node_modules"


def dxl_home() -> Path:
    """The data directory: ``$DXL_HOME`` or ``./.dxl`` relative to the working directory."""
    return Path(os.environ.get("DXL_HOME") or ".dxl").resolve()
