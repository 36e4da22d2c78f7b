"""Wiring the audit trail to the configured node, deployment and database (what the CLI and API share)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from node.audit.check import IndexedContracts
from node.audit.events import EventCodec
from node.audit.indexer import CompanionSource, Indexer, IndexerConfig, Rewind, read_progress
from node.audit.store import open_store
from node.rpc import JsonRpc
from node.settings import Settings


def ledger_abi() -> list[dict[str, Any]]:
    """The ledger's ABI plus its receipt anchors' events (:func:`node.audit.verify.audit_abi`)."""
    from node.audit.verify import audit_abi

    return audit_abi()


@dataclass
class AuditContext:
    engine: Engine
    rpc_url: str
    chain_id: int
    contract: str
    start_block: int
    codec: EventCodec
    abi: list[dict[str, Any]]
    #: The settings the caller was started with (the ``DXL_AUDIT_*`` fields tune the indexer and scorecards).
    settings: Settings
    #: The ``ReceiptAnchors`` contract beside the ledger (None for a deployment record that names none).
    anchors: CompanionSource | None = None
    #: The ``SharingPractice`` contract beside the ledger (None for a deployment record that names none).
    practice: CompanionSource | None = None
    #: Held by every sync of this context (the API's follower and ``POST /audit/index``): two concurrent syncs
    #: would derive the same range and collide on the events' primary key.
    index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: Other nodes of the network, read when the one at ``rpc_url`` does not answer.
    failover_urls: tuple[str, ...] = ()

    def rpc(self) -> JsonRpc:
        return JsonRpc(self.rpc_url, timeout=self.settings.rpc_timeout, failover_urls=self.failover_urls)

    def read_from(self, rpc_url: str, failover_urls: tuple[str, ...]) -> None:
        """Read from ``rpc_url`` first, the others after it, from now on: the node the ledger's chain client
        moved to (one it left, dead or its head stalled while another's moved on, serves stale blocks). A
        sync under way ends on the node it began with; the follower reconnects at its next round."""
        self.rpc_url, self.failover_urls = rpc_url, failover_urls

    def heal(self) -> Rewind | None:
        """Drop what the index holds beyond the chain the node serves now (see :meth:`Indexer.heal`): called
        before answering provenance, so an answer never names a delivery the chain has lost, even between
        two rounds of the follower.

        Raises:
            NodeError: the node fails (the index cannot be vouched for).
        """
        with self.index_lock, self.rpc() as rpc:
            return self.indexer(rpc).heal()

    def head_time(self) -> int:
        """The head block's time: where an open period ends (``dxl audit scorecard|report``, ``GET
        /audit/scorecard``), not at time.time(), or a node whose clock runs ahead of this machine's would have
        its newest facts left out.

        Raises:
            NodeError: the node does not answer.
        """
        with self.rpc() as rpc:
            return rpc.head_time()

    def indexed_block(self) -> int | None:
        """The last block the index holds (None before its first sync)."""
        progress = read_progress(self.engine)
        return None if progress is None else progress.last_block

    def catch_up(self, block: int) -> int | None:
        """Bring the index up to the head now unless it already holds ``block``: what a reader that just wrote
        in ``block`` waits for instead of the follower's next round. Returns the last block indexed, which
        stays below ``block`` when the chain has not reached it or the index keeps its confirmation depth
        behind the head.

        Raises:
            NodeError: the node fails.
        """
        indexed = self.indexed_block()
        if indexed is not None and indexed >= block:
            return indexed
        with self.index_lock:
            indexed = self.indexed_block()  # a sync (the follower's) may have got there while this waited
            if indexed is not None and indexed >= block:
                return indexed
            with self.rpc() as rpc:
                return self.indexer(rpc).sync().to_block

    def caught_up(self) -> tuple[int, int]:
        """Make the index a prefix of the chain the node serves now (:meth:`Indexer.heal`: a node that lost
        blocks and mined as many again has a head no lower than the index's, which alone would not tell),
        bring it up to the chain's head (as near as its confirmation depth lets it) and return the last block
        it holds and that block's time: where an open period's scorecard is evaluated, and where the demand
        lists and inspections are read. What the scorecard reads from the chain itself (the practice
        contract), read after this at a later head, is cut back to that block
        (:meth:`node.practice.PracticeFacts.known_at`), and the index's facts are read up to it
        (``load_facts(through_block=...)``): the index and the chain at one position. An index left a few
        blocks behind showed a consumer's score of a delivery the card did not count, and the demand it met
        unmet.

        Raises:
            NodeError: the node fails.
        """
        with self.rpc() as rpc:
            with self.index_lock:
                self.indexer(rpc).heal()
            head = rpc.block_number()
            indexed = self.catch_up(head)
            block = head if indexed is None else min(indexed, head)
            return block, rpc.block_time(block)

    def indexed_contracts(self) -> IndexedContracts:
        """What the audit database must index, from the deployment record and the settings (``dxl audit
        check`` compares)."""
        anchors = None if self.anchors is None else self.anchors.address
        practice = None if self.practice is None else self.practice.address
        return IndexedContracts(
            self.chain_id,
            self.contract,
            self.start_block,
            anchors,
            practice,
            self.settings.audit_scan_refusals,
        )

    def indexer(self, rpc: JsonRpc) -> Indexer:
        return Indexer(
            self.engine,
            rpc,
            self.codec,
            contract=self.contract,
            chain_id=self.chain_id,
            start_block=self.start_block,
            config=IndexerConfig(
                self.settings.audit_batch_blocks,
                self.settings.audit_depth,
                self.settings.audit_scan_refusals,
            ),
            anchors=self.anchors,
            practice=self.practice,
        )


def open_context(settings: Settings, database_url: str | None = None) -> AuditContext:
    """The audit context of ``settings``' deployment (``home/deployment.json``: the ledger, its receipt
    anchors and its sharing practice), node and database. It reads first from the node every command reads
    (:func:`~node.endpoint.configured_node`): a node cut off from the signers answers with a chain that
    stopped.

    Raises:
        NotDeployedError, ConfigurationError: no or unreadable deployment record, bad settings.
    """
    from node.deploy import load_deployment
    from node.endpoint import configured_node

    home = settings.home
    deployment = load_deployment(home)
    endpoint = configured_node(settings, chain_id=deployment.chain_id)
    url = database_url or settings.database_url or f"sqlite:///{home / 'audit.sqlite3'}"
    abi = ledger_abi()
    recorded, practice = deployment.receipt_anchors, deployment.sharing_practice
    return AuditContext(
        engine=open_store(url),
        rpc_url=endpoint.rpc_url,
        failover_urls=endpoint.failover_urls,
        chain_id=deployment.chain_id,
        contract=deployment.address,
        start_block=deployment.block_number,
        codec=EventCodec(abi),
        abi=abi,
        settings=settings,
        anchors=None if recorded is None else CompanionSource(recorded.address, recorded.block_number),
        practice=None if practice is None else CompanionSource(practice.address, practice.block_number),
    )
