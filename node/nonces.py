"""Local nonce counters, one per sending address.

The API signs for several departments concurrently and the node mines many transactions per block, so asking
the node for ``eth_getTransactionCount(addr, "pending")`` before every transaction would hand one nonce to
two threads (and some nodes, Besu among them, answer "pending" from a pool view that lags). Instead each
sender's counter is read from the node once, then incremented locally under a lock. When the node says a nonce
is wrong ("nonce too low", "already known", "replacement transaction underpriced"), the caller asks for a
:meth:`NonceManager.resync`, which re-reads the node's pending count and never moves the counter backwards
past nonces this process handed out and that the node has not rejected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: Substrings of node errors meaning "this nonce is not usable any more" (geth, anvil, Besu spellings).
NONCE_ERROR_MARKERS = (
    "nonce too low",
    "already known",
    "known transaction",
    "replacement transaction underpriced",
    "nonce has already been used",
    "nonce_too_low",
    "transaction already imported",
    "incorrect_nonce",
    "replacement_underpriced",
)


def is_nonce_error(message: str) -> bool:
    """Whether a node's error message says the transaction's nonce is stale or taken."""
    lowered = message.lower()
    return any(marker in lowered for marker in NONCE_ERROR_MARKERS)


class NonceManager:
    """Thread-safe per-sender nonce counters.

    ``fetch(address)`` returns the node's pending transaction count for ``address`` (called once per sender
    and on resync).
    """

    def __init__(self, fetch: Callable[[str], int]) -> None:
        self._fetch = fetch
        self._next: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, address: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(address)
            if lock is None:
                lock = self._locks[address] = threading.Lock()
            return lock

    def reserve(self, address: str) -> int:
        """The next nonce for ``address``; each call returns a different one."""
        with self._lock_for(address):
            nonce = self._next.get(address)
            if nonce is None:
                nonce = self._fetch(address)
            self._next[address] = nonce + 1
            return nonce

    def resync(self, address: str) -> int:
        """Re-read the node's pending count after a nonce error; returns the new next nonce.

        The counter only moves forward: nonces handed out by other threads may still be in flight.
        """
        with self._lock_for(address):
            node_next = self._fetch(address)
            self._next[address] = max(node_next, self._next.get(address, 0))
            return self._next[address]

    def release(self, address: str, nonce: int) -> None:
        """Give back ``nonce`` when its transaction was never accepted by the node.

        Only the most recent nonce can be given back; otherwise a gap would remain, so the counter is
        forgotten and re-read from the node on the next :meth:`reserve`.
        """
        with self._lock_for(address):
            if self._next.get(address) == nonce + 1:
                self._next[address] = nonce
            else:
                self._next.pop(address, None)

    def rebuild(self, address: str, next_nonce: int) -> None:
        """Set the counter of ``address`` to ``next_nonce``, also backwards (after the node lost blocks, its
        caller has counted what the node and its own records hold)."""
        with self._lock_for(address):
            self._next[address] = next_nonce

    def senders(self) -> list[str]:
        """The addresses with a counter."""
        with self._guard:
            return list(self._next)

    def forget(self, address: str) -> None:
        """Drop the counter of ``address``; the next :meth:`reserve` reads the node again."""
        with self._lock_for(address):
            self._next.pop(address, None)

    def peek(self, address: str) -> int | None:
        """The next nonce that :meth:`reserve` would return, or None before the first use."""
        with self._lock_for(address):
            return self._next.get(address)
