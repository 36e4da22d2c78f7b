"""The follower: keeps the audit index moving with the chain while the API runs.

A daemon thread calls :meth:`Indexer.sync` every ``DXL_AUDIT_FOLLOW_INTERVAL`` seconds, a few block ranges at
a time so that a long catch-up still notices a stop request between ranges. Node or database trouble is logged
(without URL credentials) and retried with exponential back-off; it never ends the thread or the app.

Concurrency: every sync of one audit context, the follower's and ``POST /audit/index``'s, runs under
:attr:`AuditContext.index_lock`. Two unlocked syncs would both derive the same block range and the second
insert would fail on the events' primary key. The follower keeps its indexer (and its in-memory lineage)
between rounds only while the progress marker is where it left it; if anyone else moved it, the lineage they
indexed is reloaded from the database.

One follower per process: a second :func:`start_follower` while one runs returns None.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from node.audit.indexer import Indexer, read_progress
from node.audit.service import AuditContext
from node.errors import DxlError
from node.rpc import JsonRpc

log = logging.getLogger("dxl.audit.follower")

#: Block ranges per locked round; between rounds the lock is released and a stop request is honoured.
RANGES_PER_ROUND = 4
#: Ceiling of the back-off after consecutive failures, in seconds.
MAX_BACKOFF = 60.0

_registry_lock = threading.Lock()
_running: AuditFollower | None = None

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the user-info of any URL in it (``https://user:token@node``) masked."""
    return _USERINFO.sub("***@", text)


class AuditFollower:
    """Indexes the audit context returned by ``context`` every ``interval`` seconds until :meth:`stop`.

    ``context`` is called each round until it succeeds (the deployment may not exist yet when the API starts);
    a :class:`DxlError` from it counts as a transient failure.
    """

    def __init__(self, context: Callable[[], AuditContext], interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"follow interval must be positive, got {interval}")
        self.interval = interval
        self._context = context
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dxl-audit-follower", daemon=True)
        self._rpc: JsonRpc | None = None
        self._indexer: Indexer | None = None
        self._last_block: int | None = None
        self.failures = 0
        self.rounds = 0

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to stop and wait up to ``timeout`` seconds; True if it ended. A node call in
        flight is not interrupted (its own timeout bounds it); the thread is a daemon, so exit is not held."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        log.info("audit follower started (every %.3g s)", self.interval)
        try:
            while not self._stop.is_set():
                try:
                    more = self._round()
                except Exception as exc:  # the follower must outlive any failure, database ones included
                    self._failed(exc)
                    delay = min(self.interval * 2**self.failures, MAX_BACKOFF)
                else:
                    if self.failures:
                        log.info("audit follower recovered after %d failed round(s)", self.failures)
                    self.failures = 0
                    delay = 0.0 if more else self.interval
                self._stop.wait(delay)
        finally:
            if self._rpc is not None:
                self._rpc.close()
            log.info("audit follower stopped")

    def _round(self) -> bool:
        """One locked sync of at most :data:`RANGES_PER_ROUND` ranges; True if the head is not yet reached."""
        ctx = self._context()
        with ctx.index_lock:
            if self._stop.is_set():
                return False
            if self._rpc is None or self._rpc.url != ctx.rpc_url:
                if self._rpc is not None:
                    self._rpc.close()
                self._rpc, self._indexer = ctx.rpc(), None
            progress = read_progress(ctx.engine)
            moved_by_others = progress is None or progress.last_block != self._last_block
            if self._indexer is None or self._indexer.engine is not ctx.engine or moved_by_others:
                self._indexer = ctx.indexer(self._rpc)
            result = self._indexer.sync(max_ranges=RANGES_PER_ROUND)
            self._last_block = result.to_block
            self.rounds += 1
        if result.events or result.refusals:
            log.info(
                "audit follower indexed blocks %d-%d: %d events, %d refusals",
                result.from_block, result.to_block, result.events, result.refusals,
            )  # fmt: skip
        return result.ranges >= RANGES_PER_ROUND

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        # A failed range may have left the in-memory lineage ahead of the database: start afresh.
        self._indexer, self._last_block = None, None
        code = exc.code if isinstance(exc, DxlError) else type(exc).__name__
        message = exc.message if isinstance(exc, DxlError) else str(exc)
        level = logging.WARNING if self.failures == 1 or self.failures % 10 == 0 else logging.DEBUG
        log.log(
            level, "audit follower round failed (%d in a row) %s: %s", self.failures, code, redact(message)
        )


def start_follower(context: Callable[[], AuditContext], interval: float) -> AuditFollower | None:
    """Start the process's follower; None if ``interval`` is 0 (disabled) or one is already running.

    Raises:
        ValueError: ``interval`` is negative.
    """
    global _running
    if interval < 0:
        raise ValueError(f"follow interval must not be negative, got {interval}")
    if interval == 0:
        return None
    with _registry_lock:
        if _running is not None and _running.alive:
            log.info("an audit follower already runs in this process; not starting another")
            return None
        _running = AuditFollower(context, interval)
        _running.start()
        return _running


def stop_follower(follower: AuditFollower | None, timeout: float = 10.0) -> None:
    """Stop ``follower`` (if any) and free the process's slot."""
    global _running
    if follower is None:
        return
    if not follower.stop(timeout):
        log.warning("audit follower did not stop within %.3g s; leaving it to exit with the process", timeout)
    with _registry_lock:
        if _running is follower:
            _running = None
