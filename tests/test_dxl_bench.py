"""``dxl bench commit``: what it reports is about the dxl process it timed, not about the bench itself."""

from __future__ import annotations

import resource

from dxl.bench import bench_commit_processes


def test_bench_commit_reports_the_peak_rss_of_dxl_commit_not_of_the_bench() -> None:
    result = bench_commit_processes(1 << 20, repeats=1)
    assert result["size_bytes"] == 1 << 20
    assert len(result["runs"]["dxl_commit"]) == len(result["runs"]["openssl"]) == 1
    assert result["ratio"] > 0
    # A child's ru_maxrss starts at its parent's high-water mark; this test process, with pytest and the
    # project loaded, is far above a dxl commit of 1 MiB.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert 5 << 20 < result["peak_rss"] < min(own, 60 << 20)
