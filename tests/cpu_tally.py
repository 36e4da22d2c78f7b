"""The CPU each test costs, the processes it starts included: ``-p tests.cpu_tally`` (with ``-n 0`` or
``-n 2``) writes one JSON file per test process, ``DXL_CPU_TALLY`` (default ``cpu-tally``) followed by
``-<worker>.json``, and prints the costliest tests at the end.

``make test`` runs five workers on two cores: its time follows the CPU its tests use, not their wall time on a
worker (a test waiting on a block or a browser leaves its core to another). ``--durations`` says which tests
take long, this which ones cost. A test's CPU is the test process's (its server threads among it), that of
the processes it started and waited for, and the growth of what every process below the test process used
(read from ``/proc``, reaped children included: the module's node, a browser and its renderers, a ``dxl run``
still running).
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cost:
    """One test's CPU seconds: its process's (``own``), the processes it started (``started``), and its wall
    time, set-up and teardown included."""

    test: str
    own: float
    started: float
    wall: float

    @property
    def cpu(self) -> float:
        return self.own + self.started


_tally: list[Cost] = []


def _below(root: int) -> float:
    """CPU seconds of every process below ``root``, each with its reaped children."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        parent[int(entry)] = int(fields[1])
        # utime, stime, cutime, cstime
        used[int(entry)] = sum(int(f) for f in fields[11:15]) / _TICK
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def _now() -> tuple[float, float, float, float]:
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), waited.ru_utime + waited.ru_stime, _below(os.getpid()), time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    before = _now()
    try:
        return (yield)
    finally:
        after = _now()
        started = (after[1] - before[1]) + (after[2] - before[2])
        _tally.append(Cost(item.nodeid, after[0] - before[0], started, after[3] - before[3]))


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = Path(f"{os.environ.get('DXL_CPU_TALLY', 'cpu-tally')}-{worker}.json")
    path.write_text(json.dumps([asdict(cost) for cost in _tally], indent=1), encoding="utf-8")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _tally:
        return  # the xdist controller: its workers wrote theirs
    terminalreporter.section("CPU by test (the test process and the processes it started)")
    for cost in sorted(_tally, key=lambda c: -c.cpu)[:15]:
        terminalreporter.write_line(
            f"{cost.cpu:7.2f} s  (own {cost.own:.2f}, started {cost.started:.2f}, wall {cost.wall:.2f})  "
            + cost.test
        )
    terminalreporter.write_line(f"{sum(c.cpu for c in _tally):7.2f} s  in all, {len(_tally)} tests")
