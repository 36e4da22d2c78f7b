"""History and provenance queries over the audit database (deliveries and anchored receipt batches).

Every filter maps onto one ``(column, seq)`` index scanned in chain order; a department filter is the union of
the provider, consumer and subject scans (or, with a counterpart, both directions of the pair index), merged
here. Pagination is keyset on ``seq`` behind an opaque cursor, so page N costs what page 1 costs.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import Any, Generic, NamedTuple, TypeVar

from eth_utils.crypto import keccak
from sqlalchemy import Engine, select

from node.audit import models as m
from node.audit.errors import InvalidQueryError, NotFoundError
from node.audit.events import (
    BATCH_ACKNOWLEDGED,
    BATCH_ANCHORED,
    DELIVERY_RECORDED,
    DELIVERY_SETTLED,
    RECEIPT_DISPUTED,
    decode_code,
)
from node.types import (
    AccessRequest,
    Agreement,
    AgreementStatus,
    DeliveryReceipt,
    DeliveryStatus,
    Department,
    DepartmentStatus,
    GovernanceAction,
    Grant,
    Proposal,
    RequestStatus,
    Resource,
    ShareType,
)
from verifier.errors import InvalidProofError
from verifier.receipts import ReceiptProof, same_stated, undeliverable_fields, verify_receipt_proof
from verifier.text import iso_time

MAX_LIMIT = 500
_CURSOR_PREFIX = "h1:"
_HEX32 = set("0123456789abcdef")

#: Ids are stored as signed 64-bit integers (SQLite INTEGER, PostgreSQL BIGINT) while the contracts' are
#: uint64, numbered from 1: a larger id names nothing the chain has, and the database could not even bind it.
MAX_INDEXED_ID = 2**63 - 1


def encode_cursor(seq: int) -> str:
    return _b64(f"{_CURSOR_PREFIX}{seq}")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


#: The most digits of a position :data:`CURSOR_PATTERN` spells: every position below 10**18, short of
#: :data:`MAX_INDEXED_ID` (19 digits), which no index reaches (a billion events a second for 31 years).
CURSOR_DIGITS = 18


def _cursor_pattern() -> str:
    """The regular expression of the cursors :func:`encode_cursor` writes for positions of at most
    :data:`CURSOR_DIGITS` digits, and of the empty cursor (the first page): the prefix, then each three
    digits as four base64 characters and the last one or two as two or three. Every string it matches is
    one :func:`decode_cursor` reads. A client, or a fuzzer, reading the OpenAPI document knows the form of a
    cursor; one of that form may still name a position past the list (a 422 too)."""
    assert len(_CURSOR_PREFIX) % 3 == 0  # the prefix's characters end on a group of four
    digits = "0123456789"
    # A digit's byte is 0x30-0x39: the characters of one digit's place in a group depend on that digit alone.
    first = "|".join(sorted({_b64(d + "00")[:2] for d in digits}))
    second = "[" + "".join(sorted({_b64("0" + d + "0")[2] for d in digits})) + "]"
    third = "[" + "".join(sorted({_b64("00" + d)[3] for d in digits})) + "]"
    lone = "|".join(sorted({_b64(d) for d in digits}))
    group = f"(?:{first}){second}{third}"
    groups = CURSOR_DIGITS // 3
    tail = f"(?:{lone}|(?:{first}){second})"
    return f"^(?:{_b64(_CURSOR_PREFIX)}(?:(?:{group}){{1,{groups}}}|(?:{group}){{0,{groups - 1}}}{tail}))?$"


#: What a cursor of a list looks like (:func:`_cursor_pattern`).
CURSOR_PATTERN = _cursor_pattern()


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for.

    Raises:
        InvalidQueryError: the cursor was not produced by :func:`encode_cursor`.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError("wrong prefix")
        digits = text[len(_CURSOR_PREFIX) :]
        # Decimal digits as encode_cursor writes them (int() would also take "+5", " 5" or "1_0"), and a
        # position the index can hold: past 2**63 - 1 the database could not even bind it, and a forged
        # cursor answered 500 on every list.
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError("not a position")
        seq = int(digits)
        if seq > MAX_INDEXED_ID:
            raise ValueError("beyond any position")
        return seq
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidQueryError("cursor", f"{cursor!r} is not a cursor returned by this service") from exc


def normalize_bytes32(value: str, field: str) -> str:
    """``0x`` + 64 lower-case hex digits.

    Raises:
        InvalidQueryError: anything else.
    """
    v = value.strip().lower()
    v = v if v.startswith("0x") else "0x" + v
    if len(v) != 66 or not set(v[2:]) <= _HEX32:
        raise InvalidQueryError(field, f"{value!r} is not 32 bytes of hex")
    return v


def event_dict(row: Any) -> dict[str, Any]:
    """The public form of an ``audit_events`` row: what happened, where on chain, what it resolves to."""
    r = row._mapping if hasattr(row, "_mapping") else row
    return {
        "event": r["event"],
        "time": iso_time(r["block_time"]),
        "timestamp": r["block_time"],
        "location": {
            "tx_hash": r["tx_hash"],
            "block_number": r["block_number"],
            "block_hash": r["block_hash"],
            "log_index": r["log_index"],
            "tx_index": r["tx_index"],
            "address": r["address"],
        },
        "request_id": r["request_id"],
        "agreement_id": r["agreement_id"],
        "grant_id": r["grant_id"],
        "resource_id": r["resource_id"],
        "provider_id": r["provider_id"],
        "consumer_id": r["consumer_id"],
        "subject_id": r["subject_id"],
        "delivery_id": r["delivery_id"],
        "commitment": r["commitment"],
        "fields": json.loads(r["fields"]),
    }


@dataclass(frozen=True)
class HistoryFilter:
    department: int | None = None
    counterpart: int | None = None
    resource: int | None = None
    agreement: int | None = None
    events: tuple[str, ...] = ()
    from_time: int | None = None
    to_time: int | None = None

    def validate(self, known_events: Sequence[str]) -> None:
        """Raises:
        InvalidQueryError: a counterpart without a department, an unknown event type or one named twice, an
            empty period or a negative id."""
        if self.counterpart is not None and self.department is None:
            raise InvalidQueryError("counterpart", "needs a department to be the other party of")
        for i, name in enumerate(self.events):
            if name not in known_events:
                raise InvalidQueryError(
                    "event", f"{name!r} is not a ledger event (known: {', '.join(known_events)})"
                )
            # Each once: the filter then holds at most every known event, however long a query string.
            if name in self.events[:i]:
                raise InvalidQueryError("event", f"{name!r} is named twice")
        for field in ("department", "counterpart", "resource", "agreement", "from_time", "to_time"):
            value = getattr(self, field)
            if value is not None and value < 0:
                raise InvalidQueryError(field, f"must not be negative, got {value}")
        if self.from_time is not None and self.to_time is not None and self.from_time >= self.to_time:
            raise InvalidQueryError(
                "period", f"from ({iso_time(self.from_time)}) must be before to ({iso_time(self.to_time)})"
            )


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def _seq_at_time(conn: Any, ts: int) -> int | None:
    """The first position at or after ``ts`` (block times only grow along the chain)."""
    e = m.events.c
    seq: int | None = conn.execute(
        select(e.seq).where(e.block_time >= ts).order_by(e.block_time, e.seq).limit(1)
    ).scalar_one_or_none()
    return seq


def history(
    engine: Engine,
    flt: HistoryFilter,
    *,
    known_events: Sequence[str],
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of events matching ``flt``, oldest first, after ``cursor``.

    Raises:
        InvalidQueryError: a malformed filter, cursor or limit.
    """
    flt.validate(known_events)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    after = decode_cursor(cursor) if cursor else -1
    e = m.events.c
    with engine.connect() as conn:
        common = [e.seq > after]
        if flt.from_time is not None:
            lo = _seq_at_time(conn, flt.from_time)
            if lo is None:
                return Page([], None)
            common.append(e.seq >= lo)
        if flt.to_time is not None:
            hi = _seq_at_time(conn, flt.to_time)
            if hi is not None:
                common.append(e.seq < hi)
        for ident in (flt.resource, flt.agreement):
            if ident is not None and ident > MAX_INDEXED_ID:
                return Page([], None)
        if flt.resource is not None:
            common.append(e.resource_id == flt.resource)
        if flt.agreement is not None:
            common.append(e.agreement_id == flt.agreement)
        if flt.events:
            common.append(e.event.in_(flt.events))
        if flt.department is None:
            branches: list[list[Any]] = [[]]
        elif flt.counterpart is None:
            branches = [
                [e.provider_id == flt.department],
                [e.consumer_id == flt.department],
                [e.subject_id == flt.department],
            ]
        else:
            branches = [
                [e.provider_id == flt.department, e.consumer_id == flt.counterpart],
                [e.provider_id == flt.counterpart, e.consumer_id == flt.department],
            ]
        seqs: set[int] = set()
        for branch in branches:
            q = select(e.seq).where(*common, *branch).order_by(e.seq).limit(limit + 1)
            seqs.update(conn.execute(q).scalars())
        page = sorted(seqs)[: limit + 1]
        more = len(page) > limit
        page = page[:limit]
        rows = conn.execute(select(m.events).where(e.seq.in_(page)).order_by(e.seq)).all() if page else []
    return Page([event_dict(r) for r in rows], encode_cursor(page[-1]) if more else None)


