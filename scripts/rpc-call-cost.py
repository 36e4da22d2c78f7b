"""Time one JSON-RPC call through the chain readers against a throw-away embedded node: the ledger client's
``block_number()`` and ``receipt()`` (``eth_blockNumber``, ``eth_getTransactionReceipt`` through web3 and its
provider) and the audit trail's client (``eth_blockNumber``, a batch of 50 ``eth_getTransactionReceipt``),
each ``--calls`` times after a warm-up, the best of three rounds, as wall time and this process's CPU a call.

The same script times a checkout from before the one client (``PYTHONPATH=<that checkout>``, whose audit
client is ``node.audit.rpc``): run the two alternately, on a machine otherwise as busy, and compare.

Usage: ``.venv/bin/python scripts/rpc-call-cost.py [--calls 2000]``; prints one line per call.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _per_call(read: Callable[[], Any], calls: int) -> tuple[float, float]:
    """The best of three rounds of ``calls`` calls: (wall ms, CPU ms) per call."""
    for _ in range(min(calls, 200)):
        read()
    rounds = []
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            read()
        rounds.append(((time.perf_counter() - wall) / calls * 1e3, (time.process_time() - cpu) / calls * 1e3))
    return min(r[0] for r in rounds), min(r[1] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    calls = parser.parse_args().calls

    from eth_account import Account

    from node.anvil import EmbeddedNode, NodeSettings, free_port
    from node.chain import LedgerClient
    from node.provision import ANVIL_DEV_KEY

    try:
        from node.rpc import JsonRpc
    except ImportError:  # a checkout from before the one client
        from node.audit.rpc import JsonRpc  # type: ignore[import-not-found,no-redef]

    with (
        tempfile.TemporaryDirectory() as home,
        EmbeddedNode(Path(home), NodeSettings(port=free_port())) as node,
    ):
        ledger = LedgerClient(node.endpoint, [])
        account = Account.from_key(ANVIL_DEV_KEY)
        tx = ledger.transfer(account, account.address, 1).tx_hash
        with JsonRpc(node.endpoint.rpc_url) as audit:
            reads: list[tuple[str, Callable[[], Any], int]] = [
                ("ledger client eth_blockNumber", ledger.block_number, calls),
                ("ledger client eth_getTransactionReceipt", lambda: ledger.receipt(tx), calls),
                ("audit client eth_blockNumber", audit.block_number, calls),
                ("audit client 50 receipts, one batch", lambda: audit.receipts([tx] * 50), calls // 10),
            ]
            for name, read, count in reads:
                wall, cpu = _per_call(read, count)
                print(f"{name}: {wall:.3f} ms wall, {cpu:.3f} ms CPU per call ({count} calls, best of 3)")


if __name__ == "__main__":
    main()
