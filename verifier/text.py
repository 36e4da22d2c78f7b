"""Wording every layer shares: a count with its noun in agreement ("1 record", "2 records").

Here, at the bottom of the stack, so that the verifier's findings, the ledger client's errors, the service's
answers and the commands' summaries all word a count the same way.
"""

from __future__ import annotations


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """The noun in agreement with ``n``: ``singular`` for 1, else ``plural`` (default: ``singular`` and an
    ``s``). For a noun before the things it counts: "inspection 4", "inspections 4, 7"."""
    return singular if n == 1 else (plural or singular + "s")


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in agreement with it (see :func:`noun`): "1 record", "2 records"."""
    return f"{n} {noun(n, singular, plural)}"