#: The status each settlement event leaves a delivery in (``DELIVERY_SETTLED``: acknowledged, disputed).
_SETTLED_STATUS = dict(
    zip(DELIVERY_SETTLED, (DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.DISPUTED), strict=True)
)
#: The status each of an agreement's later events leaves it in (concluded: active).
_AGREEMENT_STATUS = {
    "AgreementSuspended": AgreementStatus.SUSPENDED,
    "AgreementReinstated": AgreementStatus.ACTIVE,
    "AgreementRevoked": AgreementStatus.REVOKED,
}
_T = TypeVar("_T")
_U = TypeVar("_U")


@dataclass(frozen=True)
class ListFilter:
    """Which records a list of exchanges shows. ``party``: only those the department is provider or consumer
    of (the reader's own, for a department); the others narrow by the parties and the record's lineage."""

    party: int | None = None
    provider: int | None = None
    consumer: int | None = None
    grant: int | None = None
    agreement: int | None = None
    resource: int | None = None


@dataclass(frozen=True)
class IndexedDelivery:
    """A delivery as the index holds it: the recorded receipt, its block, and its status by the settlement
    events indexed so far."""

    delivery_id: bytes
    receipt: DeliveryReceipt
    block_number: int
    status: DeliveryStatus


@dataclass(frozen=True)
class IndexPage(Generic[_T]):
    """One page of a list read from the index, newest first: the items, the cursor of the page after it (None
    on the last), and each item's own cursor (the page after that item), for a reader that keeps only some of
    the items and must resume right after the last one it kept."""

    items: list[_T]
    next_cursor: str | None
    cursors: list[str] = dataclass_field(default_factory=list)

    def map(self, convert: Callable[[list[_T]], list[_U]]) -> IndexPage[_U]:
        """The same page with its items converted all at once (``convert`` keeps their number and order)."""
        return IndexPage(convert(self.items), self.next_cursor, self.cursors)


