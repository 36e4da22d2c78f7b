"""Measure the embedded node's resident memory under a stream of storage-writing transactions.

Usage: .venv/bin/python scripts/measure_node_memory.py [--txs 3000] [--batch 200] [--block-time 1|auto]
       [--prune-history 64|off]

Deploys the test Counter fixture, then sends ``--txs`` signed ``increment()`` calls in JSON-RPC batches and
prints anvil's VmRSS after each batch. Used to choose the defaults documented in node/anvil.py.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from eth_account import Account
from web3 import Web3

from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.compiler import compile_sources

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "node" / "fixtures"


def _rpc(url: str, payload: object) -> object:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def counter_artifact() -> dict:
    build = compile_sources(FIXTURES / "contracts" / "src", base_path=FIXTURES)
    return json.loads(build.files["Counter.json"])


def send_increments(url: str, chain_id: int, count: int, batch: int, on_batch=None) -> str:
    """Deploy Counter and send ``count`` increments; returns the contract address."""
    artifact = counter_artifact()
    account = Account.create()
    deploy = account.sign_transaction(
        {"data": artifact["bytecode"], "gas": 2_000_000, "gasPrice": 0, "nonce": 0, "chainId": chain_id}
    )
    tx_hash = _rpc(
        url,
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "eth_sendRawTransaction",
            "params": ["0x" + deploy.raw_transaction.hex()],
        },
    )["result"]
    while True:
        receipt = _rpc(
            url, {"jsonrpc": "2.0", "id": 0, "method": "eth_getTransactionReceipt", "params": [tx_hash]}
        )
        if receipt.get("result"):
            address = receipt["result"]["contractAddress"]
            break
        time.sleep(0.05)
    selector = "0xd09de08a"  # increment()
    nonce = 1
    while nonce <= count:
        calls = []
        for i in range(min(batch, count - nonce + 1)):
            signed = account.sign_transaction(
                {
                    "to": Web3.to_checksum_address(address),
                    "data": selector,
                    "gas": 100_000,
                    "gasPrice": 0,
                    "nonce": nonce,
                    "chainId": chain_id,
                }
            )
            calls.append(
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "eth_sendRawTransaction",
                    "params": ["0x" + signed.raw_transaction.hex()],
                }
            )
            nonce += 1
        replies = _rpc(url, calls)
        errors = [r["error"] for r in replies if "error" in r]
        if errors:
            raise RuntimeError(f"node rejected transactions: {errors[:3]}")
        if on_batch is not None:
            on_batch(nonce - 1)
    return address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--block-time", default="1")
    parser.add_argument("--prune-history", default="64")
    args = parser.parse_args()
    settings = NodeSettings(
        port=free_port(),
        block_time=None if args.block_time == "auto" else float(args.block_time),
        prune_history=None if args.prune_history == "off" else int(args.prune_history),
    )
    with tempfile.TemporaryDirectory() as home, EmbeddedNode(Path(home), settings) as node:
        url = node.endpoint.rpc_url
        start = time.monotonic()
        peak = 0

        def report(sent: int) -> None:
            nonlocal peak
            rss = node.rss_bytes()
            peak = max(peak, rss)
            print(
                f"{time.monotonic() - start:7.1f} s  sent {sent:6d}  rss {rss / 2**20:8.1f} MiB", flush=True
            )

        send_increments(url, settings.chain_id, args.txs, args.batch, report)
        time.sleep(3)
        report(args.txs)
        print(f"peak rss {peak / 2**20:.1f} MiB; state file {node.state_file.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
