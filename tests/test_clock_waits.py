"""No test waits for the wall clock to reach a moment: time a test needs on the chain is moved on the node
(``evm_increaseTime``, ``evm_setNextBlockTimestamp``, anvil's ``--timestamp`` for a block 0 of another
second), which takes no time, never slept through. Polls (a process, a thread, a file) are not waits for a
moment and are left alone: the check is for a sleep whose length is computed from ``time.time()``."""

from __future__ import annotations

import ast
from pathlib import Path

from node.paths import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"


def _waits_for_the_clock(tree: ast.AST) -> list[tuple[int, str]]:
    """``time.sleep(...)`` / ``sleep(...)`` calls whose argument reads ``time.time()``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        if called in ("time.sleep", "sleep") and "time.time()" in ast.unparse(node):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_test_sleeps_until_a_moment_of_the_wall_clock() -> None:
    found = {
        f"{path.relative_to(PROJECT_ROOT)}:{line}": call
        for path in sorted(TESTS.rglob("*.py"))
        for line, call in _waits_for_the_clock(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_check_finds_a_wait_for_the_next_second() -> None:
    source = "import time\ntime.sleep(max(0.0, start + 1 - time.time()))\ntime.sleep(0.1)\n"
    assert [line for line, _ in _waits_for_the_clock(ast.parse(source))] == [2]
    assert _waits_for_the_clock(ast.parse(Path(__file__).read_text(encoding="utf-8"))) == []
