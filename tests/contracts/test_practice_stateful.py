"""Stateful property test of SharingPractice: random sequences of demands (published, answered with a new or
an existing resource, declined with a reason code, a resource answer rejected by the publisher, withdrawn
unanswered), evaluations (each side of an agreement scored once per
period, on the evidence of a recent delivery), sampling inspections (opened, drawn, outcomes recorded),
catalog entries, deliveries, suspensions and reinstatements of departments, and the chain's clock moving three
days or a few blocks at a time, sent by random actors (the parties, a third department, either of two
auditors, an outsider): only the auditor who opened an inspection records its outcomes.

A Python model predicts each step's outcome — the declared custom error and its arguments, or the events — and
the contract must agree; after every step the views (demands' answers, the scored periods, inspections'
statuses and outcomes) must tell the model's story. One deployment, on a node of the module's own (its steps
of 256 blocks cost anvil in proportion to the state on its chain), serves every example: each starts from a
node snapshot of it, with the clock set 12 hours into an evaluation period (10 days, so that three-day steps
never land within hours of a period's end or of an evidence's or a presentation deadline's).
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from node.chain import LedgerClient, TxResult
from node.compiler import load_artifact
from node.deploy import anchors_abi
from node.endpoint import NodeEndpoint
from node.types import (
    DEMAND_NOTICE_S,
    PRESENTATION_NOTICE_S,
    DemandAnswer,
    GovernanceAction,
    InspectionOutcome,
    InspectionStatus,
    ScoredSide,
    ShareType,
    new_delivery_id,
)
from tests.contracts.conftest import (
    DAY,
    Consortium,
    Outcome,
    deploy,
    expect,
    receipt_of,
    rewind,
    run_model,
)

#: The evaluation period and one clock step: evidence made k steps before a score is fresh for k <= 3 (at most
#: 9 days and some seconds old) and stale for k >= 4 (12 days); step n is in period (3n) // 10 of the example.
PERIOD, STEP_SECONDS = 10 * DAY, 3 * DAY
FRESH_STEPS = 3
#: Where in an evaluation period each example starts: half a day in, so no step comes within hours of a
#: period's end (step positions run 0.5 to 9.5 days into a period).
INTO_PERIOD = DAY // 2
BLOCKHASH_WINDOW = 256
CODES = ("PSB", "HRSS", "CIVIL")
TEXT, ZERO = b"\x7d" * 32, bytes(32)


@dataclass
class Dlv:
    id: bytes
    agreement: int
    receipt: tuple[Any, ...]
    step: int


@dataclass
class Dmd:
    publisher: int
    addressee: int
    catalog_size: int
    answer: DemandAnswer = DemandAnswer.NONE
    answered_by: int = 0
    withdrawn: bool = False
    #: Departments whose answer to it, addressed to no one, its publisher rejected: they answer it no more.
    rejected: set[int] = field(default_factory=set)


@dataclass
class Insp:
    auditor: str  # who opened it, the only account that records its outcomes
    seed_block: int
    present_steps: int  # clock steps after its opening from which NotPresented may be recorded
    step: int
    drawn: bool = False
    present_days: int = 1  # presentBy, in days after its opening
    drawn_late: bool = False  # drawn with less than the presentation notice left: never NotPresented
    outcomes: dict[bytes, InspectionOutcome] = field(default_factory=dict)


@dataclass
class Model:
    active: dict[int, bool]
    resources: dict[int, tuple[int, ShareType]]  # id -> owner, share type
    agreements: dict[int, tuple[int, int, int]]  # id -> provider, consumer, grant
    demands: dict[int, Dmd] = field(default_factory=dict)
    deliveries: list[Dlv] = field(default_factory=list)
    scored: set[tuple[int, int, ScoredSide]] = field(default_factory=set)  # agreement, period, side
    inspections: dict[int, Insp] = field(default_factory=dict)
    step: int = 0

    def period(self) -> int:
        """The evaluation period of the current step, counted from the example's first."""
        return (self.step * STEP_SECONDS) // PERIOD


@dataclass
class World:
    ledger: Consortium
    practice_address: str
    practice_abi: list[dict[str, Any]]
    auditors: dict[str, LocalAccount]  # "auditor" and "auditor2", both holding the role
    first_period: int
    snapshot: str
    seed: Model


