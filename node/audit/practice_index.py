"""The demand lists, the inspections and an agreement's evaluations read from the audit index
(``audit_practice_events``), each record as the practice contract's ``demand(id)`` and ``inspection(id)``
views answer it at the last block indexed, each evaluation as its ``EvaluationRecorded`` log holds it.

Newest first, keyset-paged on the id behind the lists' opaque cursor (:func:`node.audit.queries.encode_cursor`
of the id a page ended on, as when these lists were read from the chain record by record: a cursor handed out
then still works), so a page costs what the first one does and records added meanwhile shift nothing.
Each filter is one index range: the publisher's or the addressee's ``(column, demand_id)`` index, or the
publications' ``(event, demand_id)``; ``open_only`` skips the withdrawn ones and those with an answer
standing (more answers than rejections) by their ``(event, demand_id)`` entries. An agreement's evaluations
have no id: they are listed in the order recorded, and their cursor names the position a page ended on
(:func:`evaluations`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, exists, func, select

from node.audit import models as m
from node.audit.errors import InvalidQueryError
from node.audit.events import (
    DEMAND_ANSWER_REJECTED,
    DEMAND_ANSWERED,
    DEMAND_PUBLISHED,
    DEMAND_WITHDRAWN,
    EVALUATION_RECORDED,
    INSPECTION_DRAWN,
    INSPECTION_OPENED,
    OUTCOME_RECORDED,
)
from node.audit.queries import MAX_INDEXED_ID, MAX_LIMIT, IndexPage, decode_cursor, encode_cursor
from node.practice import (
    AnswerRecord,
    DemandHistory,
    DemandRecord,
    EvaluationRecord,
    InspectionRecord,
    RecordedOutcome,
    Withdrawal,
    scores_of,
)
from node.types import ChainPosition, DemandAnswer, InspectionOutcome, InspectionStatus, ScoredSide
from verifier.sampling import BLOCKHASH_WINDOW


@dataclass(frozen=True)
class DemandFilter:
    """Which demands a list shows: published by ``publisher``, addressed to ``addressee``, waiting for an
    answer (``open_only``: not withdrawn, none answered, or its answer rejected); None and False: all."""

    publisher: int | None = None
    addressee: int | None = None
    open_only: bool = False


def _b32(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _page_bounds(conn: Any, event: str, column: Any, cursor: str | None, limit: int) -> int | None:
    """The id a page starts below (None: the first page): the id of the record the page before ended on,
    which must be one of the list's (an ``event`` row of that ``column`` value), filtered out or not.

    Raises:
        InvalidQueryError: a malformed cursor, one that names no record of the list, or a limit out of
            1..MAX_LIMIT.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    if not cursor:  # an empty one: the first page
        return None
    before = decode_cursor(cursor)
    p = m.practice_events.c
    if conn.execute(select(p.seq).where(p.event == event, column == before)).first() is None:
        raise InvalidQueryError("cursor", f"{cursor!r} is not a cursor of this list")
    return before


def _paged(ids: list[int], limit: int) -> tuple[list[int], str | None]:
    """The page's ids (of ``limit + 1`` read) and the cursor of the page after it."""
    page = ids[:limit]
    return page, encode_cursor(page[-1]) if len(ids) > limit else None


