"""Pure decoding of the ledger's logs and the lineage that ties each event to its request, agreement, grant,
resource and parties.

Nothing here touches a database or the network: the indexer, ``dxl audit check`` and the report verifier all
run the same code over the same logs, so a row derived in one place is derived identically in the others.

Decoded fields are canonical JSON values: integers as ``int``, ``bool``, addresses checksummed, fixed and
dynamic bytes as ``0x``-prefixed lower-case hex, strings as ``str``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from node import types
from node.audit.errors import AuditError
from verifier import abi as abi_codec
from verifier.text import counted

#: A log's position in the chain as one sortable integer: block number * SEQ_BLOCK + log index. A block holds
#: far fewer than a million logs (each costs >= 375 gas), so the key is unique and orders like the chain.
SEQ_BLOCK = 1_000_000

DELIVERY_RECORDED = "DeliveryRecorded"
DELIVERY_SETTLED = ("DeliveryAcknowledged", "DeliveryDisputed")
#: Events of the ``ReceiptAnchors`` contract beside the ledger: a batch of receipts anchored under a grant,
#: its acknowledgement by the consumer, and one receipt of it disputed.
BATCH_ANCHORED = "ReceiptBatchAnchored"
BATCH_ACKNOWLEDGED = "ReceiptBatchAcknowledged"
RECEIPT_DISPUTED = "ReceiptDisputed"
BATCH_EVENTS = (BATCH_ANCHORED, BATCH_ACKNOWLEDGED, RECEIPT_DISPUTED)


def seq_of(block_number: int, log_index: int) -> int:
    return block_number * SEQ_BLOCK + log_index


def _canonical(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.startswith("bytes"):
        return "0x" + bytes(value).hex()
    if abi_type.endswith("]") or abi_type.startswith("("):
        raise AuditError(f"event parameters of type {abi_type} are not supported by the audit decoder")
    return value


def _word_decoder(abi_type: str) -> Callable[[bytes], Any] | None:
    """The verifier's decoder of one 32-byte word of a static elementary type (None for anything else),
    giving fixed bytes as 0x-hex as every field here is. Much faster than the generic decoder, and as strict:
    padding that does not fit the type is refused (ValueError, an :class:`AuditError` once :meth:`EventCodec.
    decode` names the log)."""
    decode = abi_codec.word_decoder(abi_type)
    if decode is None or not abi_type.startswith("bytes"):
        return decode

    def fixed_bytes(word: bytes) -> str:
        return "0x" + bytes(decode(word)).hex()

    return fixed_bytes


@dataclass(frozen=True)
class _EventSpec:
    name: str
    signature: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    order: tuple[str, ...]
    # Fast paths: one word decoder per indexed topic; per data word when all data values are static words.
    topic_decoders: tuple[Callable[[bytes], Any] | None, ...] = ()
    data_decoders: tuple[Callable[[bytes], Any], ...] | None = None


class EventCodec:
    """Decodes raw JSON-RPC logs of the audited contracts (the ledger and its receipt anchors: one ABI holding
    the events of both, topic0 -> event) into canonical field dicts."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self._by_topic: dict[str, _EventSpec] = {}
        self.names: dict[str, str] = {}
        for entry in abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            inputs = entry["inputs"]
            abi_types = [abi_codec.type_of(i) for i in inputs]
            signature = abi_codec.signature(entry)
            topic0 = "0x" + abi_codec.event_topic(entry).hex()
            params = list(zip(inputs, abi_types, strict=True))
            indexed = tuple((i["name"], t) for i, t in params if i["indexed"])
            data = tuple((i["name"], t) for i, t in params if not i["indexed"])
            data_decoders = [_word_decoder(t) for _, t in data]
            spec = _EventSpec(
                name=entry["name"],
                signature=signature,
                topic0=topic0,
                indexed=indexed,
                data=data,
                order=tuple(i["name"] for i in inputs),
                topic_decoders=tuple(_word_decoder(t) for _, t in indexed),
                data_decoders=None
                if None in data_decoders
                else tuple(d for d in data_decoders if d is not None),
            )
            self._by_topic[topic0] = spec
            self.names[entry["name"]] = topic0

    @staticmethod
    def _decode(abi_types: Sequence[str], data: bytes) -> tuple[Any, ...]:
        """Values of more than the word fast paths take, by the verifier's decoder (the one every reader of
        the chain uses: ``dxl verify``, the chain client's logs, this codec)."""
        return abi_codec.decode([{"type": t} for t in abi_types], data)

    @property
    def event_names(self) -> list[str]:
        return sorted(self.names)

    def topic_of(self, name: str) -> str:
        return self.names[name]

    def decode(self, topics: Sequence[str], data: str) -> tuple[str, dict[str, Any]]:
        """Decode one log's topics and data into ``(event name, fields)``.

        Raises:
            AuditError: the log is not an event of this ABI or its data does not decode.
        """
        if not topics:
            raise AuditError("anonymous log (no topics) is not an event of the ledger")
        spec = self._by_topic.get(topics[0].lower())
        if spec is None:
            raise AuditError(f"log topic {topics[0]} is not an event of the ledger ABI")
        if len(topics) != 1 + len(spec.indexed):
            raise AuditError(
                f"{spec.name} log has {len(topics) - 1} indexed topics, expected {len(spec.indexed)}"
            )
        values: dict[str, Any] = {}
        for (name, abi_type), decoder, topic in zip(
            spec.indexed, spec.topic_decoders, topics[1:], strict=True
        ):
            word = bytes.fromhex(topic[2:])
            if decoder is not None and len(word) == 32:
                try:
                    values[name] = decoder(word)
                except ValueError as exc:
                    raise AuditError(f"{spec.name} log topic {topic}: {exc}") from exc
            elif abi_type in ("string", "bytes"):
                values[name] = "0x" + word.hex()  # indexed dynamic values are stored as their hash
            else:
                try:
                    values[name] = _canonical(abi_type, self._decode([abi_type], word)[0])
                except ValueError as exc:
                    raise AuditError(
                        f"{spec.name} log topic {topic} does not decode as {abi_type}: {exc}"
                    ) from exc
        if spec.data and spec.data_decoders is not None:
            raw = bytes.fromhex(data[2:])
            if len(raw) != 32 * len(spec.data):
                raise AuditError(
                    f"{spec.name} log data is {counted(len(raw), 'byte')}, expected {32 * len(spec.data)}"
                )
            try:
                for i, ((name, _), decoder) in enumerate(zip(spec.data, spec.data_decoders, strict=True)):
                    values[name] = decoder(raw[32 * i : 32 * i + 32])
            except ValueError as exc:
                raise AuditError(f"{spec.name} log data: {exc}") from exc
        elif spec.data:
            try:
                decoded = self._decode([t for _, t in spec.data], bytes.fromhex(data[2:]))
            except ValueError as exc:  # short or garbled data, a value that does not fit its type
                raise AuditError(f"{spec.name} log data does not decode: {exc}") from exc
            for (name, abi_type), value in zip(spec.data, decoded, strict=True):
                values[name] = _canonical(abi_type, value)
        return spec.name, {name: values[name] for name in spec.order}


