"""``dxl bench receipts`` (``api.bench``): what it reports of a run's rate over time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.bench import bench_settings, service_environment, slowest_rate


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


def test_the_bench_service_reaches_none_of_the_operators_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The throwaway service of ``dxl bench`` provisions demo tokens and journals into its own database
    under its own home: a ``DXL_DATABASE_URL`` or failover nodes of the operator's, from the environment
    or a ``.env`` file where the bench is started, reach neither its settings nor its process."""
    operators = f"sqlite:///{tmp_path / 'operators.sqlite3'}"
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        f"DXL_DATABASE_URL={operators}\nDXL_RPC_FAILOVER_URLS=http://10.0.0.9:8545\n"
    )
    monkeypatch.setenv("DXL_DATABASE_URL", operators)
    monkeypatch.setenv("DXL_CONFIRMATIONS", "3")
    monkeypatch.setenv("DXL_RECEIPT_BATCH_AGE", "0.1")
    home = tmp_path / "bench-home"

    settings = bench_settings(home=home, rpc_url="http://127.0.0.1:1", chain_id=31337)
    assert settings.effective_database_url == f"sqlite:///{home / 'dxl.sqlite3'}"
    assert (settings.rpc_failover_urls, settings.confirmations) == ("", 0)

    env = service_environment(os.environ, DXL_HOME=str(home))
    assert {k for k in env if k.startswith("DXL_")} == {"DXL_HOME", "DXL_RECEIPT_BATCH_AGE"}
