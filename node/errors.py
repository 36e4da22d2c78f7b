"""The one exception root of dxl and the errors every layer shares.

Each layer (chain client, verifier, audit, API) subclasses :class:`DxlError`, mixing in the built-in it
resembles so callers can catch either (``except ValueError`` still works for bad input). Messages are built by
the class from the values that explain the failure, never by the raiser, so the same failure always reads the
same way.

This module imports nothing heavy: the verifier's proof code depends on it and must stay usable on its own.
"""

from __future__ import annotations


class DxlError(Exception):
    """Root of every error dxl raises on purpose.

    ``code`` is a stable machine-readable name (the API's JSON errors and the CLI's ``--json`` output use it).
    """

    code: str = "DXL_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigurationError(DxlError, ValueError):
    """Thrown when settings, files on disk or the environment are unusable (bad path, missing deployment)."""

    code = "CONFIGURATION_ERROR"


class ToolchainError(DxlError, RuntimeError):
    """Thrown when the Solidity compiler or the embedded node cannot be found, started or understood."""

    code = "TOOLCHAIN_ERROR"


class NodeError(DxlError, RuntimeError):
    """Thrown when the chain node cannot be reached or answers in a way dxl cannot use."""

    code = "NODE_UNAVAILABLE"