def _catalog_size(conn: Any, seq: int) -> int:
    """The catalog's resource count just before position ``seq`` (the ledger's ``resourceCount()`` when a
    demand was published): resources are numbered 1, 2, … as registered, so it is the id of the last
    registration indexed before it."""
    e = m.events.c
    found = conn.execute(
        select(e.resource_id)
        .where(e.event == "ResourceRegistered", e.seq < seq)
        .order_by(e.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    return 0 if found is None else int(found)


def demands(
    engine: Engine, flt: DemandFilter, *, cursor: str | None = None, limit: int = 100
) -> IndexPage[DemandRecord]:
    """One page of the demands matching ``flt``, newest first, each with its answer once one is indexed and
    where its publication and answer sit.

    Raises:
        InvalidQueryError: a malformed cursor or a limit out of bounds.
    """
    p = m.practice_events.c
    conds: list[Any] = [p.event == DEMAND_PUBLISHED]
    for column, value in ((p.publisher_id, flt.publisher), (p.addressee_id, flt.addressee)):
        if value is not None:
            if not 0 <= value <= MAX_INDEXED_ID:
                return IndexPage([], None)
            conds.append(column == value)
    if flt.open_only:
        other = m.practice_events.alias("other")

        def logged(event: str) -> Any:
            return (
                select(func.count())
                .where(other.c.event == event, other.c.demand_id == p.demand_id)
                .scalar_subquery()
            )

        # A rejection clears the one answer standing, so a demand waits for one while they are as many.
        conds.append(logged(DEMAND_ANSWERED) == logged(DEMAND_ANSWER_REJECTED))
        conds.append(~exists().where(other.c.event == DEMAND_WITHDRAWN, other.c.demand_id == p.demand_id))
    with engine.connect() as conn:
        before = _page_bounds(conn, DEMAND_PUBLISHED, p.demand_id, cursor, limit)
        if before is not None:
            conds.append(p.demand_id < before)
        published = conn.execute(
            select(p.seq, p.demand_id, p.block_number, p.log_index, p.block_time, p.fields)
            .where(*conds)
            .order_by(p.demand_id.desc())
            .limit(limit + 1)
        ).all()
        ids, next_cursor = _paged([int(r.demand_id) for r in published], limit)
        history = conn.execute(
            select(p.event, p.demand_id, p.block_number, p.log_index, p.block_time, p.fields)
            .where(
                p.event.in_((DEMAND_ANSWERED, DEMAND_ANSWER_REJECTED, DEMAND_WITHDRAWN)), p.demand_id.in_(ids)
            )
            .order_by(p.seq)
        ).all()
        sizes = {int(r.demand_id): _catalog_size(conn, int(r.seq)) for r in published[: len(ids)]}

    histories: dict[int, DemandHistory] = {}
    for h in history:
        ident, f, at = (
            int(h.demand_id),
            json.loads(h.fields),
            ChainPosition(int(h.block_number), int(h.log_index)),
        )
        told = histories.setdefault(ident, DemandHistory())
        if h.event == DEMAND_ANSWERED:
            told.answers.append(
                AnswerRecord(
                    DemandAnswer(int(f["answer"])),
                    int(f["answeredBy"]),
                    int(h.block_time),
                    int(f["resourceId"]),
                    int(f["declineCode"]),
                    _b32(f["answerHash"]),
                    at,
                )
            )
        elif h.event == DEMAND_ANSWER_REJECTED:
            told.reject(int(f["reasonCode"]), _b32(f["reasonHash"]), int(h.block_time), at)
        else:
            told.withdrawal = Withdrawal(int(h.block_time), at)

    def record(r: Any) -> DemandRecord:
        f, ident = json.loads(r.fields), int(r.demand_id)
        published = DemandRecord(
            demand_id=ident, publisher=int(f["publisher"]), addressee=int(f["addressee"]),
            published_at=int(r.block_time), due_by=int(f["dueBy"]), catalog_size=sizes[ident],
            text_hash=_b32(f["textHash"]), answer=DemandAnswer.NONE, answered_by=0, answered_at=0,
            resource_id=0, decline_code=0, answer_hash=b"\x00" * 32,
            published=ChainPosition(int(r.block_number), int(r.log_index)),
        )  # fmt: skip
        return published.with_history(histories.get(ident, DemandHistory()))

    return IndexPage([record(r) for r in published[: len(ids)]], next_cursor, [encode_cursor(i) for i in ids])


def inspections(
    engine: Engine, *, at_block: int, cursor: str | None = None, limit: int = 100
) -> IndexPage[InspectionRecord]:
    """One page of the inspections, newest first, each as the ``inspection(id)`` view answers it at block
    ``at_block`` (the last block indexed): drawn once its draw is indexed (with where the draw sits and that
    block's time), expired when still open at ``at_block`` and its seed block is 256 blocks or more below it
    (no later block can draw it). ``expired_at`` is left None: the index keeps the times of the blocks that
    hold events only.

    Raises:
        InvalidQueryError: a malformed cursor or a limit out of bounds.
    """
    p = m.practice_events.c
    conds: list[Any] = [p.event == INSPECTION_OPENED]
    with engine.connect() as conn:
        before = _page_bounds(conn, INSPECTION_OPENED, p.inspection_id, cursor, limit)
        if before is not None:
            conds.append(p.inspection_id < before)
        opened = conn.execute(
            select(p.inspection_id, p.fields).where(*conds).order_by(p.inspection_id.desc()).limit(limit + 1)
        ).all()
        ids, next_cursor = _paged([int(r.inspection_id) for r in opened], limit)
        draws = {
            int(r.inspection_id): r
            for r in conn.execute(
                select(p.inspection_id, p.block_number, p.log_index, p.block_time, p.fields).where(
                    p.event == INSPECTION_DRAWN, p.inspection_id.in_(ids)
                )
            )
        }

    def record(r: Any) -> InspectionRecord:
        f, ident = json.loads(r.fields), int(r.inspection_id)
        drawn = draws.get(ident)
        status = InspectionStatus.OPEN
        if drawn is not None:
            status = InspectionStatus.DRAWN
        elif at_block >= int(f["seedBlock"]) + BLOCKHASH_WINDOW:
            status = InspectionStatus.EXPIRED
        return InspectionRecord(
            inspection_id=ident, auditor=str(f["auditor"]), status=status, sample_size=int(f["sampleSize"]),
            period_from=int(f["periodFrom"]), period_to=int(f["periodTo"]), seed_block=int(f["seedBlock"]),
            present_by=int(f["presentBy"]),
            seed=b"\x00" * 32 if drawn is None else _b32(json.loads(drawn.fields)["seed"]),
            drawn=None if drawn is None else ChainPosition(int(drawn.block_number), int(drawn.log_index)),
            drawn_at=None if drawn is None else int(drawn.block_time),
        )  # fmt: skip

    return IndexPage([record(r) for r in opened[: len(ids)]], next_cursor, [encode_cursor(i) for i in ids])


def outcomes(engine: Engine, inspection_ids: Sequence[int]) -> dict[int, dict[bytes, RecordedOutcome]]:
    """The outcomes recorded in each of ``inspection_ids``, with their evidence hashes, by sampled delivery
    (one query: what a page of inspections shows, whatever the number of outcomes recorded in others)."""
    ids = [i for i in inspection_ids if 0 <= i <= MAX_INDEXED_ID]
    if not ids:
        return {}
    p = m.practice_events.c
    found: dict[int, dict[bytes, RecordedOutcome]] = {}
    with engine.connect() as conn:
        for ident, fields in conn.execute(
            select(p.inspection_id, p.fields)
            .where(p.event == OUTCOME_RECORDED, p.inspection_id.in_(ids))
            .order_by(p.seq)
        ):
            f = json.loads(fields)
            recorded = RecordedOutcome(InspectionOutcome(int(f["outcome"])), _b32(f["evidenceHash"]))
            found.setdefault(int(ident), {})[_b32(f["deliveryId"])] = recorded
    return found


def evaluations(
    engine: Engine,
    agreement_id: int,
    *,
    provider: int,
    consumer: int,
    cursor: str | None = None,
    limit: int = 100,
) -> IndexPage[EvaluationRecord]:
    """One page of the evaluations recorded under ``agreement_id`` (whose parties are ``provider`` and
    ``consumer``: the scored side's department), in the order they were recorded.

    The cursor names the position (from 0) of the evaluation a page ended on, as when this list was read
    from the contract's logs: a cursor handed out then still works. An evaluation has no id to key a page on,
    so a page skips the agreement's earlier entries of the ``(agreement_id, seq)`` index; an agreement holds
    at most two per evaluation period, a few dozen a year.

    Raises:
        InvalidQueryError: a malformed cursor, one past the agreement's evaluations, or a limit out of bounds.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    if not 0 <= agreement_id <= MAX_INDEXED_ID:
        return IndexPage([], None)
    at = decode_cursor(cursor) if cursor else None  # an empty one: the first page
    p = m.practice_events.c
    # From the cursor's own evaluation, which must exist: a cursor of no evaluation of this list is refused.
    start = 0 if at is None else at
    with engine.connect() as conn:
        rows = conn.execute(
            select(p.block_number, p.block_time, p.fields)
            .where(p.agreement_id == agreement_id, p.event == EVALUATION_RECORDED)
            .order_by(p.seq)
            .offset(start)
            .limit(limit + 1 + (at is not None))
        ).all()
    if at is not None:
        if not rows:
            raise InvalidQueryError("cursor", f"{cursor!r} is not a cursor of this list")
        rows = rows[1:]
    first = 0 if at is None else at + 1
    kept = rows[:limit]
    positions = range(first, first + len(kept))
    next_cursor = encode_cursor(positions[-1]) if len(rows) > limit else None

    def record(r: Any) -> EvaluationRecord:
        f = json.loads(r.fields)
        side = ScoredSide(int(f["side"]))
        return EvaluationRecord(
            agreement_id=agreement_id, period=int(f["period"]), side=side, scorer=int(f["scorer"]),
            scored=provider if side is ScoredSide.PROVIDER else consumer, scores=scores_of(side, f),
            comment_hash=_b32(f["commentHash"]), block_number=int(r.block_number),
            recorded_at=int(r.block_time),
        )  # fmt: skip

    return IndexPage([record(r) for r in kept], next_cursor, [encode_cursor(i) for i in positions])
