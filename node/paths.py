"""Where dxl finds its own files: the repository tree (its state is under the home the settings name)."""

from __future__ import annotations

from pathlib import Path

#: Root of the source tree: contracts/, node_modules/ and the committed build artifacts live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
NODE_MODULES = PROJECT_ROOT / "node_modules"