class _Logged(NamedTuple):
    """One indexed event as the lists read it."""

    seq: int
    block_number: int
    block_time: int
    fields: dict[str, Any]


def _newest(
    conn: Any, events: str | Sequence[str], flt: ListFilter, cursor: str | None, limit: int
) -> IndexPage[_Logged]:
    """One page of ``events`` rows matching ``flt``, newest first, before ``cursor``.

    Each filter is a range of one ``(column, seq)`` index walked backwards; a ``party`` is the union of its
    provider and consumer scans, so a page costs a few index reads whatever its length.

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    for name in ("party", "provider", "consumer", "grant", "agreement", "resource"):
        value = getattr(flt, name)
        if value is not None and value < 0:
            raise InvalidQueryError(name, f"must not be negative, got {value}")
        if value is not None and value > MAX_INDEXED_ID:
            return IndexPage([], None)
    before = decode_cursor(cursor) if cursor else None
    e = m.events.c
    common: list[Any] = [e.event == events] if isinstance(events, str) else [e.event.in_(events)]
    if before is not None:
        common.append(e.seq < before)
    for column, value in (
        (e.provider_id, flt.provider), (e.consumer_id, flt.consumer), (e.grant_id, flt.grant),
        (e.agreement_id, flt.agreement), (e.resource_id, flt.resource),
    ):  # fmt: skip
        if value is not None:
            common.append(column == value)
    branches: list[list[Any]] = (
        [[]] if flt.party is None else [[e.provider_id == flt.party], [e.consumer_id == flt.party]]
    )
    seqs: set[int] = set()
    for branch in branches:
        q = select(e.seq).where(*common, *branch).order_by(e.seq.desc()).limit(limit + 1)
        seqs.update(conn.execute(q).scalars())
    page = sorted(seqs, reverse=True)[: limit + 1]
    more = len(page) > limit
    page = page[:limit]
    if not page:
        return IndexPage([], None)
    rows = conn.execute(
        select(e.seq, e.block_number, e.block_time, e.fields).where(e.seq.in_(page)).order_by(e.seq.desc())
    ).all()
    return IndexPage(
        [_Logged(int(r.seq), int(r.block_number), int(r.block_time), json.loads(r.fields)) for r in rows],
        encode_cursor(page[-1]) if more else None,
        [encode_cursor(seq) for seq in page],
    )


def _latest(conn: Any, column: Any, idents: list[Any], events: Sequence[str]) -> dict[Any, str]:
    """For each of ``idents`` (values of ``column``), the name of its latest event among ``events``."""
    e = m.events.c
    latest: dict[Any, str] = {}
    for ident, event in conn.execute(
        select(column, e.event).where(column.in_(idents), e.event.in_(events)).order_by(e.seq)
    ):
        latest[ident] = event
    return latest


def deliveries(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[IndexedDelivery]:
    """One page of recorded deliveries matching ``flt``, newest first, each with its status by the settlement
    events indexed (one query for the page).

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    with engine.connect() as conn:
        rows = _newest(conn, DELIVERY_RECORDED, flt, cursor, limit)
        settled = _latest(
            conn, m.events.c.delivery_id, [r.fields["deliveryId"] for r in rows.items], DELIVERY_SETTLED
        )

    def delivery(r: _Logged) -> IndexedDelivery:
        f = r.fields
        return IndexedDelivery(
            delivery_id=bytes.fromhex(f["deliveryId"][2:]),
            receipt=DeliveryReceipt.from_event_args(
                int(f["grantId"]), {**f, "commitment": bytes.fromhex(f["commitment"][2:])}
            ),
            block_number=r.block_number,
            status=_SETTLED_STATUS.get(settled.get(f["deliveryId"], ""), DeliveryStatus.RECORDED),
        )

    return rows.map(lambda items: [delivery(r) for r in items])


#: The events that move a request on from its ``AccessRequested``, and the status each leaves it in.
_REQUEST_STATUS = {
    "RequestApproved": RequestStatus.APPROVED,
    "RequestRejected": RequestStatus.REJECTED,
    "RequestWithdrawn": RequestStatus.WITHDRAWN,
    "AgreementConcluded": RequestStatus.CONCLUDED,
}
_RESOURCE_EVENTS = ("ResourceRegistered", "ResourceUpdated")


def _share_types(conn: Any, resource_ids: Sequence[int]) -> dict[int, ShareType]:
    """Each resource's share type by its latest registration or update indexed."""
    e = m.events.c
    latest: dict[int, ShareType] = {}
    for ident, fields in conn.execute(
        select(e.resource_id, e.fields)
        .where(e.resource_id.in_(resource_ids), e.event.in_(_RESOURCE_EVENTS))
        .order_by(e.seq)
    ):
        latest[int(ident)] = ShareType(json.loads(fields)["shareType"])
    return latest


