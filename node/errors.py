"""The errors of the ledger client and its configuration, under dxl's one root :class:`DxlError`.

The root is defined in :mod:`verifier.errors` (the bottom layer, which imports nothing of dxl) and re-exported
here, so ``from node.errors import DxlError`` names the same class everywhere above the verifier.
"""

from __future__ import annotations

from verifier.errors import DxlError as DxlError


class ConfigurationError(DxlError, ValueError):
    """Thrown when settings, files on disk or the environment are unusable (bad path, missing deployment)."""

    code = "CONFIGURATION_ERROR"


class ToolchainError(DxlError, RuntimeError):
    """Thrown when the Solidity compiler or the embedded node cannot be found, started or understood."""

    code = "TOOLCHAIN_ERROR"


class NodeError(DxlError, RuntimeError):
    """Thrown when the chain node cannot be reached or answers in a way dxl cannot use."""

    code = "NODE_UNAVAILABLE"
