"""Human sizes for the command line: ``1MiB``, ``4M``, ``1G``, ``65536``."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1000**2,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 1000**3,
    "gib": 1 << 30,
}
# ASCII: Unicode's \d also matched Arabic-Indic and full-width digits, which int() reads.
_SIZE = re.compile(r"\s*(\d+)\s*([a-z]*)\s*", re.ASCII)


def parse_size(text: str) -> int:
    """Parse a byte size. Bare K/M/G and KiB/MiB/GiB are powers of 1024; kB/MB/GB are powers of 1000.

    Raises:
        ValueError: for anything that is not a positive whole number of bytes with a known unit.
    """
    m = _SIZE.fullmatch(text.lower())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 65536, 64KiB, 1MiB, 1G)")
    value = int(m.group(1)) * _UNITS[m.group(2)]
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return value


def format_size(n: int) -> str:
    """``1048576`` -> ``1.0 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