@dataclass
class LocatedEvent:
    """One decoded event and where it is on the chain: what both event tables' rows begin with."""

    block_number: int
    block_hash: str
    block_time: int
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    event: str
    fields: dict[str, Any]

    @property
    def seq(self) -> int:
        return seq_of(self.block_number, self.log_index)


@dataclass
class EventRecord(LocatedEvent):
    """One decoded, located and lineage-resolved event: exactly what a row of the audit trail holds."""

    request_id: int | None = None
    agreement_id: int | None = None
    grant_id: int | None = None
    resource_id: int | None = None
    provider_id: int | None = None
    consumer_id: int | None = None
    subject_id: int | None = None
    delivery_id: str | None = None
    commitment: str | None = None

    def departments(self) -> set[int]:
        return {d for d in (self.provider_id, self.consumer_id, self.subject_id) if d is not None}

    def location(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "log_index": self.log_index,
        }


#: Events of the ``SharingPractice`` contract beside the ledger (``audit_practice_events``, apart from the
#: ledger's): a demand published, answered, an answer of it rejected, a demand withdrawn, an inspection opened
#: and drawn, a sampled delivery's outcome, a side of an agreement scored.
DEMAND_PUBLISHED = "DemandPublished"
DEMAND_ANSWERED = "DemandAnswered"
DEMAND_ANSWER_REJECTED = "DemandAnswerRejected"
DEMAND_WITHDRAWN = "DemandWithdrawn"
INSPECTION_OPENED = "InspectionOpened"
INSPECTION_DRAWN = "InspectionDrawn"
OUTCOME_RECORDED = "InspectionOutcomeRecorded"
EVALUATION_RECORDED = "EvaluationRecorded"


