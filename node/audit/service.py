"""Wiring the audit trail to the configured node, deployment and database (what the CLI and API share)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from node.audit.events import EventCodec
from node.audit.indexer import Indexer, IndexerConfig, Rewind
from node.audit.rpc import JsonRpc
from node.audit.store import open_store


class AuditSettings(BaseSettings):
    """``DXL_AUDIT_*`` settings of the indexer and scorecards."""

    model_config = SettingsConfigDict(env_prefix="DXL_AUDIT_", env_file=".env", extra="ignore")

    batch_blocks: int = 2000
    confirmations: int = 0
    scan_refusals: bool = True
    response_deadline_days: int = 10

    def indexer_config(self) -> IndexerConfig:
        return IndexerConfig(self.batch_blocks, self.confirmations, self.scan_refusals)


def ledger_abi() -> list[dict[str, Any]]:
    from node.compiler import load_artifact

    return list(load_artifact("DataExchangeLedger").abi)


@dataclass
class AuditContext:
    engine: Engine
    rpc_url: str
    chain_id: int
    contract: str
    start_block: int
    codec: EventCodec
    abi: list[dict[str, Any]]
    settings: AuditSettings
    #: Held by every sync of this context (the API's follower and ``POST /audit/index``): two concurrent syncs
    #: would derive the same range and collide on the events' primary key.
    index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def rpc(self) -> JsonRpc:
        return JsonRpc(self.rpc_url)

    def heal(self) -> Rewind | None:
        """Drop what the index holds beyond the chain the node serves now (see :meth:`Indexer.heal`): called
        before answering provenance, so an answer never names a delivery the chain has lost, even between
        two rounds of the follower.

        Raises:
            NodeError: the node fails (the index cannot be vouched for).
        """
        with self.index_lock, self.rpc() as rpc:
            return self.indexer(rpc).heal()

    def indexer(self, rpc: JsonRpc) -> Indexer:
        return Indexer(
            self.engine,
            rpc,
            self.codec,
            contract=self.contract,
            chain_id=self.chain_id,
            start_block=self.start_block,
            config=self.settings.indexer_config(),
        )


def open_context(home: Path | None = None, database_url: str | None = None) -> AuditContext:
    """The audit context of the configured deployment (``DXL_HOME/deployment.json``), node and database.

    Raises:
        NotDeployedError, ConfigurationError: no or unreadable deployment record, bad settings.
    """
    from node.anvil import EmbeddedNode
    from node.deploy import load_deployment
    from node.settings import Settings

    settings = Settings()
    home = home or settings.home
    deployment = load_deployment(home)
    rpc_url = settings.rpc_url or EmbeddedNode(home).endpoint.rpc_url
    url = database_url or settings.database_url or f"sqlite:///{home / 'audit.sqlite3'}"
    abi = ledger_abi()
    return AuditContext(
        engine=open_store(url),
        rpc_url=rpc_url,
        chain_id=deployment.chain_id,
        contract=deployment.address,
        start_block=deployment.block_number,
        codec=EventCodec(abi),
        abi=abi,
        settings=AuditSettings(),
    )