@pytest.fixture(scope="module")
def world(node_endpoint: NodeEndpoint) -> Iterator[World]:
    """PSB provides to HRSS (agreement 1) and HRSS to CIVIL (agreement 2), each under a grant that outlives
    any example; CIVIL holds a resource it does not share; two auditors."""
    probe = LedgerClient(node_endpoint, load_artifact("DataExchangeLedger").abi)
    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    for code in CODES:
        c.admit(code)
    psb, hrss, civil = (c.depts[code] for code in CODES)
    auditors = {name: Account.create() for name in ("auditor", "auditor2")}
    for auditor in auditors.values():
        c.govern(GovernanceAction.GRANT_AUDITOR, abi_encode(["address"], [auditor.address]))
    seed = Model({d.id: True for d in c.depts.values()}, {}, {})
    for aid_provider, consumer in ((psb, hrss), (hrss, civil)):
        resource = c.resource(aid_provider)
        request = c.request(consumer, resource, days=365)
        c.send(aid_provider, "approveRequest", request)
        aid = c.conclude(request, aid_provider, consumer)
        seed.resources[resource] = (aid_provider.id, ShareType.CONDITIONAL)
        seed.agreements[aid] = (aid_provider.id, consumer.id, c.grant(aid_provider, aid, seconds=300 * DAY))
    seed.resources[c.resource(civil, ShareType.NOT_SHARED)] = (civil.id, ShareType.NOT_SHARED)
    artifact = load_artifact("SharingPractice")
    abi = anchors_abi(artifact, load_artifact("DataExchangeLedger"))
    deployed = LedgerClient(node_endpoint, abi).deploy(
        governors[0], artifact.bytecode, c.client.address, PERIOD, "0x" + "00" * 20
    )
    assert deployed.contract_address is not None
    rpc = probe.w3.provider
    start = (c.now() // PERIOD + 1) * PERIOD + INTO_PERIOD
    rpc.make_request("evm_setNextBlockTimestamp", [start])  # type: ignore[arg-type]
    rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
    snapshot = str(rpc.make_request("evm_snapshot", [])["result"])  # type: ignore[arg-type]
    yield World(c, str(deployed.contract_address), abi, auditors, start // PERIOD, snapshot, seed)


def actors() -> st.SearchStrategy[str]:
    """Who sends a step: mostly the party the step is for (a demand's addressee, an agreement's scoring side),
    so sequences reach successes; otherwise any department, an auditor or an outsider."""
    return st.sampled_from(
        ["party", "party", "party", "PSB", "HRSS", "CIVIL", "auditor", "auditor2", "outsider"]
    )


class PracticeRules(RuleBasedStateMachine):
    world: ClassVar[World]
    #: How often each outcome was met over all examples (function and error's name, or last event): what the
    #: run reached.
    seen: ClassVar[Counter[str]] = Counter()

    @initialize()
    def start(self) -> None:
        w = self.world
        # Fresh clients per example: reverting the chain rewinds nonces that a client would still count up.
        client = LedgerClient(w.ledger.client.endpoint, w.ledger.client.abi).at(str(w.ledger.client.address))
        w.snapshot = rewind(client, w.snapshot)
        self.ledger = Consortium(client, w.ledger.governors, w.ledger.depts, w.ledger.outsider)
        self.practice = LedgerClient(client.endpoint, w.practice_abi).at(w.practice_address)
        self.model = copy.deepcopy(w.seed)
        self.by_id = {d.id: d for d in w.ledger.depts.values()}

    # --- plumbing -------------------------------------------------------------------------------------------

    def account(self, who: str) -> LocalAccount:
        if who == "party":  # a step with no party of its own: a department
            return self.ledger.depts["HRSS"].account
        if who in self.world.auditors:
            return self.world.auditors[who]
        if who == "outsider":
            return self.ledger.outsider
        return self.ledger.depts[who].account

    def caller_department(self, sender: LocalAccount) -> tuple[int, Outcome | None]:
        """The department ``sender`` signs for, or the refusal of a caller that is none (or suspended)."""
        i = next((d.id for d in self.by_id.values() if d.account.address == sender.address), 0)
        if not i:
            return 0, ("DepartmentUnauthorized", {"account": sender.address})
        if not self.model.active[i]:
            return i, ("DepartmentNotActive", {"departmentId": i})
        return i, None

    def check(self, outcome: Outcome, fn: str, sender: LocalAccount, *args: Any) -> TxResult | None:
        label = f"{fn}: {outcome[0] if isinstance(outcome, tuple) else outcome[-1]}"
        self.seen[label] += 1
        return expect(outcome, lambda: self.practice.transact(sender, fn, *args))

    def head(self) -> int:
        return int(self.practice.w3.eth.block_number)

    # --- the ledger around the practice ---------------------------------------------------------------------

    @rule(dept=st.sampled_from([1, 2, 3]))
    def suspend_or_reinstate(self, dept: int) -> None:
        active = self.model.active[dept]
        action = GovernanceAction.SUSPEND_DEPARTMENT if active else GovernanceAction.REINSTATE_DEPARTMENT
        self.ledger.govern(action, abi_encode(["uint32"], [dept]))
        self.model.active[dept] = not active

    @rule(owner=st.sampled_from([1, 2, 3]), share=st.sampled_from(list(ShareType)))
    def register_resource(self, owner: int, share: ShareType) -> None:
        outcome: Outcome = (
            ["ResourceRegistered"]
            if self.model.active[owner]
            else ("DepartmentNotActive", {"departmentId": owner})
        )
        result = expect(
            outcome,
            lambda: self.ledger.send(
                self.by_id[owner], "registerResource", os.urandom(32), os.urandom(32), share, 2
            ),
        )
        if result is not None:
            self.model.resources[int(result.event("ResourceRegistered").args["resourceId"])] = (owner, share)

    @rule(agreement=st.sampled_from([1, 2]))
    def deliver(self, agreement: int) -> None:
        provider, consumer, grant = self.model.agreements[agreement]
        outcome: Outcome = ["DeliveryRecorded"]
        for i in (provider, consumer):
            if not self.model.active[i]:
                outcome = ("DepartmentNotActive", {"departmentId": i})
                break
        did = new_delivery_id(provider)
        result = expect(
            outcome,
            lambda: self.ledger.send(
                self.by_id[provider], "recordDelivery", did, grant, os.urandom(32), 1, 100, 1
            ),
        )
        if result is not None:
            self.model.deliveries.append(Dlv(did, agreement, receipt_of(result), self.model.step))

    @rule()
    def days_pass(self) -> None:
        # Three days after the head, stamped: a timestamp a refused demand pinned (refused at estimation,
        # nothing mined spent it) would otherwise be this block's, and anvil drops a pending increase of time
        # for it: the chain one step behind the model, its stale evidence still fresh on chain.
        rpc = self.practice.w3.provider
        rpc.make_request("evm_setNextBlockTimestamp", [self.ledger.now() + STEP_SECONDS])  # type: ignore[arg-type]
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        self.model.step += 1

    @rule(blocks=st.sampled_from([1, 2, BLOCKHASH_WINDOW]))
    def blocks_pass(self, blocks: int) -> None:
        self.practice.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    # --- demands --------------------------------------------------------------------------------------------

    @rule(
        who=actors(),
        to=st.sampled_from(["other", "other", "none", "self", "unknown"]),
        text=st.sampled_from([TEXT, TEXT, TEXT, ZERO]),
        due=st.sampled_from([DEMAND_NOTICE_S + DAY, DEMAND_NOTICE_S + DAY, DEMAND_NOTICE_S, DAY, -1]),
    )
    def publish_demand(self, who: str, to: str, text: bytes, due: int) -> None:
        sender = self.account(who)
        me, outcome = self.caller_department(sender)
        addressee = {"none": 0, "self": me, "unknown": 99, "other": me % 3 + 1}[to]
        if outcome is None and text == ZERO:
            outcome = ("PracticeInvalidField", {"field": "textHash"})
        if outcome is None and due < DEMAND_NOTICE_S:
            outcome = ("PracticeInvalidField", {"field": "dueBy"})
        if outcome is None and addressee == me:
            outcome = ("PracticeInvalidField", {"field": "addressee"})
        if outcome is None and addressee == 99:
            outcome = ("DepartmentUnknown", {"departmentId": 99})
        if outcome is None and addressee != 0 and not self.model.active[addressee]:
            outcome = ("DepartmentNotActive", {"departmentId": addressee})
        # Due dates are counted from the block the demand is mined in, stamped here: a week to the second is
        # taken, a day less is not (the addressee's least notice); a due date in the past is the block's own
        # time.
        at = self.ledger.now() + 1
        self.practice.w3.provider.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
        due_by = at + due if due > 0 else at
        result = self.check(outcome or ["DemandPublished"], "publishDemand", sender, text, addressee, due_by)
        if result is not None:
            demand = int(result.event("DemandPublished").args["demandId"])
            self.model.demands[demand] = Dmd(me, addressee, len(self.model.resources))

    @precondition(lambda self: bool(self.model.demands))
    @rule(
        data=st.data(),
        who=actors(),
        answer=st.sampled_from(list(DemandAnswer)),
        code=st.sampled_from([1, 2, 5, 0, 6]),
    )
    def answer_demand(self, data: st.DataObject, who: str, answer: DemandAnswer, code: int) -> None:
        m = self.model
        # Mostly an unanswered demand, answered by its addressee (or, addressed to no one, by a department
        # other than its publisher) with one of its own resources.
        unanswered = [i for i, d in sorted(m.demands.items(), reverse=True) if d.answer == DemandAnswer.NONE]
        demand = data.draw(
            st.sampled_from([*unanswered[:3], *sorted(m.demands)[-2:], len(m.demands) + 1]), "dmd"
        )
        d = m.demands.get(demand)
        if who == "party" and d is not None:
            sender = self.by_id[d.addressee or d.publisher % 3 + 1].account
        else:
            sender = self.account(who)
        mine = [
            r
            for r, (owner, _) in sorted(m.resources.items(), reverse=True)
            if self.by_id[owner].account == sender
        ]
        resource = data.draw(
            st.sampled_from([*mine[:3], *mine[:3], *sorted(m.resources)[-2:], len(m.resources) + 1]), "res"
        )
        if answer == DemandAnswer.DECLINED and data.draw(st.sampled_from([True, True, False]), "no resource"):
            resource = 0
        if answer in (DemandAnswer.NEW_RESOURCE, DemandAnswer.EXISTING_RESOURCE):
            code = data.draw(st.sampled_from([0, 0, code]), "code")
        me, outcome = self.caller_department(sender)
        if outcome is None and d is None:
            outcome = ("PracticeUnknownDemand", {"demandId": demand})
        elif outcome is None and d is not None:
            if d.withdrawn:
                outcome = ("PracticeDemandWithdrawn", {"demandId": demand})
            elif d.answer != DemandAnswer.NONE:
                outcome = ("PracticeDemandAnswered", {"demandId": demand, "answer": d.answer})
            elif me != d.addressee if d.addressee else me == d.publisher:
                outcome = ("PracticeNotAddressee", {"demandId": demand, "departmentId": me})
            elif not d.addressee and me in d.rejected:
                outcome = ("PracticeAnswererRejected", {"demandId": demand, "departmentId": me})
            elif answer == DemandAnswer.DECLINED:
                if not d.addressee:  # a demand to no one is answered with a resource, declined by no one
                    outcome = ("PracticeOpenDemandDeclined", {"demandId": demand, "departmentId": me})
                elif resource:
                    outcome = ("PracticeInvalidField", {"field": "resourceId"})
                elif not 1 <= code <= 5:
                    outcome = ("PracticeUnknownDeclineCode", {"code": code})
            elif answer == DemandAnswer.NONE:
                outcome = ("PracticeInvalidField", {"field": "answer"})
            elif code:
                outcome = ("PracticeInvalidField", {"field": "declineCode"})
            elif resource not in m.resources:
                outcome = ("CatalogUnknownResource", {"resourceId": resource})
            else:
                owner, share = m.resources[resource]
                new = resource > d.catalog_size
                if (
                    owner != me
                    or share == ShareType.NOT_SHARED
                    or new != (answer == DemandAnswer.NEW_RESOURCE)
                ):
                    outcome = ("PracticeResourceUnfit", {"demandId": demand, "resourceId": resource})
        result = self.check(
            outcome or ["DemandAnswered"], "answerDemand", sender, demand, answer, resource, code, TEXT
        )
        if result is not None:
            assert d is not None
            d.answer, d.answered_by = answer, me

    @precondition(lambda self: bool(self.model.demands))
    @rule(data=st.data())
    def answer_demand_fitly(self, data: st.DataObject) -> None:
        """A waiting demand answered by a department that may answer it, with a resource of its own that fits
        (shared, existing or new as claimed): what a publisher then rejects or keeps."""
        m = self.model
        waiting = [
            (i, d) for i, d in sorted(m.demands.items()) if not d.withdrawn and d.answer == DemandAnswer.NONE
        ]
        choices = [
            (i, d, r, owner)
            for i, d in waiting
            for r, (owner, share) in sorted(m.resources.items())
            if share != ShareType.NOT_SHARED
            and (owner == d.addressee if d.addressee else owner != d.publisher and owner not in d.rejected)
        ]
        if not choices:
            return
        demand, d, resource, owner = data.draw(st.sampled_from(choices), "fit")
        answer = DemandAnswer.NEW_RESOURCE if resource > d.catalog_size else DemandAnswer.EXISTING_RESOURCE
        sender = self.by_id[owner].account
        _me, outcome = self.caller_department(sender)
        if self.check(
            outcome or ["DemandAnswered"], "answerDemand", sender, demand, answer, resource, 0, TEXT
        ):
            d.answer, d.answered_by = answer, owner

    def publishers_demand(self, data: st.DataObject, who: str, among: list[int]) -> tuple[int, LocalAccount]:
        """A demand of ``among`` (mostly), else another or an unknown one, and its sender: ``party`` is its
        publisher."""
        m = self.model
        demand = data.draw(
            st.sampled_from([*among[:3], *among[:3], *sorted(m.demands)[-2:], len(m.demands) + 1])
        )
        d = m.demands.get(demand)
        sender = self.by_id[d.publisher].account if who == "party" and d is not None else self.account(who)
        return demand, sender

    def publishers_refusal(self, demand: int, sender: LocalAccount) -> tuple[int, Outcome | None]:
        """The refusal ``rejectAnswer`` and ``withdrawDemand`` share, in the contract's order: the caller, the
        demand known and not withdrawn, the caller its publisher."""
        me, outcome = self.caller_department(sender)
        d = self.model.demands.get(demand)
        if outcome is None and d is None:
            outcome = ("PracticeUnknownDemand", {"demandId": demand})
        elif outcome is None and d is not None and d.withdrawn:
            outcome = ("PracticeDemandWithdrawn", {"demandId": demand})
        elif outcome is None and d is not None and d.publisher != me:
            outcome = ("PracticeNotPublisher", {"demandId": demand, "departmentId": me})
        return me, outcome

    @precondition(lambda self: bool(self.model.demands))
    @rule(data=st.data(), who=actors(), code=st.sampled_from([1, 4, 2, 0, 5]))
    def reject_answer(self, data: st.DataObject, who: str, code: int) -> None:
        resource_answers = (DemandAnswer.NEW_RESOURCE, DemandAnswer.EXISTING_RESOURCE)
        answered = [
            i for i, d in sorted(self.model.demands.items(), reverse=True) if d.answer in resource_answers
        ]
        demand, sender = self.publishers_demand(data, who, answered)
        _me, outcome = self.publishers_refusal(demand, sender)
        d = self.model.demands.get(demand)
        if outcome is None and d is not None:
            if d.answer not in resource_answers:
                outcome = ("PracticeNotRejectable", {"demandId": demand, "answer": d.answer})
            elif not 1 <= code <= 4:
                outcome = ("PracticeUnknownRejectionCode", {"code": code})
        result = self.check(outcome or ["DemandAnswerRejected"], "rejectAnswer", sender, demand, code, TEXT)
        if result is not None:
            assert d is not None
            assert result.event("DemandAnswerRejected").args["answeredBy"] == d.answered_by
            if not d.addressee:
                d.rejected.add(d.answered_by)
            d.answer, d.answered_by = DemandAnswer.NONE, 0

    @precondition(lambda self: bool(self.model.demands))
    @rule(data=st.data(), who=actors())
    def withdraw_demand(self, data: st.DataObject, who: str) -> None:
        waiting = [i for i, d in sorted(self.model.demands.items(), reverse=True) if not d.withdrawn]
        demand, sender = self.publishers_demand(data, who, waiting)
        _me, outcome = self.publishers_refusal(demand, sender)
        d = self.model.demands.get(demand)
        if outcome is None and d is not None and d.answer != DemandAnswer.NONE:
            outcome = ("PracticeDemandAnswered", {"demandId": demand, "answer": d.answer})
        if self.check(outcome or ["DemandWithdrawn"], "withdrawDemand", sender, demand) is not None:
            assert d is not None
            d.withdrawn = True

    # --- evaluations ----------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.deliveries))
    @rule(
        data=st.data(),
        who=actors(),
        side=st.sampled_from(list(ScoredSide)),
        agreement=st.sampled_from([1, 2, 1, 2, 9]),
        score=st.sampled_from([5, 3, 1, 0, 6]),
    )
    def score(self, data: st.DataObject, who: str, side: ScoredSide, agreement: int, score: int) -> None:
        m = self.model
        forged = Dlv(
            new_delivery_id(1), agreement, (1, 1, 2, os.urandom(32), 1, 100, 1, self.ledger.now()), 0
        )
        own = [d for d in m.deliveries if d.agreement == agreement][-3:]
        evidence = data.draw(
            st.sampled_from([*reversed(own), *reversed(m.deliveries[-2:]), forged]), "evidence"
        )
        sender = self.account(who)
        if who == "party" and agreement in m.agreements:  # the side that scores
            provider, consumer, _grant = m.agreements[agreement]
            sender = self.by_id[consumer if side == ScoredSide.PROVIDER else provider].account
        outcome: Outcome | None = None
        if not 1 <= score <= 5:
            outcome = ("PracticeScoreOutOfRange", {"score": score})
        elif agreement not in m.agreements:
            outcome = ("AgreementUnknown", {"agreementId": agreement})
        else:
            provider, consumer, _grant = m.agreements[agreement]
            scorer = consumer if side == ScoredSide.PROVIDER else provider
            if sender.address != self.by_id[scorer].account.address:
                outcome = ("DepartmentUnauthorized", {"account": sender.address})
            elif not m.active[scorer]:
                outcome = ("DepartmentNotActive", {"departmentId": scorer})
            elif evidence is forged or evidence.agreement != agreement:
                outcome = ("PracticeNoDelivery", {"agreementId": agreement, "deliveryId": evidence.id})
            elif m.step - evidence.step > FRESH_STEPS:
                outcome = (
                    "PracticeStaleEvidence",
                    {"agreementId": agreement, "deliveredAt": evidence.receipt[7]},
                )
            elif (agreement, m.period(), side) in m.scored:
                period = self.world.first_period + m.period()
                outcome = (
                    "PracticeAlreadyScored",
                    {"agreementId": agreement, "period": period, "side": side},
                )
        fn, args = (
            ("scoreProvider", (agreement, 5, score, 4, ZERO, evidence.id, evidence.receipt))
            if side == ScoredSide.PROVIDER
            else ("scoreConsumer", (agreement, score, ZERO, evidence.id, evidence.receipt))
        )
        result = self.check(outcome or ["EvaluationRecorded"], fn, sender, *args)
        if result is not None:
            assert result.event("EvaluationRecorded").args["period"] == self.world.first_period + m.period()
            m.scored.add((agreement, m.period(), side))

    # --- inspections ----------------------------------------------------------------------------------------

    @rule(
        who=st.sampled_from(["auditor", "auditor", "auditor2", "PSB"]),
        bad=st.sampled_from(
            [None, None, None, "periodFrom", "periodTo", "sampleSize", "seedBlock", "presentBy"]
        ),
        seed_ahead=st.sampled_from([2, 4]),
        present_days=st.sampled_from([1, 4]),
    )
    def open_inspection(self, who: str, bad: str | None, seed_ahead: int, present_days: int) -> None:
        sender, now, head = self.account(who), self.ledger.now(), self.head()
        # The evaluation period before the current one: whole periods only, and over (the clock is never
        # within hours of a period's end).
        current = now // PERIOD * PERIOD
        # The transaction's own block is head + 1: a seed block must come after it.
        fields = {
            "periodFrom": current - PERIOD,
            "periodTo": current,
            "sampleSize": 3,
            "seedBlock": head + seed_ahead,
            "presentBy": now + present_days * DAY,
        }
        if bad is not None:
            fields[bad] = {
                "periodFrom": current - PERIOD + 1,  # off the grid: a period narrowed by the auditor
                "periodTo": current + PERIOD,  # not over
                "sampleSize": 0,
                "seedBlock": head + 1,
                "presentBy": now,
            }[bad]
        outcome: Outcome = ["InspectionOpened"]
        if who not in self.world.auditors:
            outcome = ("PracticeNotAuditor", {"account": sender.address})
        elif bad is not None:
            outcome = ("PracticeInvalidInspection", {"field": bad})
        result = self.check(outcome, "openInspection", sender, *fields.values())
        if result is not None:
            inspection = int(result.event("InspectionOpened").args["inspectionId"])
            # presentBy 1 day ahead has passed after one step; 4 days ahead, after two.
            steps = 1 if present_days == 1 else 2
            self.model.inspections[inspection] = Insp(
                who, fields["seedBlock"], steps, self.model.step, present_days=present_days
            )

    def inspection_id(self, data: st.DataObject) -> int:
        """Mostly a recent inspection, drawn ones first; sometimes one never opened."""
        ids = sorted(self.model.inspections, key=lambda i: (not self.model.inspections[i].drawn, -i))[:3]
        return data.draw(st.sampled_from([*ids, *ids, len(self.model.inspections) + 1]), "inspection")

    @precondition(lambda self: bool(self.model.inspections))
    @rule(data=st.data(), who=actors())
    def draw_sample(self, data: st.DataObject, who: str) -> None:
        """Anyone may draw, once the seed block is mined and while its hash is known."""
        # The client estimates gas on the pending block, the one after the head, where the transaction is
        # mined: a draw goes through from the block after the seed block on, once the seed block is the head.
        inspection, head = self.inspection_id(data), self.head()
        i = self.model.inspections.get(inspection)
        outcome: Outcome = ["InspectionDrawn"]
        if i is None:
            outcome = ("PracticeUnknownInspection", {"inspectionId": inspection})
        elif i.drawn:
            outcome = (
                "PracticeInspectionStatus",
                {"inspectionId": inspection, "status": InspectionStatus.DRAWN},
            )
        elif head < i.seed_block:
            outcome = ("PracticeSeedUnavailable", {"inspectionId": inspection, "seedBlock": i.seed_block})
        elif head + 1 > i.seed_block + BLOCKHASH_WINDOW:
            outcome = (
                "PracticeInspectionStatus",
                {"inspectionId": inspection, "status": InspectionStatus.EXPIRED},
            )
        result = self.check(outcome, "drawSample", self.account(who), inspection)
        if result is not None:
            assert i is not None
            seed = bytes(self.practice.w3.eth.get_block(i.seed_block)["hash"])
            assert result.event("InspectionDrawn").args["seed"] == seed
            i.drawn = True
            # Drawn less than the presentation notice before presentBy (a step is 3 days, so the seconds a
            # step's transactions take never decide it).
            waited = (self.model.step - i.step) * STEP_SECONDS
            i.drawn_late = waited + PRESENTATION_NOTICE_S > i.present_days * DAY

    @precondition(lambda self: bool(self.model.inspections))
    @rule(
        data=st.data(),
        who=st.sampled_from(["auditor", "auditor", "auditor2", "HRSS"]),
        result_=st.sampled_from(list(InspectionOutcome)),
    )
    def record_outcome(self, data: st.DataObject, who: str, result_: InspectionOutcome) -> None:
        m, inspection, head = self.model, self.inspection_id(data), self.head()
        unknown = os.urandom(32)
        delivery = data.draw(
            st.sampled_from([*(d.id for d in reversed(m.deliveries[-3:])), unknown]), "delivery"
        )
        sender = self.account(who)
        i = m.inspections.get(inspection)
        outcome: Outcome = ["InspectionOutcomeRecorded"]
        if who not in self.world.auditors:
            outcome = ("PracticeNotAuditor", {"account": sender.address})
        elif i is None:
            outcome = ("PracticeUnknownInspection", {"inspectionId": inspection})
        elif who != i.auditor:
            opener = self.world.auditors[i.auditor].address
            outcome = (
                "PracticeNotInspectionAuditor",
                {"inspectionId": inspection, "auditor": opener, "account": sender.address},
            )
        elif not i.drawn:
            # An undrawn inspection whose seed is out of reach from the pending block on (where the client
            # estimates and the transaction is mined, the one after the head) reads Expired.
            expired = head + 1 >= i.seed_block + BLOCKHASH_WINDOW
            status = InspectionStatus.EXPIRED if expired else InspectionStatus.OPEN
            outcome = ("PracticeInspectionStatus", {"inspectionId": inspection, "status": status})
        elif delivery == unknown:
            outcome = ("DeliveryUnknown", {"deliveryId": delivery})
        elif (
            result_ == InspectionOutcome.NONE
            or delivery in i.outcomes
            or (
                result_ == InspectionOutcome.NOT_PRESENTED
                and (m.step - i.step < i.present_steps or i.drawn_late)
            )
        ):
            outcome = (
                "PracticeInvalidOutcome",
                {"inspectionId": inspection, "deliveryId": delivery, "outcome": result_},
            )
        if self.check(outcome, "recordOutcome", sender, inspection, delivery, result_, TEXT) is not None:
            assert i is not None
            i.outcomes[delivery] = result_

    # --- the views tell the model's story -----------------------------------------------------------------

    @invariant()
    def views_agree(self) -> None:
        if not hasattr(self, "model"):
            return
        m, call, head = self.model, self.practice.call, self.head()
        assert call("demandCount") == len(m.demands)
        for demand, d in m.demands.items():
            assert call("demand", demand)[6] == d.answer, demand
            assert (call("demandWithdrawnAt", demand) != 0) is d.withdrawn, demand
            for department in self.by_id:
                assert call("answerRejected", demand, department) is (department in d.rejected), demand
        for agreement in m.agreements:
            for side in ScoredSide:
                scored = (agreement, m.period(), side) in m.scored
                assert call("scored", agreement, self.world.first_period + m.period(), side) is scored
        assert call("inspectionCount") == len(m.inspections)
        for inspection, i in m.inspections.items():
            expired = not i.drawn and head >= i.seed_block + BLOCKHASH_WINDOW
            status = (
                InspectionStatus.DRAWN
                if i.drawn
                else InspectionStatus.EXPIRED
                if expired
                else InspectionStatus.OPEN
            )
            assert call("inspection", inspection)[1] == status, inspection
            for delivery, outcome in i.outcomes.items():
                assert call("outcome", inspection, delivery) == outcome


def test_practice_rules_hold_for_random_operation_sequences(world: World) -> None:
    PracticeRules.world = world
    run_model(PracticeRules, PracticeRules.seen, examples=12, steps=20)


def test_model_clock_a_step_after_a_refused_demand_is_three_days(world: World) -> None:
    """A demand refused at estimation leaves its pinned timestamp pending on the node (nothing was mined to
    spend it): the next step of days must still move the clock three days, or evidence the model counts four
    steps old (stale) is nine days old on chain, and the contract rightly takes the score."""
    PracticeRules.world = world
    machine = PracticeRules()
    machine.start()
    machine.deliver(agreement=2)
    evidence = machine.model.deliveries[-1]
    # The outsider is no department: refused at estimation, its `evm_setNextBlockTimestamp` left pending.
    machine.publish_demand(who="outsider", to="other", text=TEXT, due=DEMAND_NOTICE_S + DAY)
    for _ in range(FRESH_STEPS + 1):
        machine.days_pass()
    assert machine.ledger.now() - evidence.receipt[7] >= (FRESH_STEPS + 1) * STEP_SECONDS
    provider = machine.by_id[machine.model.agreements[2][0]].account
    stale = ("PracticeStaleEvidence", {"agreementId": 2, "deliveredAt": evidence.receipt[7]})
    machine.check(stale, "scoreConsumer", provider, 2, 5, ZERO, evidence.id, evidence.receipt)
