"""Mines the embedded node's blocks and saves its chain as a snapshot every few seconds, while anvil runs.

anvil's own periodic save (``--state-interval``) is not a snapshot. anvil 1.7.1
(``Backend::serialized_state``) reads the head number, then every block, then every transaction, each under
its own short lock, and the accounts last; meanwhile the interval miner goes on, and a block mined in between
(its accounts committed before its block is stored) lands in the saved accounts but not in the saved blocks.
A node restarted from such a file holds the block's effects (nonces used, storage written) without the block,
its transactions, receipts or events. A journaled transaction of that block can then never be mined again:
its sender's nonce is used, by no transaction at all (the node answers "nonce too low"). Seen in a full
``make reliability`` run: the state of a kill -9 restart counted nonce 362 of one sender, 304 and 375 of two
others as used, and no transaction of the chain carries them; the three writes (two acknowledged approvals
and a receipt anchor) were marked superseded. On a state of 48 MB a save takes about 2 s, so most saves under
load overlap a block. anvil also rewrites the file in place: a kill during a save leaves half a file.

So the saves are made here, in a small process beside anvil that also mines its blocks: anvil runs with
``--no-mining`` and this process calls ``evm_mine`` on its own clock (anvil's interval mining could be
paused for a save, but resumed only at whole seconds: ``evm_setIntervalMining`` takes an integer). Between
two blocks the chain is dumped (``anvil_dumpState``), the dump kept only if the head did not move while it
was taken (someone else may call ``evm_mine``), then written to a new file renamed over the state file, so a
kill never leaves half a file. Blocks wait for the length of a save; the block clock resumes after it.

A block is mined every ``block_time`` seconds while transactions wait in the pool (``txpool_status``), and
otherwise once every :data:`IDLE_BLOCK_S` at most: chain time moves on while nothing happens, and an idle node
stores (and rewrites at every save) one block a second whatever its block time. The process ends with its
anvil, or on SIGTERM (after finishing the block or the save it is in).

Run by :class:`node.anvil.EmbeddedNode`: ``python -m node.statekeeper RPC_URL PID STATE_FILE INTERVAL
BLOCK_TIME``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import sys
import time
from pathlib import Path

from node.endpoint import rpc_call
from node.errors import NodeError

#: Dumps tried between two blocks before the save is given up for this round.
_ATTEMPTS = 5
#: A dump of a large chain takes seconds on a loaded machine.
_DUMP_TIMEOUT_S = 120.0
_CALL_TIMEOUT_S = 5.0
#: Longest sleep between two looks at whether anvil still runs.
_POLL_S = 0.1
#: Seconds between blocks when no transaction waits (or the block time, if longer).
IDLE_BLOCK_S = 1.0


class StateKeeper:
    def __init__(self, rpc_url: str, pid: int, state_file: Path, interval: float, block_time: float) -> None:
        self.rpc_url, self.pid, self.state_file = rpc_url, pid, state_file
        self.interval, self.block_time = interval, block_time
        self.idle_block_time = max(block_time, IDLE_BLOCK_S)
        self.stopping = False
        self._last_block = time.monotonic()
        self._unanswered = False

    def anvil_alive(self) -> bool:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return "\nState:\tZ" not in status and str(self.state_file) in cmdline.split("\0")

    def _call(
        self, method: str, params: list[object] | None = None, timeout: float = _CALL_TIMEOUT_S
    ) -> object:
        return rpc_call(self.rpc_url, method, params, timeout=timeout)

    def _head(self) -> int:
        return int(str(self._call("eth_blockNumber")), 16)

    def run(self) -> None:
        next_save = time.monotonic() + self.interval
        next_block = time.monotonic() + self.block_time
        while not self.stopping and self.anvil_alive():
            now = time.monotonic()
            if now >= next_save:
                try:
                    self.save()
                except NodeError as exc:
                    log(f"state not saved this time: {exc}")
                next_save = time.monotonic() + self.interval
                next_block = min(next_block, time.monotonic())  # a block held back by the save: at once
            elif now >= next_block:
                self.tick(now)
                # On the block clock, not after the block: a late tick (a busy machine) does not shift the
                # next; ticks missed altogether are skipped, not mined in a burst.
                next_block += self.block_time
                if next_block <= time.monotonic():
                    next_block = time.monotonic() + self.block_time
            else:
                time.sleep(min(next_block, next_save, now + _POLL_S) - now)

    def tick(self, now: float) -> None:
        """Mine a block if transactions wait, or if the chain has been idle for :attr:`idle_block_time`."""
        try:
            if now - self._last_block < self.idle_block_time:
                status = self._call("txpool_status")
                if not isinstance(status, dict) or int(str(status.get("pending", "0x0")), 16) == 0:
                    return
            self._call("evm_mine")
            self._last_block = now
            self._unanswered = False
        except NodeError as exc:  # stopped (SIGSTOP) or going away: the next tick tries again
            if not self._unanswered:
                log(f"no block mined: {exc}")
            self._unanswered = True

    def save(self) -> None:
        """Dump the chain between two blocks and write it whole over the state file.

        Raises:
            NodeError: the node did not answer, or its head kept moving.
        """
        state = self._snapshot()
        if not self.anvil_alive():
            return  # a new node may already be loading the file: what it saves next is newer than this
        partial = self.state_file.with_name(self.state_file.name + ".partial")
        with open(partial, "wb") as out:
            out.write(state)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.state_file)

    def _snapshot(self) -> bytes:
        for _ in range(_ATTEMPTS):
            before = self._head()
            dump = self._call("anvil_dumpState", timeout=_DUMP_TIMEOUT_S)
            if self._head() != before:
                continue
            state = gzip.decompress(bytes.fromhex(str(dump).removeprefix("0x")))
            if saved_head(state) == before:
                return state
        raise NodeError(f"the head kept moving between two blocks ({_ATTEMPTS} dumps)")


def saved_head(state: bytes) -> int | None:
    """The head block number a state dump was taken at (``best_block_number``), or None."""
    key = b'"best_block_number":'
    at = state.find(key)
    if at < 0:
        return None
    digits = state[at + len(key) : at + len(key) + 24].split(b",")[0].split(b"}")[0].strip()
    return int(digits) if digits.isdigit() else None


def log(message: str) -> None:
    print(f"state keeper: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    rpc_url, pid, state_file, interval, block_time = argv
    keeper = StateKeeper(rpc_url, int(pid), Path(state_file), float(interval), float(block_time))

    def stop(_signum: int, _frame: object) -> None:
        keeper.stopping = True

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        keeper.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
