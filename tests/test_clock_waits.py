"""No test waits for the wall clock to reach a moment: time a test needs on the chain is moved on the node
(``evm_increaseTime``, ``evm_setNextBlockTimestamp``, anvil's ``--timestamp`` for a block 0 of another
second), which takes no time, never slept through. Nor does a test sleep through the service's own short
caches of chain state (``GRANT_CACHE_TTL_S``): it moves their clock on
(``tests.api.api_helpers.outlive_caches``, :class:`api.receipts.grants.CacheClock`). Polls (a process, a
thread, a file) are not waits for a moment and are left alone: the check is for a sleep whose length is
computed from ``time.time()`` or from a cache's TTL."""

from __future__ import annotations

import ast
from pathlib import Path

from node.paths import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"


def _names_a_ttl(node: ast.AST) -> bool:
    """Whether ``node`` reads a name or attribute that is a time-to-live (``GRANT_CACHE_TTL_S``,
    ``cache.ttl``)."""
    for part in ast.walk(node):
        name = part.id if isinstance(part, ast.Name) else part.attr if isinstance(part, ast.Attribute) else ""
        if "ttl" in name.lower().split("_"):
            return True
    return False


def _waits_for_the_clock(tree: ast.AST) -> list[tuple[int, str]]:
    """``time.sleep(...)`` / ``sleep(...)`` calls whose argument reads ``time.time()`` or a TTL."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        if called not in ("time.sleep", "sleep"):
            continue
        if "time.time()" in ast.unparse(node) or any(_names_a_ttl(arg) for arg in node.args):
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


def test_the_check_finds_a_sleep_through_a_cache_ttl() -> None:
    source = (
        "import time\n"
        "time.sleep(GRANT_CACHE_TTL_S)\n"
        "time.sleep(service.grants.ttl + 0.1)\n"
        "time.sleep(SETTLE_S)\n"
        "time.sleep(len(subtitles))\n"
    )
    assert [line for line, _ in _waits_for_the_clock(ast.parse(source))] == [2, 3]