def requests(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[AccessRequest]:
    """One page of access requests matching ``flt``, newest first, each as the ledger's ``request(id)`` view
    answers it at the last block indexed: the request from its ``AccessRequested`` event (``requested_at`` its
    block's time, ``purpose_hash`` the keccak of the purpose it carries), its status, decision time and reason
    from the approval, rejection, withdrawal or agreement that followed. The ledger computes one status
    without an event: an approval on arrival reads as pending while its resource is no longer shared
    unconditionally; the resource's latest registration or update indexed says whether it is.

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    e = m.events.c
    with engine.connect() as conn:
        rows = _newest(conn, "AccessRequested", flt, cursor, limit)
        ids = [int(r.fields["requestId"]) for r in rows.items]
        later: dict[int, list[Any]] = {}
        for row in conn.execute(
            select(e.request_id, e.event, e.block_time, e.fields)
            .where(e.request_id.in_(ids), e.event.in_(list(_REQUEST_STATUS)))
            .order_by(e.seq)
        ):
            later.setdefault(int(row.request_id), []).append(row)
        shared = _share_types(conn, sorted({int(r.fields["resourceId"]) for r in rows.items}))

    def request(r: _Logged) -> AccessRequest:
        f = r.fields
        ident, automatic = int(f["requestId"]), False
        status, decided_at, reason_code = RequestStatus.PENDING, 0, 0
        for row in later.get(ident, []):
            status = _REQUEST_STATUS[row.event]
            if row.event == "RequestApproved":
                decided_at, automatic = int(row.block_time), bool(json.loads(row.fields)["automatic"])
            elif row.event == "RequestRejected":
                decided_at, reason_code = int(row.block_time), int(json.loads(row.fields)["reasonCode"])
        unconditional = shared.get(int(f["resourceId"])) is ShareType.UNCONDITIONAL
        if status is RequestStatus.APPROVED and automatic and not unconditional:
            status = RequestStatus.PENDING
        return AccessRequest(
            id=ident, resource_id=int(f["resourceId"]), consumer=int(f["consumer"]),
            provider=int(f["provider"]), status=status, requested_at=r.block_time, decided_at=decided_at,
            reason_code=reason_code,
            valid_from=int(f["validFrom"]), valid_until=int(f["validUntil"]),
            purpose_hash=keccak(text=f["purpose"]), scope_hash=bytes.fromhex(f["scopeHash"][2:]),
            terms_hash=bytes.fromhex(f["termsHash"][2:]),
        )  # fmt: skip

    return rows.map(lambda items: [request(r) for r in items])


def _resource_of(ident: int, f: dict[str, Any]) -> Resource:
    """A catalog entry from the fields of its registration or update event."""
    return Resource(
        id=ident, owner=int(f["owner"]), share_type=ShareType(f["shareType"]),
        sensitivity=int(f["sensitivity"]), metadata_hash=bytes.fromhex(f["metadataHash"][2:]),
        schema_hash=bytes.fromhex(f["schemaHash"][2:]),
    )  # fmt: skip


def resources_by_id(engine: Engine, ids: Sequence[int]) -> dict[int, Resource]:
    """The catalog entries of ``ids`` the index holds, each as its latest registration or update indexed
    left it (an id not registered yet is absent); one query."""
    ids = [i for i in ids if 0 <= i <= MAX_INDEXED_ID]
    if not ids:
        return {}
    e = m.events.c
    latest: dict[int, dict[str, Any]] = {}
    with engine.connect() as conn:
        for ident, fields in conn.execute(
            select(e.resource_id, e.fields)
            .where(e.resource_id.in_(ids), e.event.in_(_RESOURCE_EVENTS))
            .order_by(e.seq)
        ):
            latest[int(ident)] = json.loads(fields)
    return {ident: _resource_of(ident, f) for ident, f in latest.items()}


@dataclass(frozen=True)
class ResourceChange:
    """A catalog entry's registration (``registered``) or update as indexed: its position and block, and the
    entry as the event left it."""

    seq: int
    block_hash: str
    registered: bool
    resource: Resource


def resource_changes(engine: Engine, *, after: int, limit: int) -> list[ResourceChange]:
    """Up to ``limit`` registrations and updates of catalog entries indexed after position ``after``, in
    chain order (what a reader keeping its own copy of the catalog applies)."""
    e = m.events.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.seq, e.block_hash, e.event, e.resource_id, e.fields)
            .where(e.event.in_(_RESOURCE_EVENTS), e.seq > after)
            .order_by(e.seq)
            .limit(limit)
        ).all()
    return [
        ResourceChange(int(r.seq), str(r.block_hash), r.event == "ResourceRegistered",
                       _resource_of(int(r.resource_id), json.loads(r.fields)))
        for r in rows
    ]  # fmt: skip


def block_hash_at(engine: Engine, seq: int) -> str | None:
    """The hash of the block of the event indexed at position ``seq``; None when the index holds none there
    (never indexed, or dropped when the index was rewound to a fork point)."""
    e = m.events.c
    with engine.connect() as conn:
        found: str | None = conn.execute(select(e.block_hash).where(e.seq == seq)).scalar_one_or_none()
    return found


def grants(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[Grant]:
    """One page of issued grants matching ``flt``, newest first, each as the ledger's ``grant(id)`` view
    answers it at the last block indexed: revoked when its own revocation is indexed, or its agreement's
    (the view reads a revoked agreement's grants as revoked, with no event of the grant's; a revocation is
    final, so any indexed one decides).

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    e = m.events.c
    with engine.connect() as conn:
        rows = _newest(conn, "GrantIssued", flt, cursor, limit)
        revoked = _latest(conn, e.grant_id, [r.fields["grantId"] for r in rows.items], ("GrantRevoked",))
        ended = _latest(
            conn, e.agreement_id, [r.fields["agreementId"] for r in rows.items], ("AgreementRevoked",)
        )

    def grant(f: dict[str, Any]) -> Grant:
        return Grant(
            id=int(f["grantId"]),
            agreement_id=int(f["agreementId"]),
            provider=int(f["provider"]),
            consumer=int(f["consumer"]),
            expires_at=int(f["expiresAt"]),
            revoked=f["grantId"] in revoked or f["agreementId"] in ended,
        )

    return rows.map(lambda items: [grant(r.fields) for r in items])


def _agreement_records(conn: Any, concluded: Sequence[dict[str, Any]]) -> list[Agreement]:
    """The agreements of ``AgreementConcluded`` fields, each in the status its latest suspension,
    reinstatement or revocation indexed left it (active without one)."""
    changed = _latest(
        conn, m.events.c.agreement_id, [f["agreementId"] for f in concluded], list(_AGREEMENT_STATUS)
    )
    return [
        Agreement(
            id=int(f["agreementId"]),
            request_id=int(f["requestId"]),
            resource_id=int(f["resourceId"]),
            provider=int(f["provider"]),
            consumer=int(f["consumer"]),
            status=_AGREEMENT_STATUS.get(changed.get(f["agreementId"], ""), AgreementStatus.ACTIVE),
            valid_from=int(f["validFrom"]),
            valid_until=int(f["validUntil"]),
            terms_digest=bytes.fromhex(f["termsDigest"][2:]),
        )
        for f in concluded
    ]


def agreements(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[Agreement]:
    """One page of concluded agreements matching ``flt``, newest first, each in the status its latest
    suspension, reinstatement or revocation indexed left it (active without one).

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    with engine.connect() as conn:
        rows = _newest(conn, "AgreementConcluded", flt, cursor, limit)
        found = _agreement_records(conn, [r.fields for r in rows.items])
    return rows.map(lambda _: found)


def agreements_by_id(engine: Engine, ids: Sequence[int]) -> dict[int, Agreement]:
    """The agreements of ``ids`` the index holds, as :func:`agreements` reads them (an id not concluded yet is
    absent)."""
    ids = [i for i in ids if 0 <= i <= MAX_INDEXED_ID]
    if not ids:
        return {}
    e = m.events.c
    with engine.connect() as conn:
        concluded = conn.execute(
            select(e.fields).where(e.agreement_id.in_(ids), e.event == "AgreementConcluded")
        ).scalars()
        return {a.id: a for a in _agreement_records(conn, [json.loads(f) for f in concluded])}


def terms_hashes(engine: Engine, request_ids: Sequence[int]) -> dict[int, bytes]:
    """The ``termsHash`` each of ``request_ids`` was made with, from its ``AccessRequested`` event (a request
    the index does not hold is absent): what an agreement's readable terms are looked up by."""
    ids = [i for i in request_ids if 0 <= i <= MAX_INDEXED_ID]
    if not ids:
        return {}
    e = m.events.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.request_id, e.fields).where(e.request_id.in_(ids), e.event == "AccessRequested")
        ).all()
    return {int(ident): bytes.fromhex(json.loads(fields)["termsHash"][2:]) for ident, fields in rows}


