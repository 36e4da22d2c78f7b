"""Deriving the audit trail's rows from the chain, for one bounded block range.

The indexer writes what :func:`derive_range` returns; ``dxl audit check`` compares it with what the database
holds. Both therefore agree by construction on what a correct row is.

Cost: one ``eth_getLogs`` per range. Block headers are fetched for blocks that hold events; when refused
deliveries are scanned, every block of the range is fetched with its transactions (``eth_getBlockByNumber``,
batched by 200) and one receipt per ``recordDelivery`` transaction sent to the contract — failed deliveries
leave no log, so this is the only way to see them. On a QBFT network with 2-second blocks that is 43,200 block
reads per day of chain; turn the scan off (``scan_refusals=False``) if that is too much for the node.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address

from node.audit.errors import AuditError
from node.audit.events import (
    EventCodec,
    EventRecord,
    Lineage,
    LocatedEvent,
    PracticeRecord,
    decode_delivery_attempts,
)
from node.rpc import JsonRpc, quantity


@dataclass(frozen=True)
class BlockRow:
    number: int
    hash: str
    timestamp: int


@dataclass
class Refusal:
    """A ``recordDelivery`` (or ``recordDeliveries``) transaction to the contract that reverted (status 0): a
    refused delivery."""

    tx_hash: str
    block_number: int
    block_hash: str
    block_time: int
    tx_index: int
    sender: str
    grant_id: int
    delivery_id: str
    commitment: str
    provider_id: int | None
    consumer_id: int | None
    reason: str

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DerivedRange:
    first_block: int
    last_block: int
    last_block_hash: str
    records: list[EventRecord] = field(default_factory=list)
    blocks: list[BlockRow] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    #: The events of the practice contract beside the ledger, if it is indexed.
    practice: list[PracticeRecord] = field(default_factory=list)


@functools.cache
def practice_codec() -> EventCodec:
    """The decoder of the ``SharingPractice`` contract's events (from its build artifact)."""
    from node.audit.practice_report import practice_abi

    return EventCodec(practice_abi())


def record_row(record: EventRecord) -> dict[str, Any]:
    """The ``audit_events`` row of a record."""
    # Spelled out rather than looped over _RECORD_COLUMNS: this runs once per indexed event, and the literal
    # is the fastest way to build the row.
    return {
        "seq": record.seq,
        "block_number": record.block_number,
        "block_hash": record.block_hash,
        "block_time": record.block_time,
        "tx_hash": record.tx_hash,
        "tx_index": record.tx_index,
        "log_index": record.log_index,
        "address": record.address,
        "event": record.event,
        "request_id": record.request_id,
        "agreement_id": record.agreement_id,
        "grant_id": record.grant_id,
        "resource_id": record.resource_id,
        "provider_id": record.provider_id,
        "consumer_id": record.consumer_id,
        "subject_id": record.subject_id,
        "delivery_id": record.delivery_id,
        "commitment": record.commitment,
        "fields": json.dumps(record.fields, separators=(",", ":")),
    }


#: The ``audit_events`` columns stored as the :class:`EventRecord` attribute of the same name (``fields`` is
#: JSON text in the table and converted on its own).
_RECORD_COLUMNS = tuple(f.name for f in dataclasses.fields(EventRecord) if f.name != "fields")


