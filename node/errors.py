"""The errors of the ledger client and its configuration, under dxl's one root :class:`DxlError`.

The root is defined in :mod:`verifier.errors` (the bottom layer, which imports nothing of dxl) and re-exported
here, so ``from node.errors import DxlError`` names the same class everywhere above the verifier.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

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


#: errno values of a write refused for want of space: the disk is full, or the user's quota is.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
#: SQLite's primary result codes (the low byte of sqlite3's ``sqlite_errorcode``): "database or disk is
#: full", and an I/O error, which is how SQLite reports a -shm file it could not enlarge on a full disk
#: (SQLITE_IOERR_SHMSIZE) and does not say why.
_SQLITE_FULL, _SQLITE_IOERR = 13, 10
#: PostgreSQL's SQLSTATE disk_full (class 53, insufficient resources).
_PG_DISK_FULL = "53100"


def _no_space_left(path: Path) -> bool:
    """Whether the disk holding ``path`` (or its nearest existing parent) has no block left to write."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    try:
        return existing is not None and os.statvfs(existing).f_bavail == 0
    except OSError:
        return False


def storage_full_cause(exc: BaseException, *, places: Sequence[Path] = ()) -> BaseException | None:
    """The error in ``exc``'s chain (itself, its cause or the error it was raised while handling) that says a
    disk is full, or None: an OSError with ENOSPC or EDQUOT, SQLite's SQLITE_FULL, PostgreSQL's disk_full,
    or an SQLite I/O error while one of ``places`` is on a disk with no free block.

    The chain is walked because the libraries in between wrap it (SQLAlchemy's OperationalError is raised from
    sqlite3's; a failed write inside a ``with open(...)`` block is raised again by the failing close).
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE:
            return current
        sqlite_code = getattr(current, "sqlite_errorcode", None)
        if isinstance(sqlite_code, int) and (
            sqlite_code & 0xFF == _SQLITE_FULL
            or (sqlite_code & 0xFF == _SQLITE_IOERR and any(_no_space_left(p) for p in places))
        ):
            return current
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL:
            return current
        pending += [current.__cause__, current.__context__]
    return None


class StorageFullError(DxlError, OSError):
    """Thrown when dxl cannot write its state (``DXL_HOME``, the API database) because the disk is full.

    ``cause`` is what :func:`storage_full_cause` found: the file named when the system names one.
    """

    code = "STORAGE_FULL"

    def __init__(self, home: Path, cause: BaseException) -> None:
        self.home, self.cause = home, cause
        if isinstance(cause, OSError) and cause.filename:
            what = f"cannot write {cause.filename} ({cause.strerror})"
        elif isinstance(cause, OSError):
            what = cause.strerror or str(cause)
        else:  # a database's own words ("database or disk is full")
            what = f"the API database cannot be written ({cause})"
        super().__init__(f"disk full: {what}; free space on that disk and try again (DXL_HOME is {home})")
