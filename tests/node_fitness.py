"""What a test must leave on its module's shared node: a block mined per transaction, nothing in the pool.

Every test of a module uses one auto-mining anvil. A test that turns its mining off, or leaves a transaction
in its pool (a nonce gap, a write sent while mining was off and never mined), makes a later, unrelated test
wait for a receipt that never comes: a contract test's first transaction "not mined within 60 s".
tests/conftest.py checks the node after every test, names the test that left it so and restores it: the
failure is the guilty test's, and none of the tests after it fail in its place.
"""

from __future__ import annotations

import time
from typing import Any

from node.endpoint import rpc_call

#: How long a transaction still arriving from the test's last moments (a server thread's write) may take to be
#: mined by an auto-mining node before it counts as left behind.
SETTLE_S = 2.0


def _waiting(status: Any) -> int:
    return int(str(status["pending"]), 16) + int(str(status["queued"]), 16)


def unfitness(rpc_url: str, *, settle_s: float = SETTLE_S) -> str | None:
    """Why the auto-mining node at ``rpc_url`` is unfit for the next test (its mining mode, its pool's
    transactions by sender and nonce), or None when it mines per transaction and its pool is empty.

    Raises:
        NodeError: the node does not answer.
    """
    deadline = time.monotonic() + settle_s
    while True:
        automine = rpc_call(rpc_url, "anvil_getAutomine")
        status = rpc_call(rpc_url, "txpool_status")
        if automine is True and _waiting(status) == 0:
            return None
        # Mining off is never transient; a pool an auto-mining node does not empty within the delay is stuck.
        if automine is not True or time.monotonic() > deadline:
            pool = rpc_call(rpc_url, "txpool_inspect")
            return f"auto-mining {automine}, pool {status}: {pool}"
        time.sleep(0.05)


def restore(rpc_url: str) -> None:
    """Mining per transaction again (what is ready in the pool is mined), and the rest of the pool dropped."""
    rpc_call(rpc_url, "evm_setAutomine", [True])
    # Switched on, the node mines what is ready in its own time: dropped before that, it is lost (seen in CI).
    # One block now holds it, and only what can never be mined is left to drop.
    rpc_call(rpc_url, "evm_mine")
    rpc_call(rpc_url, "anvil_dropAllTransactions")