@dataclass
class PracticeRecord(LocatedEvent):
    """One decoded and located event of the practice contract: exactly what a row of
    ``audit_practice_events`` holds. Its id columns are its own arguments (no lineage: each practice event
    names the demand, inspection or agreement it is about)."""

    def row(self) -> dict[str, Any]:
        f = self.fields
        published = self.event == DEMAND_PUBLISHED
        return {
            "seq": self.seq,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "block_time": self.block_time,
            "tx_hash": self.tx_hash,
            "tx_index": self.tx_index,
            "log_index": self.log_index,
            "address": self.address,
            "event": self.event,
            "demand_id": f.get("demandId"),
            "inspection_id": f.get("inspectionId"),
            "agreement_id": f.get("agreementId"),
            "publisher_id": f["publisher"] if published else None,
            "addressee_id": f["addressee"] if published else None,
            "delivery_id": f.get("deliveryId"),
            "fields": json.dumps(f, separators=(",", ":")),
        }


@dataclass(frozen=True)
class GrantInfo:
    agreement_id: int
    provider: int
    consumer: int
    expires_at: int
    resource_id: int | None
    request_id: int | None


@dataclass(frozen=True)
class DeliveryInfo:
    grant_id: int
    commitment: str
    provider: int
    consumer: int
    agreement_id: int | None
    resource_id: int | None
    request_id: int | None