def row_record(row: Any) -> EventRecord:
    """A record back from an ``audit_events`` row (mapping or Row)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return EventRecord(**{name: m[name] for name in _RECORD_COLUMNS}, fields=json.loads(m["fields"]))


def derive_range(
    rpc: JsonRpc,
    codec: EventCodec,
    lineage: Lineage,
    contract: str,
    first: int,
    last: int,
    *,
    scan_refusals: bool,
    anchors: str | None = None,
    practice: str | None = None,
) -> DerivedRange:
    """Decode, locate and resolve every event of ``contract`` (and of its receipt ``anchors`` contract, if
    any) in blocks ``first..last`` (and, with ``scan_refusals``, every failed ``recordDelivery``), in chain
    order, advancing ``lineage``; the events of the ``practice`` contract (if any), read by the same
    ``eth_getLogs``, apart.

    Raises:
        NodeError: the node fails or a block is missing.
        AuditError: a log does not decode, or the chain changed under the read (a log's block hash differs
            from the block's).
    """
    addresses = [a for a in (contract, anchors, practice) if a is not None]
    practice_lower = None if practice is None else practice.lower()
    logs = [log for log in rpc.logs(addresses, first, last) if not log.get("removed")]
    if scan_refusals:
        numbers = list(range(first, last + 1))
    else:
        numbers = sorted({quantity(log["blockNumber"]) for log in logs} | {last})
    fetched = rpc.blocks(numbers, full=scan_refusals)
    headers = {quantity(b["number"]): b for b in fetched}
    out = DerivedRange(first_block=first, last_block=last, last_block_hash=str(headers[last]["hash"]).lower())

    attempts: list[tuple[int, int, dict[str, Any]]] = []
    if scan_refusals:
        contract_lower = contract.lower()
        for block in fetched:
            for tx in block["transactions"]:
                if (tx.get("to") or "").lower() != contract_lower:
                    continue
                tried = decode_delivery_attempts(tx.get("input") or tx.get("data") or "0x")
                if tried is not None:
                    attempt = {"tried": tried, "tx": tx}
                    attempts.append((quantity(block["number"]), quantity(tx["transactionIndex"]), attempt))
        if attempts:
            receipts = rpc.receipts([a[2]["tx"]["hash"] for a in attempts])
            attempts = [
                a
                for a, r in zip(attempts, receipts, strict=True)
                if r is not None and quantity(r["status"]) == 0
            ]

    # Events and refusals in one chain-ordered stream: a refusal's reason depends on the grant's state just
    # before it (a revocation earlier in the same block counts).
    items: list[tuple[int, int, int, Any]] = [
        (quantity(log["blockNumber"]), quantity(log["transactionIndex"]), quantity(log["logIndex"]), log)
        for log in logs
    ]
    items += [(number, tx_index, -1, args) for number, tx_index, args in attempts]
    items.sort(key=lambda i: (i[0], i[1], i[2]))
    used: set[int] = set()
    for number, tx_index, log_index, item in items:
        header = headers[number]
        block_hash, block_time = str(header["hash"]).lower(), quantity(header["timestamp"])
        used.add(number)
        if log_index >= 0:
            if str(item["blockHash"]).lower() != block_hash:
                raise AuditError(
                    f"log {log_index} of block {number} names block {item['blockHash']}, the block is "
                    f"{block_hash}: the chain changed during the read; retry or raise the confirmation depth"
                )
            of_practice = str(item["address"]).lower() == practice_lower
            name, fields = (practice_codec() if of_practice else codec).decode(item["topics"], item["data"])
            located = LocatedEvent(
                block_number=number,
                block_hash=block_hash,
                block_time=block_time,
                tx_hash=str(item["transactionHash"]).lower(),
                tx_index=tx_index,
                log_index=log_index,
                address=to_checksum_address(item["address"]),
                event=name,
                fields=fields,
            )
            if of_practice:
                out.practice.append(PracticeRecord(**vars(located)))
            else:
                out.records.append(lineage.resolve(EventRecord(**vars(located))))
        else:
            # A failed batch is one refusal, attributed to the first record the logs explain (a revoked or
            # expired grant, an inactive agreement): the contract reverts the batch at that record.
            reasons = [(lineage.refusal_reason(t["grantId"], block_time), t) for t in item["tried"]]
            reason, tried = next(((r, t) for r, t in reasons if r != "other"), reasons[0])
            grant = lineage.grants.get(tried["grantId"])
            out.refusals.append(
                Refusal(
                    tx_hash=str(item["tx"]["hash"]).lower(),
                    block_number=number,
                    block_hash=block_hash,
                    block_time=block_time,
                    tx_index=tx_index,
                    sender=to_checksum_address(item["tx"]["from"]),
                    grant_id=tried["grantId"],
                    delivery_id=tried["deliveryId"],
                    commitment=tried["commitment"],
                    provider_id=grant.provider if grant else None,
                    consumer_id=grant.consumer if grant else None,
                    reason=reason,
                )
            )
    out.blocks = [
        BlockRow(n, str(headers[n]["hash"]).lower(), quantity(headers[n]["timestamp"])) for n in sorted(used)
    ]
    return out


def chunks(first: int, last: int, size: int) -> list[tuple[int, int]]:
    if size < 1:
        raise AuditError(f"block range size must be at least 1, got {size}")
    return [(a, min(a + size - 1, last)) for a in range(first, last + 1, size)]
