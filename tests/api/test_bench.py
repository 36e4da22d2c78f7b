"""``dxl bench receipts`` (``api.bench``): what it reports of a run's rate over time."""

from __future__ import annotations

import pytest

from api.bench import slowest_rate


def _steady(per_s: int, seconds: int, *, stall: range = range(0)) -> list[tuple[float, int]]:
    """Counts sampled once a second of a run accepting ``per_s`` receipts a second, none in ``stall``."""
    counts, n = [(0.0, 0)], 0
    for second in range(seconds):
        n += 0 if second in stall else per_s
        counts.append((float(second + 1), n))
    return counts


@pytest.mark.parametrize(
    ("counts", "window", "slowest"),
    [
        (_steady(1000, 60), 10.0, 1000.0),
        # A 5 s stall in a minute: the mean says 917 a second, the slowest 10 s half the rate.
        (_steady(1000, 60, stall=range(20, 25)), 10.0, 500.0),
        (_steady(1000, 60, stall=range(20, 25)), 60.0, 55_000 / 60),
        # Samples a tick late: each span runs from one sample to the first at least a window later.
        ([(0.0, 0), (4.0, 4000), (9.5, 9500), (12.0, 12_000)], 10.0, 1000.0),
        (_steady(1000, 8), 10.0, None),
        ([(0.0, 0)], 10.0, None),
    ],
)
def test_slowest_rate_isTheLowestOverAnyWindow_noneForAShorterRun(
    counts: list[tuple[float, int]], window: float, slowest: float | None
) -> None:
    assert slowest_rate(counts, window) == (None if slowest is None else pytest.approx(slowest))
