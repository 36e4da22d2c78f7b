"""Wording every layer shares: a count with its noun in agreement ("1 record", "2 records"), and a moment
as people read it (``2026-12-04T23:10:00Z``).

Here, at the bottom of the stack, so that the verifier's findings, the ledger client's errors, the service's
answers, the audit reports and the commands' summaries all word a count and a time the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """The noun in agreement with ``n``: ``singular`` for 1, else ``plural`` (default: ``singular`` and an
    ``s``). For a noun before the things it counts: "inspection 4", "inspections 4, 7"."""
    return singular if n == 1 else (plural or singular + "s")


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in agreement with it (see :func:`noun`): "1 record", "2 records"."""
    return f"{n} {noun(n, singular, plural)}"


def iso_time(ts: int) -> str:
    """A Unix time (a block's, a deadline) as ISO 8601 UTC to the second: ``2026-12-04T23:10:00Z``. The
    number itself when no calendar holds it (before year 1 or after 9999): it is still exact that way.
    Machines read the number (``--json``, the API); people read this."""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)
