"""The embedded node's state saves are snapshots: a restart after kill -9 never holds a block's effects
without the block (the cause of journaled writes that could never be mined again, node/statekeeper.py); the
keeper mines the blocks, at the block time while transactions wait and once a second otherwise."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from web3 import Web3

from node.anvil import DEFAULT_BLOCK_TIME_S, DXL_CHAIN_ID, EmbeddedNode, NodeSettings, free_port
from node.statekeeper import IDLE_BLOCK_S, saved_head

SENDERS = 3


def _inconsistencies(state: dict[str, Any]) -> list[str]:
    """What in a saved state contradicts a snapshot: an account whose nonce counts transactions that no saved
    block holds, or a head that is not the newest saved block."""
    best = int(state["best_block_number"])
    found = []
    newest = max(int(block["header"]["number"], 16) for block in state["blocks"])
    if newest != best:
        found.append(f"head {best}, newest saved block {newest}")
    sent = Counter(
        tx["info"]["from"].lower() for tx in state.get("transactions", []) if int(tx["block_number"]) <= best
    )
    for address, account in state["accounts"].items():
        saved = sent[address.lower()]
        if account.get("code") in (None, "", "0x") and int(account["nonce"]) != saved:
            found.append(f"{address}: nonce {account['nonce']}, {saved} saved transactions")
    return found


class Stream:
    """Senders signing and sending transfers as fast as the node takes them; every signed transaction is
    kept, as the API's journal keeps them."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.accounts: list[LocalAccount] = [Account.create() for _ in range(SENDERS)]
        self.signed: dict[str, list[bytes]] = {a.address: [] for a in self.accounts}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(a,)) for a in self.accounts]

    def _send(self, account: LocalAccount) -> None:
        while not self._stop.is_set():
            nonce = len(self.signed[account.address])
            tx: TransactionDictType = {"to": account.address, "value": 0, "gas": 21_000, "gasPrice": 0,
                                       "nonce": nonce, "chainId": DXL_CHAIN_ID}  # fmt: skip
            raw = account.sign_transaction(tx).raw_transaction
            self.signed[account.address].append(bytes(raw))
            try:
                self.w3.eth.send_raw_transaction(raw)
            except Exception:  # the node was stopped under the stream: the bytes are kept, sent again later
                return
            time.sleep(0.01)

    def __enter__(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[EmbeddedNode]:
    node = EmbeddedNode(
        tmp_path / "home",
        NodeSettings(port=free_port(), block_time=DEFAULT_BLOCK_TIME_S, state_interval=1),
        die_with_parent=True,
    )
    node.start()
    yield node
    node.stop()


def test_every_save_under_load_is_a_snapshot_and_a_restart_takes_every_lost_transaction_back(
    node: EmbeddedNode,
) -> None:
    w3 = Web3(Web3.HTTPProvider(node.endpoint.rpc_url))
    saves: list[dict[str, Any]] = []
    seen = None
    with Stream(w3) as stream:
        first_block = w3.eth.block_number
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            stat = node.state_file.stat() if node.state_file.exists() else None
            if stat is not None and (stat.st_ino, stat.st_mtime_ns) != seen:
                seen = (stat.st_ino, stat.st_mtime_ns)
                # Written whole and renamed into place: every version read parses.
                saves.append(json.loads(node.state_file.read_bytes()))
            time.sleep(0.05)
        blocks = w3.eth.block_number - first_block
    # 32 at the block time; half of that leaves room for a loaded machine and the saves, while 1 s blocks
    # (8) fail.
    assert blocks >= 4 / DEFAULT_BLOCK_TIME_S, f"{blocks} blocks in 8 s while transactions waited"
    assert len(saves) >= 4, "the node saved its state less than every 2 s"
    assert all(save.get("transactions") for save in saves[1:]), "the load did not reach the saves"
    for save in saves:
        assert _inconsistencies(save) == []

    assert node.pid is not None
    os.kill(node.pid, signal.SIGKILL)
    keeper = node._keeper
    assert keeper is not None and keeper.wait(timeout=10) == 0, "the state keeper outlives its node"
    node.stop()
    node.start()
    w3 = Web3(Web3.HTTPProvider(node.endpoint.rpc_url))
    # As the journal does after a lost block: every signed transaction the node does not know is sent again,
    # in nonce order; none may find its nonce used.
    for raws in stream.signed.values():
        for raw in raws:
            tx_hash = Web3.keccak(raw)
            try:
                w3.eth.get_transaction(tx_hash)
            except Exception:  # TransactionNotFound: lost with the kill
                w3.eth.send_raw_transaction(raw)
    for account in stream.accounts:
        last = Web3.keccak(stream.signed[account.address][-1])
        w3.eth.wait_for_transaction_receipt(last, timeout=30, poll_latency=0.1)
        assert w3.eth.get_transaction_count(account.address) == len(stream.signed[account.address])


def test_stop_saves_a_snapshot_and_ends_the_keeper(node: EmbeddedNode) -> None:
    w3 = Web3(Web3.HTTPProvider(node.endpoint.rpc_url))
    with Stream(w3):
        time.sleep(2.5)
        keeper = node._keeper
        assert keeper is not None and keeper.poll() is None
        node.stop()
    assert keeper.poll() is not None and not node.keeper_pid_file.exists()
    assert _inconsistencies(json.loads(node.state_file.read_bytes())) == []


def test_an_idle_node_mines_one_block_a_second(node: EmbeddedNode) -> None:
    w3 = Web3(Web3.HTTPProvider(node.endpoint.rpc_url))
    head = w3.eth.block_number
    time.sleep(3 * IDLE_BLOCK_S)
    blocks = w3.eth.block_number - head
    # 3 expected; the block time would give 12. The chain's clock still moves on without transactions.
    assert 1 <= blocks <= 4, f"{blocks} blocks in {3 * IDLE_BLOCK_S:g} s without transactions"
    latest = w3.eth.get_block("latest")
    assert abs(latest["timestamp"] - time.time()) <= 2


@pytest.mark.parametrize(
    ("text", "head"),
    [
        (b'{"block":{},"accounts":{},"best_block_number":3621,"blocks":[]}', 3621),
        (b'{"accounts":{},"best_block_number":7}', 7),
        (b'{"accounts":{}}', None),
        (b'{"best_block_number":null}', None),
    ],
)
def test_saved_head(text: bytes, head: int | None) -> None:
    assert saved_head(text) == head
