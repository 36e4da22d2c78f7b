"""Wording the commands share: a count with its noun in agreement ("1 record", "2 records")."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in agreement with it: ``singular`` for 1, else ``plural`` (default: ``singular``
    and an ``s``)."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
