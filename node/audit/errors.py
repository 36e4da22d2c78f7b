"""Errors of the audit trail. Each carries a stable ``code`` (the API maps them to 404 / 422 / 409)."""

from __future__ import annotations

from node.errors import DxlError


class AuditError(DxlError):
    """Root of the audit trail's errors."""

    code = "AUDIT_ERROR"


class NotFoundError(AuditError, LookupError):
    """Thrown when a commitment, delivery, department or other id is not in the audit trail."""

    code = "NOT_FOUND"

    def __init__(self, kind: str, value: object) -> None:
        self.kind, self.value = kind, value
        super().__init__(
            f"no {kind} {value} in the audit trail", code=f"{kind.upper().replace(' ', '_')}_NOT_FOUND"
        )


class InvalidQueryError(AuditError, ValueError):
    """Thrown when a filter, cursor, period or id is malformed."""

    code = "INVALID_QUERY"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(f"invalid {field}: {reason}")


class IndexMismatchError(AuditError, RuntimeError):
    """Thrown when the audit database was built for another contract or chain than the one configured."""

    code = "AUDIT_DATABASE_MISMATCH"


class ReportWriteError(AuditError, OSError):
    """Thrown when an audit report cannot be written where it was asked for (its directory cannot be made, a
    file in it cannot be written)."""

    code = "REPORT_UNWRITABLE"

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot write the audit report to {path}: {reason}")


class ReportFormatError(AuditError, ValueError):
    """Thrown when an audit report file cannot be read as a dxl audit report."""

    code = "REPORT_FORMAT"
