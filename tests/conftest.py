"""Shared fixtures: one real embedded node per test module, and a web3 client on it.

The node runs with its own temporary DXL_HOME and a free port, and is stopped (the real anvil binary killed)
when the module's tests end. For speed it auto-mines one block per transaction (``DXL_TEST_BLOCK_TIME``
seconds of interval mining instead, if set); the product default stays 1 s interval mining (see
node/anvil.py).

``DXL_TEST_CLOCK_AHEAD=<seconds>`` starts the node's clock that far ahead of the wall clock (one
``evm_increaseTime`` and one block right after the start). The tests of a module share its node, and a test
that moves its clock (a deadline passing) moves it for every later test of the module: a run with, say,
``DXL_TEST_CLOCK_AHEAD=259200`` (three days) shows up front what takes the wall clock for the chain's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.endpoint import NodeEndpoint
from tests import node_fitness

if TYPE_CHECKING:
    # Imported where used: the xdist controller loads this file too, before it starts the workers, and runs
    # no test (web3's import is some 1.2 s of CPU, and of the run's start).
    from web3 import Web3

# Tests never read or write a developer's ./.dxl (make exports DXL_HOME for `make run`): each test process
# gets an empty data directory of its own, and tests that need a particular one set it themselves.
_TEST_HOME = tempfile.mkdtemp(prefix="dxl-test-home-")
os.environ["DXL_HOME"] = _TEST_HOME
atexit.register(shutil.rmtree, _TEST_HOME, ignore_errors=True)


# Property tests check what they compute, not how fast: no per-example deadline (a loaded 2-core machine made
# a 2 ms example take 270 ms and fail as "flaky"), and the same examples every run, so a failure reproduces.
# HYPOTHESIS_PROFILE=explore draws new examples each run.
settings.register_profile("dxl", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dxl"))


def pytest_configure(config: pytest.Config) -> None:
    """Give the files of one directory together: pytest 9.1 makes a second node for a directory named again
    after another's file (``tests/api/a.py tests/test_documents.py tests/api/b.py``), and the fixtures of that
    directory's conftest do not reach the second (``fixture 'api_env' not found``, pytest#14964; 9.2, which
    fixes it, undoes ``--dist loadgroup``). Only the order in which the named tests are collected changes."""
    config.args[:] = sorted(config.args, key=lambda arg: Path(arg.split("::", 1)[0]).parts)


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether the multi-node network tests will run (``make test`` does not build geth)."""
    from node.errors import ToolchainError
    from node.network import geth_binary

    try:
        return f"network tests: geth at {geth_binary()}"
    except ToolchainError as exc:
        return f"network tests skipped: {exc.message}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a grouped test that ``--dist loadgroup`` did not keep with its ``xdist_group``.

    xdist marks a grouped test by suffixing its node id with ``@<group>``; pytest 9.2 ignores that, and the
    groups were spread over both workers without a word: each module's deployment was made once per worker
    and tests that must share a worker (the network's, one audit follower per process) did not.
    """
    grouped = getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group")
    if grouped and "@" not in item.nodeid:
        pytest.fail(
            "--dist loadgroup is not in effect: this pytest and pytest-xdist do not keep an xdist_group on "
            "one worker (pytest-xdist#1386): pyproject.toml holds pytest below 9.2 for this",
            pytrace=False,
        )


def _test_block_time() -> float | None:
    value = os.environ.get("DXL_TEST_BLOCK_TIME")
    return float(value) if value else None


def _test_clock_ahead() -> int:
    value = os.environ.get("DXL_TEST_CLOCK_AHEAD")
    return int(value) if value else 0


#: The node of the module running, for the check after each test.
_module_node: EmbeddedNode | None = None


@contextmanager
def _started_node(home: Path) -> Iterator[EmbeddedNode]:
    """A node started on ``home`` as the tests run it (auto-mining or ``DXL_TEST_BLOCK_TIME``, the clock
    ``DXL_TEST_CLOCK_AHEAD`` ahead), stopped on leaving."""
    settings = NodeSettings(port=free_port(), block_time=_test_block_time())
    node = EmbeddedNode(home, settings, die_with_parent=True)
    node.start()
    try:
        if ahead := _test_clock_ahead():
            from web3 import Web3

            rpc = Web3(Web3.HTTPProvider(node.endpoint.rpc_url)).provider
            rpc.make_request("evm_increaseTime", [ahead])  # type: ignore[arg-type]
            rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def embedded_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node of the module's own, started empty and stopped with the module (some 55 ms of CPU in a
    worker's process, the node's included).

    anvil's CPU for each block grows with the state on its chain: 300 empty blocks cost it 0.07 s on a new
    node and 1.2 s on a node that a worker's run had left with 16 MB of state. The sharing practice's model,
    which mines 256 blocks at a time, took 10 s of CPU on such a node late in a run and 2.6 s on its own. With
    one node for each worker's whole run, anvil was 38.5 CPU-s of a `make test`; with one per module, 28.9
    (each ``anvil`` process's CPU read from ``/proc`` through a run, 124 nodes in all). Keeping a worker's
    node until its chain was past 256 blocks (37 nodes) and what modules build on it for as long did no
    better: 35.2 CPU-s, in a slower run."""
    global _module_node
    with _started_node(tmp_path_factory.mktemp("dxl-home")) as node:
        _module_node = node
        try:
            yield node
        finally:
            _module_node = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """Fail the test that leaves the module's node unfit for the next one (mining off, a transaction left in
    its pool), by name, and restore the node: the module's tests after it would otherwise fail in its place,
    waiting for a receipt (tests/node_fitness.py). Checked once the test's fixtures are torn down
    (the ledger's revert, a module's server): two calls, 3.4 ms a test. Interval mining
    (``DXL_TEST_BLOCK_TIME``) holds transactions in the pool by design: not checked."""
    result = yield
    if _module_node is not None and _test_block_time() is None:
        rpc_url = _module_node.endpoint.rpc_url
        if unfit := node_fitness.unfitness(rpc_url):
            node_fitness.restore(rpc_url)
            pytest.fail(
                f"{item.nodeid} (or a fixture torn down with it) left the module's node unfit for the next "
                f"test: {unfit}",
                pytrace=False,
            )
    return result


@pytest.fixture(scope="module")
def node_endpoint(embedded_node: EmbeddedNode) -> NodeEndpoint:
    """RPC URL and chain id of the module's node."""
    return embedded_node.endpoint


@pytest.fixture(scope="module")
def w3(node_endpoint: NodeEndpoint) -> Web3:
    """A web3 client connected to the module's node."""
    from web3 import Web3

    return Web3(Web3.HTTPProvider(node_endpoint.rpc_url, request_kwargs={"timeout": 60}))