@dataclass
class Lineage:
    """What earlier events said about requests, agreements, grants and deliveries, to resolve later events
    that carry only an id (``RequestApproved`` names no consumer, ``DeliveryAcknowledged`` no provider).

    ``delivery_lookup`` is consulted for deliveries not seen by this instance (the indexer answers it from
    its database, so a million deliveries need not be held in memory); ``remember_deliveries`` bounds the
    in-memory map.
    """

    requests: dict[int, tuple[int, int, int]] = field(
        default_factory=dict
    )  # id -> (resource, provider, consumer)
    agreements: dict[int, tuple[int, int, int, int]] = field(
        default_factory=dict
    )  # -> (request, resource, p, c)
    agreement_status: dict[int, str] = field(default_factory=dict)
    grants: dict[int, GrantInfo] = field(default_factory=dict)
    revoked_grants: set[int] = field(default_factory=set)
    deliveries: dict[str, DeliveryInfo] = field(default_factory=dict)
    departments: dict[int, str] = field(default_factory=dict)  # id -> code
    delivery_lookup: Callable[[str], DeliveryInfo | None] | None = None
    remember_deliveries: int = 200_000

    def delivery(self, delivery_id: str) -> DeliveryInfo | None:
        info = self.deliveries.get(delivery_id)
        if info is None and self.delivery_lookup is not None:
            info = self.delivery_lookup(delivery_id)
        return info

    def resolve(self, record: EventRecord) -> EventRecord:
        """Fill ``record``'s lineage columns from its fields and what came before, and learn from it."""
        f = record.fields
        name = record.event
        if name.startswith("Department"):
            record.subject_id = f["departmentId"]
            if name == "DepartmentAdmitted":
                self.departments[f["departmentId"]] = decode_code(f["code"])
        elif name in ("ResourceRegistered", "ResourceUpdated"):
            record.resource_id, record.provider_id = f["resourceId"], f["owner"]
        elif name == "AccessRequested":
            record.request_id, record.resource_id = f["requestId"], f["resourceId"]
            record.provider_id, record.consumer_id = f["provider"], f["consumer"]
            self.requests[f["requestId"]] = (f["resourceId"], f["provider"], f["consumer"])
        elif name in ("RequestApproved", "RequestRejected"):
            record.request_id, record.provider_id = f["requestId"], f["provider"]
            known = self.requests.get(f["requestId"])
            if known is not None:
                record.resource_id, _, record.consumer_id = known
        elif name == "RequestWithdrawn":  # by the consumer or the provider: the request names both
            record.request_id = f["requestId"]
            known = self.requests.get(f["requestId"])
            if known is not None:
                record.resource_id, record.provider_id, record.consumer_id = known
        elif name == "AgreementConcluded":
            record.agreement_id, record.request_id = f["agreementId"], f["requestId"]
            record.provider_id, record.consumer_id, record.resource_id = (
                f["provider"],
                f["consumer"],
                f["resourceId"],
            )
            self.agreements[f["agreementId"]] = (
                f["requestId"],
                f["resourceId"],
                f["provider"],
                f["consumer"],
            )
            self.agreement_status[f["agreementId"]] = "active"
        elif name in ("AgreementSuspended", "AgreementReinstated", "AgreementRevoked"):
            record.agreement_id = f["agreementId"]
            self._fill_agreement(record, f["agreementId"])
            self.agreement_status[f["agreementId"]] = {
                "AgreementSuspended": "suspended",
                "AgreementReinstated": "active",
                "AgreementRevoked": "revoked",
            }[name]
        elif name == "GrantIssued":
            record.grant_id, record.agreement_id = f["grantId"], f["agreementId"]
            record.provider_id, record.consumer_id = f["provider"], f["consumer"]
            self._fill_agreement(record, f["agreementId"])
            self.grants[f["grantId"]] = GrantInfo(
                f["agreementId"],
                f["provider"],
                f["consumer"],
                f["expiresAt"],
                record.resource_id,
                record.request_id,
            )
        elif name == "GrantRevoked":
            record.grant_id, record.provider_id = f["grantId"], f["provider"]
            self._fill_grant(record, f["grantId"])
            self.revoked_grants.add(f["grantId"])
        elif name == DELIVERY_RECORDED:
            record.delivery_id, record.grant_id, record.commitment = (
                f["deliveryId"],
                f["grantId"],
                f["commitment"],
            )
            record.provider_id, record.consumer_id = f["provider"], f["consumer"]
            self._fill_grant(record, f["grantId"])
            if len(self.deliveries) >= self.remember_deliveries:
                self.deliveries.clear()  # the lookup answers for older ones
            self.deliveries[f["deliveryId"]] = DeliveryInfo(
                f["grantId"],
                f["commitment"],
                f["provider"],
                f["consumer"],
                record.agreement_id,
                record.resource_id,
                record.request_id,
            )
        elif name in BATCH_EVENTS:
            # The anchors contract's events name the grant; the grant's lineage names the rest. A batch's
            # acknowledgement and a dispute carry only the consumer: the provider is the grant's.
            record.grant_id, record.consumer_id = f["grantId"], f["consumer"]
            record.provider_id = f.get("provider")
            if name == RECEIPT_DISPUTED:
                record.delivery_id, record.commitment = f["deliveryId"], f["recordedCommitment"]
            self._fill_grant(record, f["grantId"])
            grant = self.grants.get(f["grantId"])
            if record.provider_id is None and grant is not None:
                record.provider_id = grant.provider
        elif name in DELIVERY_SETTLED:
            record.delivery_id, record.consumer_id = f["deliveryId"], f["consumer"]
            info = self.delivery(f["deliveryId"])
            if info is not None:
                record.grant_id, record.commitment, record.provider_id = (
                    info.grant_id,
                    info.commitment,
                    info.provider,
                )
                record.agreement_id, record.resource_id, record.request_id = (
                    info.agreement_id,
                    info.resource_id,
                    info.request_id,
                )
        return record

    def _fill_agreement(self, record: EventRecord, agreement_id: int) -> None:
        known = self.agreements.get(agreement_id)
        if known is not None:
            record.request_id, record.resource_id = known[0], known[1]
            record.provider_id = record.provider_id if record.provider_id is not None else known[2]
            record.consumer_id = record.consumer_id if record.consumer_id is not None else known[3]

    def _fill_grant(self, record: EventRecord, grant_id: int) -> None:
        info = self.grants.get(grant_id)
        if info is not None:
            record.agreement_id, record.resource_id, record.request_id = (
                info.agreement_id,
                info.resource_id,
                info.request_id,
            )
            record.consumer_id = record.consumer_id if record.consumer_id is not None else info.consumer

    def refusal_reason(self, grant_id: int, block_time: int) -> str:
        """Why a failed ``recordDelivery`` under ``grant_id`` at ``block_time`` was most likely refused, from
        what the logs say about the grant then: ``grant_revoked``, ``grant_expired``, ``agreement_inactive``,
        ``unknown_grant`` or ``other`` (duplicate id, suspended department, bad field...)."""
        info = self.grants.get(grant_id)
        if info is None:
            return "unknown_grant"
        if grant_id in self.revoked_grants:
            return "grant_revoked"
        if block_time >= info.expires_at:
            return "grant_expired"
        if self.agreement_status.get(info.agreement_id, "active") != "active":
            return "agreement_inactive"
        return "other"