_DEPARTMENT_EVENTS = (
    "DepartmentAdmitted",
    "DepartmentSuspended",
    "DepartmentReinstated",
    "DepartmentRekeyed",
)


def department_records(engine: Engine, ids: Sequence[int]) -> dict[int, Department]:
    """The departments of ``ids`` the index holds, as the ledger's ``department(id)`` view answers them at the
    last block indexed: admitted active, suspended and reinstated, re-keyed (a new signer starts a new key
    epoch; the same signer rotates only the encryption key). An id never admitted is absent."""
    ids = [i for i in ids if 0 <= i <= MAX_INDEXED_ID]
    if not ids:
        return {}
    e = m.events.c
    found: dict[int, Department] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.event, e.subject_id, e.fields)
            .where(e.subject_id.in_(ids), e.event.in_(_DEPARTMENT_EVENTS))
            .order_by(e.seq)
        ).all()
    for event, ident, fields in rows:
        f, ident = json.loads(fields), int(ident)
        if event == "DepartmentAdmitted":
            found[ident] = Department(
                id=ident, signer=f["signer"], status=DepartmentStatus.ACTIVE, code=decode_code(f["code"]),
                encryption_key=bytes.fromhex(f["encryptionKey"][2:]), name=f["name"], key_epoch=0,
                contract_signer=bool(f["contractSigner"]),
            )  # fmt: skip
            continue
        known = found.get(ident)
        if known is None:
            continue
        if event == "DepartmentSuspended":
            found[ident] = replace(known, status=DepartmentStatus.SUSPENDED)
        elif event == "DepartmentReinstated":
            found[ident] = replace(known, status=DepartmentStatus.ACTIVE)
        else:
            found[ident] = replace(
                known, signer=f["signer"], encryption_key=bytes.fromhex(f["encryptionKey"][2:]),
                key_epoch=known.key_epoch + (f["signer"] != f["previousSigner"]),
            )  # fmt: skip
    return found


