"""The node loses blocks (restarted from an older state, here by ``evm_revert`` to a snapshot): the audit
trail notices, says so at WARNING, re-indexes from the fork point, and provenance never names a lost
delivery. Real node, real follower thread, real database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from node.audit import practice_index
from node.audit.check import check_store
from node.audit.errors import NotFoundError
from node.audit.events import EventCodec
from node.audit.follower import AuditFollower
from node.audit.indexer import CompanionSource
from node.audit.practice_index import DemandFilter
from node.audit.queries import department_page, provenance
from node.audit.service import AuditContext
from node.audit.store import open_store
from node.chain import LedgerClient, TxResult
from node.compiler import load_artifact
from node.deploy import EVALUATION_PERIOD_S, anchors_abi
from node.endpoint import NodeEndpoint
from node.practice import DemandRecord, scores_of
from node.rpc import JsonRpc
from node.settings import Settings
from node.types import DEMAND_NOTICE_S, DemandAnswer, Department, GovernanceAction, ScoredSide
from tests.contracts.conftest import DAY, Consortium, Dept, deploy, receipt_of
from tests.postgres import BACKENDS, database_url

ZERO = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20

#: Bound of every wait for the follower; generous for a loaded 2-core machine, never reached when it works.
WAIT = 30.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def _known(ctx: AuditContext, delivery_id: bytes) -> bool:
    try:
        return bool(provenance(ctx.engine, delivery_id="0x" + delivery_id.hex()))
    except NotFoundError:
        return False


def _revert(rpc: JsonRpc, snapshot: str) -> None:
    """Back to the older state, with the clock of a node restarted now (a revert also winds anvil's clock
    back, which later tests of this node would feel)."""
    assert rpc.call("evm_revert", snapshot) is True
    # Never behind the restored head: other tests of this module's node may have moved its clock ahead.
    head = rpc.call("eth_getBlockByNumber", "latest", False)
    rpc.call("evm_setNextBlockTimestamp", max(int(time.time()), int(head["timestamp"], 16)) + 1)


def _mine_past(rpc: JsonRpc, block: int) -> None:
    """The node carries on from the older state: new blocks at the lost heights, and beyond."""
    while rpc.block_number() <= block:
        rpc.call("evm_mine")


def test_lost_blocks_are_healed_and_never_reported(
    node_endpoint: NodeEndpoint,
    codec: EventCodec,
    abi: list[dict[str, Any]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rpc = JsonRpc(node_endpoint.rpc_url)
    start = rpc.block_number()
    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    psb, hrss, civil = (c.admit(code) for code in ("PSB", "HRSS", "CIVIL"))
    psb_grant = c.grant(psb, c.agreement(psb, hrss))
    civil_grant = c.grant(civil, c.agreement(civil, hrss))
    ctx = AuditContext(
        engine=open_store(f"sqlite:///{tmp_path / 'audit.sqlite3'}"),
        rpc_url=node_endpoint.rpc_url,
        chain_id=node_endpoint.chain_id,
        contract=str(c.client.address),
        start_block=start,
        codec=codec,
        abi=abi,
        settings=Settings(home=tmp_path),
    )
    follower = AuditFollower(lambda: ctx, interval=0.1)
    try:
        # 1. The follower indexes a delivery that the node will lose.
        snapshot = rpc.call("evm_snapshot")
        lost_id, lost = c.deliver(psb, psb_grant)
        follower.start()
        _until(lambda: _known(ctx, lost_id), "the follower indexed the delivery")
        follower.stop()
        _revert(rpc, snapshot)
        # 2. Another delivery on the node's new history; the follower heals, says so and indexes it.
        kept_id, _ = c.deliver(civil, civil_grant)
        _mine_past(rpc, lost.block_number)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dxl.audit.indexer"):
            follower = AuditFollower(lambda: ctx, interval=0.1)
            follower.start()
            _until(lambda: _known(ctx, kept_id) and not _known(ctx, lost_id), "the follower healed")
            follower.stop()
        warnings = [
            r for r in caplog.records if r.name == "dxl.audit.indexer" and r.levelno >= logging.WARNING
        ]
        assert len(warnings) == 1, caplog.text
        message = warnings[0].getMessage()
        assert "the chain diverged from the audit index" in message and "dropped 1 events" in message
        result = check_store(ctx.engine, rpc, codec)
        assert result.ok, [d.describe() for d in result.differences]

        # 3. Lost again, with no follower round in between: provenance (as the API and CLI answer it) heals
        # the index first and does not name the lost delivery.
        snapshot = rpc.call("evm_snapshot")
        again_id, again = c.deliver(civil, civil_grant)
        with ctx.index_lock, ctx.rpc() as own:
            ctx.indexer(own).sync()
        assert _known(ctx, again_id)
        _revert(rpc, snapshot)
        _mine_past(rpc, again.block_number)
        ctx.heal()
        assert not _known(ctx, again_id) and _known(ctx, kept_id)
        assert check_store(ctx.engine, rpc, codec).ok
    finally:
        follower.stop()
        rpc.close()
        ctx.engine.dispose()


def _chain_demands(practice: LedgerClient) -> list[tuple[int, int, int, int, int]]:
    """Every demand as the contract's view answers it now, newest first: (id, publisher, addressee, answer,
    answered_by)."""
    count = int(practice.call("demandCount"))
    return [
        (d.demand_id, d.publisher, d.addressee, int(d.answer), d.answered_by)
        for d in (DemandRecord.from_chain(i, practice.call("demand", i)) for i in range(count, 0, -1))
    ]


def _indexed_demands(ctx: AuditContext, flt: DemandFilter) -> list[tuple[int, int, int, int, int]]:
    """The demands the index lists for ``flt``, every page of 2 (the index healed and caught up first)."""
    ctx.caught_up()
    found, cursor = [], None
    while True:
        page = practice_index.demands(ctx.engine, flt, cursor=cursor, limit=2)
        found += [(d.demand_id, d.publisher, d.addressee, int(d.answer), d.answered_by) for d in page.items]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


@dataclass
class _WithPractice:
    ledger: Consortium
    practice: LedgerClient
    practice_block: int  # the practice contract's deployment block, where the index starts reading it

    def index(
        self,
        node_endpoint: NodeEndpoint,
        codec: EventCodec,
        abi: list[dict[str, Any]],
        tmp_path: Path,
        *,
        url: str,
        start: int,
    ) -> AuditContext:
        """The audit index of the ledger (read from block ``start``) and the practice contract beside it, in
        the store at ``url``."""
        return AuditContext(
            engine=open_store(url),
            rpc_url=node_endpoint.rpc_url,
            chain_id=node_endpoint.chain_id,
            contract=str(self.ledger.client.address),
            start_block=start,
            codec=codec,
            abi=abi,
            settings=Settings(home=tmp_path),
            practice=CompanionSource(str(self.practice.address), self.practice_block),
        )


def _with_practice(node_endpoint: NodeEndpoint) -> _WithPractice:
    """A new ledger with PSB, HRSS and CIVIL admitted, and a sharing practice contract beside it."""
    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    for code in ("PSB", "HRSS", "CIVIL"):
        c.admit(code)
    artifact = load_artifact("SharingPractice")
    client = LedgerClient(node_endpoint, anchors_abi(artifact, load_artifact("DataExchangeLedger")))
    deployed = client.deploy(
        governors[0], artifact.bytecode, c.client.address, EVALUATION_PERIOD_S, ZERO_ADDRESS
    )
    assert deployed.contract_address is not None
    return _WithPractice(c, client.at(deployed.contract_address), int(deployed.block_number))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lost_demands_and_answers_leave_the_demand_lists(
    node_endpoint: NodeEndpoint, codec: EventCodec, abi: list[dict[str, Any]], tmp_path: Path, backend: str
) -> None:
    """The index follows the sharing practice contract beside the ledger: its demand lists, every filter and
    page, are what the contract's views answer, before and after the node loses a publication and an answer
    (no follower round in between: the list heals the index itself), and `dxl audit check` agrees; on
    SQLite and PostgreSQL alike."""
    with database_url(backend, tmp_path / "audit.sqlite3", "audit_practice") as url:
        _lost_demands(node_endpoint, codec, abi, tmp_path, url)


def _lost_demands(
    node_endpoint: NodeEndpoint, codec: EventCodec, abi: list[dict[str, Any]], tmp_path: Path, url: str
) -> None:
    rpc = JsonRpc(node_endpoint.rpc_url)
    start = rpc.block_number()
    made = _with_practice(node_endpoint)
    c, practice = made.ledger, made.practice
    psb, hrss, civil = (c.depts[code] for code in ("PSB", "HRSS", "CIVIL"))

    def publish(who: Dept, to: Dept | None) -> int:
        due = c.now() + DEMAND_NOTICE_S + DAY
        result = practice.transact(
            who.account, "publishDemand", b"\x7d" * 32, 0 if to is None else to.id, due
        )
        return int(result.event("DemandPublished").args["demandId"])

    def decline(who: Dept, demand_id: int) -> TxResult:
        return practice.transact(
            who.account, "answerDemand", demand_id, int(DemandAnswer.DECLINED), 0, 1, ZERO
        )

    for publisher, addressee in ((psb, hrss), (hrss, psb), (civil, None), (psb, civil), (psb, hrss)):
        publish(publisher, addressee)
    decline(psb, 2)
    ctx = made.index(node_endpoint, codec, abi, tmp_path, url=url, start=start)
    filters = [
        DemandFilter(), DemandFilter(publisher=psb.id), DemandFilter(addressee=hrss.id),
        DemandFilter(open_only=True), DemandFilter(publisher=psb.id, open_only=True),
        DemandFilter(addressee=psb.id, open_only=True), DemandFilter(publisher=civil.id, addressee=hrss.id),
    ]  # fmt: skip

    def chain_answers(flt: DemandFilter) -> list[tuple[int, int, int, int, int]]:
        return [
            d for d in _chain_demands(practice)
            if (flt.publisher is None or d[1] == flt.publisher)
            and (flt.addressee is None or d[2] == flt.addressee) and (not flt.open_only or d[3] == 0)
        ]  # fmt: skip

    try:
        for flt in filters:
            assert _indexed_demands(ctx, flt) == chain_answers(flt), flt
        # Lost: a publication and the answer to an older demand; the node carries on with another demand.
        snapshot = rpc.call("evm_snapshot")
        lost = decline(hrss, 1)
        publish(hrss, civil)
        assert (1, psb.id, hrss.id, int(DemandAnswer.DECLINED), hrss.id) in _indexed_demands(ctx, filters[0])
        _revert(rpc, snapshot)
        publish(civil, psb)
        # As high as the index reached, no higher: only the hashes tell the two histories apart.
        _mine_past(rpc, lost.block_number)
        assert rpc.block_number() == ctx.indexed_block()
        for flt in filters:
            assert _indexed_demands(ctx, flt) == chain_answers(flt), flt
        assert _chain_demands(practice)[-1] == (1, psb.id, hrss.id, 0, 0)  # the lost answer is gone
        result = check_store(ctx.engine, rpc, codec, expected=ctx.indexed_contracts())
        assert result.ok, [d.describe() for d in result.differences]
    finally:
        rpc.close()
        ctx.engine.dispose()


def _indexed_departments(ctx: AuditContext) -> list[Department]:
    """The departments the index lists, every page of 2 (the index healed and caught up first)."""
    ctx.caught_up()
    found: list[Department] = []
    cursor = None
    while True:
        page = department_page(ctx.engine, cursor=cursor, limit=2)
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


@pytest.mark.parametrize("backend", BACKENDS)
def test_lost_scores_and_department_changes_leave_their_lists(
    node_endpoint: NodeEndpoint, codec: EventCodec, abi: list[dict[str, Any]], tmp_path: Path, backend: str
) -> None:
    """The department list and an agreement's evaluations, every page of the index, are what the ledger's
    ``department(id)`` view and the practice contract's ``EvaluationRecorded`` logs answer, before and after
    the node loses a score, a suspension and a re-keying (no follower round in between: the lists heal the
    index themselves), and `dxl audit check` agrees; on SQLite and PostgreSQL alike."""
    with database_url(backend, tmp_path / "audit.sqlite3", "audit_scores") as url:
        _lost_scores(node_endpoint, codec, abi, tmp_path, url)


def _lost_scores(
    node_endpoint: NodeEndpoint, codec: EventCodec, abi: list[dict[str, Any]], tmp_path: Path, url: str
) -> None:
    from eth_abi.abi import encode as abi_encode

    rpc = JsonRpc(node_endpoint.rpc_url)
    start = rpc.block_number()
    made = _with_practice(node_endpoint)
    c, practice, practice_block = made.ledger, made.practice, made.practice_block
    psb, hrss, civil = (c.depts[code] for code in ("PSB", "HRSS", "CIVIL"))
    agreement, other = c.agreement(psb, hrss), c.agreement(psb, hrss)
    delivered = {a: c.deliver(psb, c.grant(psb, a)) for a in (agreement, other)}

    def score(a: int, side: str) -> TxResult:
        delivery, recorded = delivered[a]
        if side == "provider":
            return practice.transact(hrss.account, "scoreProvider", a, 5, 4, 3, b"\x01" * 32, delivery,
                                     receipt_of(recorded))  # fmt: skip
        return practice.transact(psb.account, "scoreConsumer", a, 2, ZERO, delivery, receipt_of(recorded))

    def chain_scores() -> list[tuple[int, int, int, tuple[int, ...], bytes, int]]:
        return [
            (int(ev.args["period"]), int(ev.args["side"]), int(ev.args["scorer"]),
             scores_of(ScoredSide(ev.args["side"]), ev.args), bytes(ev.args["commentHash"]), block)
            for ev, block in practice.get_logs("EvaluationRecorded", agreement.to_bytes(32, "big"),
                                               from_block=practice_block)
        ]  # fmt: skip

    def indexed_scores(ctx: AuditContext) -> list[tuple[int, int, int, tuple[int, ...], bytes, int]]:
        ctx.caught_up()
        found, cursor = [], None
        while True:
            page = practice_index.evaluations(
                ctx.engine, agreement, provider=psb.id, consumer=hrss.id, cursor=cursor, limit=1
            )
            found += [(e.period, int(e.side), e.scorer, e.scores, e.comment_hash, e.block_number)
                      for e in page.items]  # fmt: skip
            assert all(e.scored == (psb.id if e.side is ScoredSide.PROVIDER else hrss.id) for e in page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    def chain_departments() -> list[Department]:
        return [Department.read(c.client, i) for i in range(1, int(c.call("departmentCount")) + 1)]

    score(agreement, "provider")
    score(other, "provider")
    ctx = made.index(node_endpoint, codec, abi, tmp_path, url=url, start=start)
    try:
        assert indexed_scores(ctx) == chain_scores() and len(chain_scores()) == 1
        assert _indexed_departments(ctx) == chain_departments()
        # Lost: the consumer's score, a suspension and a re-keying to a new signer; the node carries on with
        # an admission instead.
        snapshot = rpc.call("evm_snapshot")
        score(agreement, "consumer")
        c.govern(GovernanceAction.SUSPEND_DEPARTMENT, abi_encode(["uint32"], [civil.id]))
        lost = c.govern(GovernanceAction.REKEY_DEPARTMENT, abi_encode(
            ["uint32", "address", "bytes32"], [hrss.id, Account.create().address, b"\x02" * 32]))  # fmt: skip
        assert indexed_scores(ctx) == chain_scores() and len(chain_scores()) == 2
        assert _indexed_departments(ctx) == chain_departments()
        assert chain_departments()[hrss.id - 1].key_epoch == 1
        _revert(rpc, snapshot)
        for governor in c.governors[:2]:
            c.client.nonces.forget(governor.address)  # the nonces of their lost transactions are free again
        c.admit("TAX")
        # As high as the index reached, no higher: only the hashes tell the two histories apart.
        _mine_past(rpc, lost.block_number - 1)
        assert rpc.block_number() == ctx.indexed_block()
        assert indexed_scores(ctx) == chain_scores() and len(chain_scores()) == 1
        assert _indexed_departments(ctx) == chain_departments() and len(chain_departments()) == 4
        assert chain_departments()[civil.id - 1].status.name == "ACTIVE"
        result = check_store(ctx.engine, rpc, codec, expected=ctx.indexed_contracts())
        assert result.ok, [d.describe() for d in result.differences]
    finally:
        rpc.close()
        ctx.engine.dispose()