def decode_code(code_hex: str) -> str:
    """A department code (ASCII right-padded bytes32, as hex) as text."""
    return types.decode_code(bytes.fromhex(code_hex[2:]))


_RECORD_TYPES = ["bytes32", "uint64", "bytes32", "uint8", "uint64", "uint64"]
#: Selectors of the delivery-recording calls: failed transactions that carry one are refused deliveries.
RECORD_DELIVERY_SELECTOR = "0x" + keccak(text=f"recordDelivery({','.join(_RECORD_TYPES)})")[:4].hex()
RECORD_DELIVERIES_SELECTOR = "0x" + keccak(text=f"recordDeliveries(({','.join(_RECORD_TYPES)})[])")[:4].hex()


def _record_args(values: Sequence[Any]) -> dict[str, Any]:
    d_id, grant, commitment, alg, size, count = values
    return {
        "deliveryId": "0x" + d_id.hex(),
        "grantId": grant,
        "commitment": "0x" + commitment.hex(),
        "hashAlgorithm": alg,
        "byteSize": size,
        "recordCount": count,
    }


def decode_delivery_attempts(data: str) -> list[dict[str, Any]] | None:
    """The deliveries a ``recordDelivery`` or ``recordDeliveries`` call tried to record (in order), or None if
    ``data`` is neither call."""
    try:
        if data.startswith(RECORD_DELIVERY_SELECTOR):
            return [_record_args(abi_decode(_RECORD_TYPES, bytes.fromhex(data[10:])))]
        if data.startswith(RECORD_DELIVERIES_SELECTOR):
            (records,) = abi_decode([f"({','.join(_RECORD_TYPES)})[]"], bytes.fromhex(data[10:]))
            return [_record_args(r) for r in records] or None
    except Exception:  # garbled calldata is not a delivery attempt we can attribute
        return None
    return None