def department_page(engine: Engine, *, cursor: str | None = None, limit: int = 100) -> IndexPage[Department]:
    """One page of the admitted departments in the order of admission (ids are numbered 1, 2, … as
    admitted, so it is the order of their ``DepartmentAdmitted`` entries), each as the ledger's
    ``department(id)`` view answers it at the last block indexed (:func:`department_records`). The cursor
    names the id a page ended on, as when this list was read from the chain department by department.

    Raises:
        InvalidQueryError: a malformed cursor, one naming no admitted department, or a limit out of bounds.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    e = m.events.c
    conds: list[Any] = [e.event == "DepartmentAdmitted"]
    with engine.connect() as conn:
        if cursor:  # an empty one: the first page
            after = decode_cursor(cursor)
            admitted = conn.execute(
                select(e.seq).where(e.event == "DepartmentAdmitted", e.subject_id == after)
            ).scalar_one_or_none()
            if admitted is None:
                raise InvalidQueryError("cursor", f"{cursor!r} is not a cursor of this list")
            conds.append(e.seq > admitted)
        rows = conn.execute(select(e.subject_id).where(*conds).order_by(e.seq).limit(limit + 1)).scalars()
        ids = [int(i) for i in rows]
    page = ids[:limit]
    records = department_records(engine, page)
    return IndexPage(
        [records[i] for i in page],
        encode_cursor(page[-1]) if len(ids) > limit else None,
        [encode_cursor(i) for i in page],
    )


#: ``GOVERNOR_ROLE`` of the ledger (``DepartmentRegistry``), as the role events carry it.
_GOVERNOR_ROLE = "0x" + keccak(text="dxl.role.governor").hex()
_PROPOSAL_EVENTS = ("ProposalApproved", "ProposalExecuted", "ProposalCancelled")


def proposals(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[Proposal]:
    """One page of governance proposals, newest first, each as the ledger's ``proposal(id)`` view answers it
    at the last block indexed: executed or cancelled once that event is indexed, and its approvals those that
    stand — given by an account that is a governor now, in its current term (not appointed again since the
    approval; a re-appointed governor's earlier approvals stop counting), as the ledger counts them.

    Raises:
        InvalidQueryError: a malformed cursor or limit.
    """
    return proposal_approvals(engine, flt, cursor=cursor, limit=limit).map(
        lambda items: [p for p, _ in items]
    )


def proposal_approvals(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[tuple[Proposal, frozenset[str]]]:
    """The page :func:`proposals` reads, each proposal with the governors whose approvals stand on it (those
    its ``approvals`` counts; what the ledger's ``hasApproved`` answers true for).

    Raises:
        InvalidQueryError: a malformed cursor or limit.
    """
    e = m.events.c
    with engine.connect() as conn:
        rows = _newest(conn, "ProposalCreated", flt, cursor, limit)
        if not rows.items:
            return rows.map(lambda _: [])
        # What happened to this page's proposals happened after the oldest of them was created.
        later = conn.execute(
            select(e.seq, e.event, e.fields)
            .where(e.event.in_(_PROPOSAL_EVENTS), e.seq > rows.items[-1].seq)
            .order_by(e.seq)
        ).all()
        roles = conn.execute(
            select(e.seq, e.event, e.fields)
            .where(e.event.in_(("RoleGranted", "RoleRevoked")))
            .order_by(e.seq)
        ).all()
    governor_now: dict[str, bool] = {}
    appointed: dict[str, int] = {}  # governor -> the position of its latest appointment
    for seq, event, fields in roles:
        f = json.loads(fields)
        if f["role"] == _GOVERNOR_ROLE:
            governor_now[f["account"]] = event == "RoleGranted"
            if event == "RoleGranted":
                appointed[f["account"]] = seq
    approved: dict[int, dict[str, int]] = {}  # proposal -> governor -> the position of its latest approval
    ended: dict[int, str] = {}
    for seq, event, fields in later:
        f = json.loads(fields)
        if event == "ProposalApproved":
            approved.setdefault(int(f["proposalId"]), {})[f["governor"]] = seq
        else:
            ended[int(f["proposalId"])] = event

    def proposal(r: _Logged) -> tuple[Proposal, frozenset[str]]:
        f = r.fields
        ident = int(f["proposalId"])
        standing = frozenset(
            governor
            for governor, seq in approved.get(ident, {}).items()
            if governor_now.get(governor, False) and appointed.get(governor, -1) < seq
        )
        return Proposal(
            id=ident, action=GovernanceAction(f["action"]), proposer=f["proposer"], approvals=len(standing),
            executed=ended.get(ident) == "ProposalExecuted", expires_at=int(f["expiresAt"]),
            data=bytes.fromhex(f["data"][2:]), cancelled=ended.get(ident) == "ProposalCancelled",
        ), standing  # fmt: skip

    return rows.map(lambda items: [proposal(r) for r in items])


def threshold(engine: Engine) -> int | None:
    """The governors' approval threshold by the latest change indexed (None before the deployment's)."""
    e = m.events.c
    with engine.connect() as conn:
        fields = conn.execute(
            select(e.fields).where(e.event == "ThresholdChanged").order_by(e.seq.desc()).limit(1)
        ).scalar_one_or_none()
    return None if fields is None else int(json.loads(fields)["threshold"])


def departments(engine: Engine) -> dict[int, dict[str, Any]]:
    """Admitted departments: id -> code, name, signer (as admitted)."""
    e = m.events.c
    with engine.connect() as conn:
        rows = conn.execute(select(e.subject_id, e.fields).where(e.event == "DepartmentAdmitted")).all()
    out = {}
    for dept_id, fields in rows:
        f = json.loads(fields)
        out[dept_id] = {
            "id": dept_id,
            "code": decode_code(f["code"]),
            "name": f["name"],
            "signer": f["signer"],
        }
    return out


def department_id(engine: Engine, code_or_id: str | int) -> int:
    """Resolve a department code (``HEALTH``) or id (``3``).

    Raises:
        NotFoundError: no such department in the audit trail.
    """
    known = departments(engine)
    # ASCII digits only: "²" passes str.isdigit and int() refuses it; "٣" would be taken as 3.
    if isinstance(code_or_id, int) or (str(code_or_id).isascii() and str(code_or_id).isdigit()):
        if int(code_or_id) in known:
            return int(code_or_id)
    else:
        for dept_id, d in known.items():
            if d["code"] == code_or_id:
                return dept_id
    raise NotFoundError("department", code_or_id)


def _first(conn: Any, *conds: Any) -> dict[str, Any] | None:
    row = conn.execute(select(m.events).where(*conds).order_by(m.events.c.seq).limit(1)).first()
    return event_dict(row) if row is not None else None


def _party(known: dict[int, dict[str, Any]], dept: int | None) -> dict[str, Any] | None:
    if dept is None:
        return None
    return known.get(dept, {"id": dept, "code": None, "name": None})


def provenance(
    engine: Engine, commitment: str | None = None, *, delivery_id: str | None = None
) -> list[dict[str, Any]]:
    """Everything the ledger says about the deliveries of a payload commitment (or one delivery id): the
    delivery, its settlement, the grant, agreement and request behind it, the parties, the times — each with
    its chain location.

    Raises:
        InvalidQueryError: the commitment or delivery id is not 32 bytes of hex.
        NotFoundError: no delivery recorded it (code ``COMMITMENT_NOT_FOUND`` / ``DELIVERY_NOT_FOUND``).
    """
    e = m.events.c
    if delivery_id is not None:
        key = normalize_bytes32(delivery_id, "delivery_id")
        cond = e.delivery_id == key
    else:
        key = normalize_bytes32(commitment or "", "commitment")
        cond = e.commitment == key
    known = departments(engine)
    out = []
    with engine.connect() as conn:
        deliveries = conn.execute(
            select(m.events).where(cond, e.event == DELIVERY_RECORDED).order_by(e.seq)
        ).all()
        if not deliveries:
            raise NotFoundError("delivery" if delivery_id is not None else "commitment", key)
        for row in deliveries:
            d = event_dict(row)
            settled = _first(conn, e.delivery_id == d["delivery_id"], e.event.in_(DELIVERY_SETTLED))
            status = "recorded"
            if settled is not None:
                status = "acknowledged" if settled["event"] == "DeliveryAcknowledged" else "disputed"
            out.append(
                {
                    "delivery_id": d["delivery_id"],
                    "commitment": d["commitment"],
                    "status": status,
                    "provider": _party(known, d["provider_id"]),
                    "consumer": _party(known, d["consumer_id"]),
                    "resource_id": d["resource_id"],
                    "recorded_at": d["time"],
                    "settled_at": settled["time"] if settled else None,
                    "delivery": d,
                    "settlement": settled,
                    **_grant_lineage(conn, d),
                }
            )
    return out


#: Ids per ``IN (...)`` of :func:`recorded_delivery_ids`: under every SQLite build's limit on bound variables.
_IDS_PER_QUERY = 900


def recorded_delivery_ids(engine: Engine, ids: Sequence[bytes]) -> set[bytes]:
    """Those of ``ids`` that name a delivery recorded on the ledger, as far as the index has followed the
    chain: one indexed look-up per id, in a few queries (``POST /receipts`` asks it for a whole request)."""
    keys = ["0x" + i.hex() for i in dict.fromkeys(ids)]
    found: set[bytes] = set()
    # Plain DB-API, one statement text per chunk size: compiling an expanding IN of hundreds of values through
    # SQLAlchemy cost more than the look-ups. The event is filtered here, not in SQL: given both, SQLite walks
    # the event's index (every delivery ever recorded) rather than looking each id up (measured: 255 ms of CPU
    # against 200,000 deliveries for 1,000 ids).
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for start in range(0, len(keys), _IDS_PER_QUERY):
            chunk = keys[start : start + _IDS_PER_QUERY]
            marks = ", ".join([mark] * len(chunk))
            cur.execute(f"SELECT delivery_id, event FROM audit_events WHERE delivery_id IN ({marks})", chunk)
            found.update(bytes.fromhex(d[2:]) for d, event in cur.fetchall() if event == DELIVERY_RECORDED)
        cur.close()
    finally:
        raw.close()
    return found


def _grant_lineage(conn: Any, d: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The grant, its revocation, agreement, request and decision behind an event (a delivery, a batch)."""
    e = m.events.c
    return {
        "grant": _first(conn, e.grant_id == d["grant_id"], e.event == "GrantIssued"),
        "grant_revocation": _first(conn, e.grant_id == d["grant_id"], e.event == "GrantRevoked"),
        "agreement": _first(conn, e.agreement_id == d["agreement_id"], e.event == "AgreementConcluded")
        if d["agreement_id"] is not None
        else None,
        "request": _first(conn, e.request_id == d["request_id"], e.event == "AccessRequested")
        if d["request_id"] is not None
        else None,
        "decision": _first(
            conn, e.request_id == d["request_id"], e.event.in_(("RequestApproved", "RequestRejected"))
        )
        if d["request_id"] is not None
        else None,
    }


def batch_provenance(engine: Engine, grant_id: int, first_sequence: int) -> dict[str, Any]:
    """Everything the chain says about one anchored receipt batch (the batch of ``grant_id`` starting at
    receipt ``first_sequence``): its anchoring (leaf count, root, transaction, block, time), its
    acknowledgement, the receipts of it the consumer disputed, and the grant, agreement, request and parties
    behind it — as :func:`provenance` answers for a single delivery.

    Raises:
        InvalidQueryError: a negative grant id or sequence number.
        NotFoundError: no such batch was anchored (code ``RECEIPT_BATCH_NOT_FOUND``).
    """
    for name, value in (("grant_id", grant_id), ("first_sequence", first_sequence)):
        if value < 0:
            raise InvalidQueryError(name, f"must not be negative, got {value}")
    if grant_id > MAX_INDEXED_ID:
        raise NotFoundError("receipt batch", f"{grant_id}/{first_sequence}")
    e = m.events.c
    known = departments(engine)
    with engine.connect() as conn:
        anchored = [
            event_dict(r)
            for r in conn.execute(
                select(m.events).where(e.grant_id == grant_id, e.event == BATCH_ANCHORED).order_by(e.seq)
            )
        ]
        batch = next((b for b in anchored if b["fields"]["firstSequence"] == first_sequence), None)
        if batch is None:
            raise NotFoundError("receipt batch", f"{grant_id}/{first_sequence}")
        end = first_sequence + batch["fields"]["leafCount"]
        settlements = [
            event_dict(r)
            for r in conn.execute(
                select(m.events)
                .where(e.grant_id == grant_id, e.event.in_((BATCH_ACKNOWLEDGED, RECEIPT_DISPUTED)))
                .order_by(e.seq)
            )
        ]
        acknowledged = next(
            (
                s
                for s in settlements
                if s["event"] == BATCH_ACKNOWLEDGED and s["fields"]["firstSequence"] == first_sequence
            ),
            None,
        )
        disputes = [
            s
            for s in settlements
            if s["event"] == RECEIPT_DISPUTED and first_sequence <= s["fields"]["sequence"] < end
        ]
        lineage = _grant_lineage(conn, batch)
    return {
        "grant_id": grant_id,
        "first_sequence": first_sequence,
        "leaf_count": batch["fields"]["leafCount"],
        "root": batch["fields"]["root"],
        "status": "acknowledged" if acknowledged is not None else "anchored",
        "disputed_sequences": [s["fields"]["sequence"] for s in disputes],
        "provider": _party(known, batch["provider_id"]),
        "consumer": _party(known, batch["consumer_id"]),
        "resource_id": batch["resource_id"],
        "anchored_at": batch["time"],
        "acknowledged_at": acknowledged["time"] if acknowledged else None,
        "batch": batch,
        "acknowledgement": acknowledged,
        "disputes": disputes,
        **lineage,
    }


def receipt_provenance(engine: Engine, proof: ReceiptProof) -> dict[str, Any]:
    """One anchored receipt traced from its inclusion proof (a ``GET /receipts/{id}`` answer, or its
    ``proof``), as :func:`provenance` traces a single delivery: the receipt, its sequence, and the
    provenance of the batch the chain anchored at its grant and first sequence (:func:`batch_provenance`).
    The chain holds each batch's root, never its receipts: the proof is what leads a receipt to it, so
    neither the service nor its receipt journal is needed.

    The proof's root and leaf count are held to the anchored batch's (never taken from the proof), the proof
    is checked, and the receipt must be one a single delivery of the batch's provider could be (the ledger's
    rules, :func:`verifier.receipts.undeliverable_fields`); what the answer states beside its proof of the
    batch's parties and location must be the chain's.

    Raises:
        NotFoundError: no batch anchored at the proof's grant and first sequence in the audit trail (code
            ``RECEIPT_BATCH_NOT_FOUND``): not anchored, or not indexed yet.
        InvalidProofError: the proof's batch is not the anchored one (another root or leaf count), the
            receipt is one no delivery of the provider could be, or the answer states a party, transaction
            or block other than the chain's.
        RootMismatchError: the proof leads to another root than the anchored batch's.
    """
    receipt = proof.receipt
    batch = batch_provenance(engine, receipt.grant_id, proof.first_sequence)
    where = f"the batch of grant {receipt.grant_id} anchored from sequence {proof.first_sequence}"
    anchored = (batch["root"].lower().removeprefix("0x"), batch["leaf_count"])
    if (proof.root.hex(), proof.leaf_count) != anchored:
        raise InvalidProofError(
            f"the proof's batch (root 0x{proof.root.hex()}, {proof.leaf_count} leaves) is not {where} (root "
            f"{batch['root']}, {batch['leaf_count']} leaves)"
        )
    verify_receipt_proof(proof)
    provider, consumer = batch["batch"]["provider_id"], batch["batch"]["consumer_id"]
    wrong = undeliverable_fields(receipt, provider)
    if wrong:
        raise InvalidProofError(
            f"the receipt's {', '.join(wrong)} cannot be a delivery of department {provider}, the provider "
            f"of {where}: the ledger refuses such a delivery"
        )
    stated, location = proof.stated, batch["batch"]["location"]
    if stated is not None:
        for name, said, chains in (
            ("provider", stated.provider, provider),
            ("consumer", stated.consumer, consumer),
            ("batch tx_hash", stated.tx_hash, location["tx_hash"]),
            ("batch block_number", stated.block_number, location["block_number"]),
        ):
            if said is not None and not same_stated(said, chains):
                raise InvalidProofError(
                    f"the answer states {name} {said!r}, the chain {chains!r} for {where}"
                )
    return {
        "receipt": receipt.to_json(),
        "sequence": proof.sequence,
        "index": proof.index,
        "proof_checked": True,
        "batch_provenance": batch,
    }


def provenance_of_file(
    engine: Engine,
    payload: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    *,
    receipt: ReceiptProof | None = None,
) -> dict[str, Any]:
    """Recompute the payload's commitment with its manifest's salt, algorithm and chunking (the verifier's
    code) and return the provenance of that commitment, with whether it matches the manifest's root. With
    ``receipt`` (the proof of the receipt it was delivered as), the provenance of that receipt
    (:func:`receipt_provenance`) under ``receipts``, ``deliveries`` empty: the chain finds no receipt by its
    commitment, the proof leads it there.

    Raises:
        ManifestError, PayloadReadError, PayloadFormatError: from the verifier.
        NotFoundError: no delivery recorded the recomputed commitment, or ``receipt`` records another.
        InvalidProofError, RootMismatchError: from :func:`receipt_provenance`.
    """
    from verifier.commitment import commit_payload
    from verifier.manifest import load_manifest

    parsed = load_manifest(manifest)
    c = commit_payload(payload, alg=parsed.alg, salt=parsed.salt, chunking=parsed.chunking)
    root = "0x" + c.root.hex()
    computed = {
        "computed_commitment": root,
        "manifest_root": "0x" + parsed.root.hex(),
        "matches_manifest": c.root == parsed.root,
    }
    if receipt is None:
        return {**computed, "deliveries": provenance(engine, root)}
    if receipt.receipt.commitment != c.root:
        recorded = "0x" + receipt.receipt.commitment.hex()
        raise NotFoundError("commitment", f"{root} (the receipt records {recorded})")
    return {**computed, "deliveries": [], "receipts": [receipt_provenance(engine, receipt)]}
