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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
    iso,
)
from node.types import Agreement, AgreementStatus, DeliveryReceipt, DeliveryStatus, Grant

MAX_LIMIT = 500
_CURSOR_PREFIX = "h1:"
_HEX32 = set("0123456789abcdef")

#: Ids are stored as signed 64-bit integers (SQLite INTEGER, PostgreSQL BIGINT) while the contracts' are
#: uint64, numbered from 1: a larger id names nothing the chain has, and the database could not even bind it.
MAX_INDEXED_ID = 2**63 - 1


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for.

    Raises:
        InvalidQueryError: the cursor was not produced by :func:`encode_cursor`.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError("wrong prefix")
        seq = int(text[len(_CURSOR_PREFIX) :])
        if seq < 0:
            raise ValueError("negative position")
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
        "time": iso(r["block_time"]),
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
        InvalidQueryError: a counterpart without a department, an unknown event type, an empty period or a
            negative id."""
        if self.counterpart is not None and self.department is None:
            raise InvalidQueryError("counterpart", "needs a department to be the other party of")
        for name in self.events:
            if name not in known_events:
                raise InvalidQueryError(
                    "event", f"{name!r} is not a ledger event (known: {', '.join(known_events)})"
                )
        for field in ("department", "counterpart", "resource", "agreement", "from_time", "to_time"):
            value = getattr(self, field)
            if value is not None and value < 0:
                raise InvalidQueryError(field, f"must not be negative, got {value}")
        if self.from_time is not None and self.to_time is not None and self.from_time >= self.to_time:
            raise InvalidQueryError(
                "period", f"from ({iso(self.from_time)}) must be before to ({iso(self.to_time)})"
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
    items: list[_T]
    next_cursor: str | None


def _newest(
    conn: Any, event: str, flt: ListFilter, cursor: str | None, limit: int
) -> tuple[list[tuple[int, dict[str, Any]]], str | None]:
    """The block and fields of one page of ``event`` rows matching ``flt``, newest first, before ``cursor``,
    and the next page's cursor.

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
            return [], None
    before = decode_cursor(cursor) if cursor else None
    e = m.events.c
    common: list[Any] = [e.event == event]
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
        return [], None
    rows = conn.execute(select(e.block_number, e.fields).where(e.seq.in_(page)).order_by(e.seq.desc())).all()
    return [(int(r.block_number), json.loads(r.fields)) for r in rows], encode_cursor(
        page[-1]
    ) if more else None


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
        rows, following = _newest(conn, DELIVERY_RECORDED, flt, cursor, limit)
        settled = _latest(conn, m.events.c.delivery_id, [f["deliveryId"] for _, f in rows], DELIVERY_SETTLED)
    return IndexPage(
        [
            IndexedDelivery(
                delivery_id=bytes.fromhex(f["deliveryId"][2:]),
                receipt=DeliveryReceipt.from_event_args(
                    int(f["grantId"]), {**f, "commitment": bytes.fromhex(f["commitment"][2:])}
                ),
                block_number=block,
                status=_SETTLED_STATUS.get(settled.get(f["deliveryId"], ""), DeliveryStatus.RECORDED),
            )
            for block, f in rows
        ],
        following,
    )


def request_ids(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[int]:
    """One page of the ids of access requests matching ``flt``, newest first. Only ids: a request's status is
    the ledger's to compute (an approval on arrival turns pending again once its resource stops being shared
    unconditionally, with no event), so its record is read from the chain.

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    with engine.connect() as conn:
        rows, following = _newest(conn, "AccessRequested", flt, cursor, limit)
    return IndexPage([int(f["requestId"]) for _, f in rows], following)


def grants(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[Grant]:
    """One page of issued grants matching ``flt``, newest first; revoked when a revocation is indexed.

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    with engine.connect() as conn:
        rows, following = _newest(conn, "GrantIssued", flt, cursor, limit)
        revoked = _latest(conn, m.events.c.grant_id, [f["grantId"] for _, f in rows], ("GrantRevoked",))
    return IndexPage(
        [
            Grant(
                id=int(f["grantId"]),
                agreement_id=int(f["agreementId"]),
                provider=int(f["provider"]),
                consumer=int(f["consumer"]),
                expires_at=int(f["expiresAt"]),
                revoked=f["grantId"] in revoked,
            )
            for _, f in rows
        ],
        following,
    )


def agreements(
    engine: Engine, flt: ListFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[Agreement]:
    """One page of concluded agreements matching ``flt``, newest first, each in the status its latest
    suspension, reinstatement or revocation indexed left it (active without one).

    Raises:
        InvalidQueryError: a malformed cursor or limit, or a negative id.
    """
    with engine.connect() as conn:
        rows, following = _newest(conn, "AgreementConcluded", flt, cursor, limit)
        changed = _latest(
            conn, m.events.c.agreement_id, [f["agreementId"] for _, f in rows], list(_AGREEMENT_STATUS)
        )
    return IndexPage(
        [
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
            for _, f in rows
        ],
        following,
    )


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
    if isinstance(code_or_id, int) or str(code_or_id).isdigit():
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


def provenance_of_file(
    engine: Engine, payload: str | os.PathLike[str], manifest: str | os.PathLike[str]
) -> dict[str, Any]:
    """Recompute the payload's commitment with its manifest's salt, algorithm and chunking (the verifier's
    code) and return the provenance of that commitment, with whether it matches the manifest's root.

    Raises:
        ManifestError, PayloadReadError, PayloadFormatError: from the verifier.
        NotFoundError: no delivery recorded the recomputed commitment.
    """
    from verifier.commitment import commit_payload
    from verifier.manifest import load_manifest

    parsed = load_manifest(manifest)
    c = commit_payload(payload, alg=parsed.alg, salt=parsed.salt, chunking=parsed.chunking)
    root = "0x" + c.root.hex()
    return {
        "computed_commitment": root,
        "manifest_root": "0x" + parsed.root.hex(),
        "matches_manifest": c.root == parsed.root,
        "deliveries": provenance(engine, root),
    }
