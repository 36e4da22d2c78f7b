"""The audit trail's tables (SQLAlchemy Core). The schema itself is created by the Alembic migrations in
``node/audit/migrations``; these definitions must match them (``tests/audit`` checks that they do).

``audit_events.seq`` is the chain position ``block_number * 1_000_000 + log_index``: the unique key that
makes a re-read log a conflict instead of a duplicate, the sort order of every query, and the pagination
cursor. Lineage columns (request, agreement, grant, resource, provider, consumer) are resolved at indexing
time so that every filter is one index range scan in chain order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# SQLite only treats "INTEGER PRIMARY KEY" as the rowid; BIGINT would add a second b-tree.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

progress = Table(
    "audit_progress",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", String(42), nullable=False),
    Column("start_block", BigInteger, nullable=False),
    Column("last_block", BigInteger, nullable=False),
    Column("last_block_hash", String(66), nullable=True),
    Column("scan_refusals", Boolean, nullable=False),
    # The ReceiptAnchors contract indexed beside the ledger (NULL: none, or a database older than it).
    Column("anchors", String(42), nullable=True),
    # The SharingPractice contract indexed beside the ledger (NULL: none, or a database older than it).
    Column("practice", String(42), nullable=True),
)

blocks = Table(
    "audit_blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_audit_blocks_timestamp", "timestamp"),
)


def _located_event() -> list[Column[Any]]:
    """Where an event is (its position on the chain, block, transaction, log) and what it is: the leading
    columns of both event tables (new Column objects per table, as SQLAlchemy needs)."""
    return [
        Column("seq", SeqType, primary_key=True, autoincrement=False),
        Column("block_number", BigInteger, nullable=False),
        Column("block_hash", String(66), nullable=False),
        Column("block_time", BigInteger, nullable=False),
        Column("tx_hash", String(66), nullable=False),
        Column("tx_index", Integer, nullable=False),
        Column("log_index", Integer, nullable=False),
        Column("address", String(42), nullable=False),
        Column("event", String(40), nullable=False),
    ]


events = Table(
    "audit_events",
    metadata,
    *_located_event(),
    Column("request_id", BigInteger),
    Column("agreement_id", BigInteger),
    Column("grant_id", BigInteger),
    Column("resource_id", BigInteger),
    Column("provider_id", BigInteger),
    Column("consumer_id", BigInteger),
    Column("subject_id", BigInteger),
    Column("delivery_id", String(66)),
    Column("commitment", String(66)),
    Column("fields", Text, nullable=False),
    Index("ix_audit_events_event", "event", "seq"),
    Index("ix_audit_events_provider", "provider_id", "seq"),
    Index("ix_audit_events_consumer", "consumer_id", "seq"),
    Index("ix_audit_events_subject", "subject_id", "seq"),
    Index("ix_audit_events_pair", "provider_id", "consumer_id", "seq"),
    Index("ix_audit_events_resource", "resource_id", "seq"),
    Index("ix_audit_events_agreement", "agreement_id", "seq"),
    Index("ix_audit_events_request", "request_id", "seq"),
    Index("ix_audit_events_grant", "grant_id", "seq"),
    Index("ix_audit_events_delivery", "delivery_id"),
    Index("ix_audit_events_commitment", "commitment"),
    Index("ix_audit_events_time", "block_time"),
)

refusals = Table(
    "audit_refusals",
    metadata,
    Column("tx_hash", String(66), primary_key=True),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(66), nullable=False),
    Column("block_time", BigInteger, nullable=False),
    Column("tx_index", Integer, nullable=False),
    Column("sender", String(42), nullable=False),
    Column("grant_id", BigInteger, nullable=False),
    Column("delivery_id", String(66), nullable=False),
    Column("commitment", String(66), nullable=False),
    Column("provider_id", BigInteger),
    Column("consumer_id", BigInteger),
    Column("reason", String(32), nullable=False),
    Index("ix_audit_refusals_time", "block_time"),
    Index("ix_audit_refusals_provider", "provider_id", "block_time"),
)

# The SharingPractice contract's events (demands, evaluations, inspections), apart from the ledger's:
# history, reports and scorecards read audit_events as the ledger and its anchors emitted them. The id
# columns are the event's own arguments (a demand's publisher and addressee on its publication only), so
# that the demand lists' and the inspections' filters and keyset pages are one index range scan each.
practice_events = Table(
    "audit_practice_events",
    metadata,
    *_located_event(),
    Column("demand_id", BigInteger),
    Column("inspection_id", BigInteger),
    Column("agreement_id", BigInteger),
    Column("publisher_id", BigInteger),
    Column("addressee_id", BigInteger),
    Column("delivery_id", String(66)),
    Column("fields", Text, nullable=False),
    Index("ix_audit_practice_events_demand", "event", "demand_id"),
    Index("ix_audit_practice_events_publisher", "publisher_id", "demand_id"),
    Index("ix_audit_practice_events_addressee", "addressee_id", "demand_id"),
    Index("ix_audit_practice_events_inspection", "event", "inspection_id"),
    Index("ix_audit_practice_events_agreement", "agreement_id", "seq"),
)

#: Columns of audit_events compared by ``dxl audit check`` (all of them).
EVENT_COLUMNS = tuple(c.name for c in events.columns)
REFUSAL_COLUMNS = tuple(c.name for c in refusals.columns)
PRACTICE_COLUMNS = tuple(c.name for c in practice_events.columns)
