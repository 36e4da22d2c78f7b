"""tests/cpu_tally.py counts the CPU of a process a test started and has not waited for (a node, a
browser)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.cpu_tally import _below

#: 0.6 s of CPU, then a wait on stdin: still running, never reaped, when the tally reads it. The test asks
#: the tally for 0.5 s of it: ``/proc`` gives a process's user and system time apart, each in whole clock
#: ticks, and a child asked for exactly 0.5 s was once read as 0.49 s under load.
BUSY = "\n".join(
    [
        "import sys, time",
        "end = time.process_time() + 0.6",
        "while time.process_time() < end: pass",
        "sys.stdin.read()",
    ]
)


def test_a_process_still_running_below_the_test_is_counted() -> None:
    start = _below(os.getpid())
    busy = subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while (used := _below(os.getpid()) - start) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert used >= 0.5
        assert busy.poll() is None  # counted while it runs, not from the rusage of a child waited for
    finally:
        busy.communicate(b"")
