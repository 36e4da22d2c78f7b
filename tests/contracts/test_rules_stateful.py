"""Stateful property test: random sequences of governance, catalog, request, agreement, grant and delivery
operations, and of the chain's clock moving a week ahead, against a small Python model of the ledger's rules.

Every step predicts its outcome from the model — the exact custom error and its arguments, or the events in
order — and the real contract must agree; after every step the views (request status, agreement status,
grant ``revoked``, delivery status, department status and ``DEPARTMENT_ROLE``) must tell the model's story.
One deployment serves every example: each starts from an anvil snapshot of the same freshly provisioned
consortium.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from eth_abi.abi import encode as abi_encode
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from node.chain import LedgerClient, TxResult
from node.endpoint import NodeEndpoint
from node.types import (
    AgreementStatus,
    DeliveryStatus,
    GovernanceAction,
    RequestStatus,
    ShareType,
    new_delivery_id,
)
from tests.contracts.conftest import (
    DAY,
    SCOPE,
    TERMS_DOC,
    Consortium,
    Dept,
    Outcome,
    deploy,
    expect,
    receipt_of,
    rewind,
    run_model,
)
from tests.contracts.test_department_registry import DEPARTMENT_ROLE

CODES = ("PSB", "HRSS", "CIVIL")
#: How far one step moves the chain's clock, and the validity a request asks for. Every grant is issued for a
#: day, so one step expires the grants issued before it; a validity of 30 days ends in the fifth step after
#: its request. Neither is a whole number of steps, so no deadline falls within seconds of a step's moment
#: (a transaction's block comes a few seconds after the model's reading of the clock).
STEP_SECONDS, VALIDITY = 7 * DAY, 30 * DAY
GRANT_SECONDS = DAY


@dataclass
class Res:
    owner: int
    share: ShareType
    sensitivity: int = 2


@dataclass
class Req:
    resource: int
    consumer: int
    provider: int
    status: RequestStatus
    on_arrival: bool
    week: int = 0  # the clock step it was made in: its validity runs VALIDITY from then


@dataclass
class Agr:
    resource: int
    provider: int
    consumer: int
    status: AgreementStatus = AgreementStatus.ACTIVE
    held: bool = False  # suspended by governance
    week: int = 0  # its request's: the agreement's validity is the request's


@dataclass
class Grt:
    agreement: int
    provider: int
    consumer: int
    revoked: bool = False
    week: int = 0  # issued for GRANT_SECONDS: expired from the next step on


@dataclass
class Dlv:
    consumer: int
    commitment: bytes
    receipt: tuple[Any, ...]
    status: DeliveryStatus = DeliveryStatus.RECORDED


@dataclass
class Model:
    """The rules, written once more in Python."""

    active: dict[int, bool] = field(default_factory=dict)
    resources: dict[int, Res] = field(default_factory=dict)
    requests: dict[int, Req] = field(default_factory=dict)
    agreements: dict[int, Agr] = field(default_factory=dict)
    grants: dict[int, Grt] = field(default_factory=dict)
    deliveries: dict[bytes, Dlv] = field(default_factory=dict)
    week: int = 0  # clock steps taken

    def validity_over(self, week: int) -> bool:
        """Whether a validity that began in step ``week`` has ended."""
        return (self.week - week) * STEP_SECONDS >= VALIDITY

    def grant_expired(self, gid: int) -> bool:
        return self.week > self.grants[gid].week

    def request_status(self, rid: int) -> RequestStatus:
        q = self.requests[rid]
        if (
            q.status == RequestStatus.APPROVED
            and q.on_arrival
            and self.resources[q.resource].share != ShareType.UNCONDITIONAL
        ):
            return RequestStatus.PENDING
        return q.status

    def grant_revoked(self, gid: int) -> bool:
        g = self.grants[gid]
        return g.revoked or self.agreements[g.agreement].status == AgreementStatus.REVOKED


@dataclass
class World:
    endpoint: NodeEndpoint
    address: str
    abi: list[Mapping[str, Any]]
    governors: list[Any]
    depts: dict[int, Dept]
    snapshot: str
    seed: Model


@pytest.fixture(scope="module")
def world(node_endpoint: NodeEndpoint) -> Iterator[World]:
    """The consortium, and an exchange already under way so that short sequences reach grants and deliveries:
    PSB's conditional resource 1 approved for HRSS under agreement 1 and grant 1, CIVIL's request 2 for it
    pending, HRSS's unconditional resource 2 approved on arrival for CIVIL (request 3)."""
    from eth_account import Account

    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    depts = {c.admit(code).id: c.depts[code] for code in CODES}
    psb, hrss, civil = (c.depts[code] for code in CODES)
    seed = Model(active={i: True for i in depts})
    r1, r2 = c.resource(psb), c.resource(hrss, ShareType.UNCONDITIONAL)
    seed.resources = {r1: Res(psb.id, ShareType.CONDITIONAL), r2: Res(hrss.id, ShareType.UNCONDITIONAL)}
    q1, q2 = c.request(hrss, r1), c.request(civil, r1)
    c.send(psb, "approveRequest", q1)
    a1 = c.conclude(q1, psb, hrss)
    g1 = c.grant(psb, a1)
    q3 = c.request(civil, r2)
    seed.requests = {
        q1: Req(r1, hrss.id, psb.id, RequestStatus.CONCLUDED, False),
        q2: Req(r1, civil.id, psb.id, RequestStatus.PENDING, False),
        q3: Req(r2, civil.id, hrss.id, RequestStatus.APPROVED, True),
    }
    seed.agreements = {a1: Agr(r1, psb.id, hrss.id)}
    seed.grants = {g1: Grt(a1, psb.id, hrss.id)}
    snapshot = c.client.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield World(node_endpoint, str(c.client.address), c.client.abi, governors, depts, snapshot, seed)


class LedgerRules(RuleBasedStateMachine):
    #: The deployment every example starts from (set by the test).
    world: World
    #: How often each outcome was met over all examples (an error's name, or a success's last event): what
    #: the run reached.
    seen: ClassVar[Counter[str]] = Counter()

    @initialize()
    def start(self) -> None:
        w = self.world
        w.snapshot = rewind(LedgerClient(w.endpoint, w.abi).at(w.address), w.snapshot)
        # A fresh client per example: reverting the chain rewinds nonces that a client would still count up.
        self.ledger = Consortium(LedgerClient(w.endpoint, w.abi).at(w.address), w.governors)
        self.ledger.depts = {d.code: d for d in w.depts.values()}
        self.by_id = w.depts
        self.model = copy.deepcopy(w.seed)

    # --- plumbing -------------------------------------------------------------------------------------------

    def check(self, outcome: Outcome, send: Any) -> TxResult | None:
        """Runs ``send`` and compares with the predicted ``outcome``."""
        label = outcome[0] if isinstance(outcome, tuple) else outcome[-1]
        self.seen[label] += 1
        return expect(outcome, send)

    def dept(self, i: int) -> Dept:
        return self.by_id[i]

    def inactive(self, *ids: int) -> Outcome | None:
        for i in ids:
            if not self.model.active[i]:
                return ("DepartmentNotActive", {"departmentId": i})
        return None

    # --- governance -----------------------------------------------------------------------------------------

    @rule(dept=st.sampled_from([1, 2, 3]))
    def suspend_or_reinstate_department(self, dept: int) -> None:
        active = self.model.active[dept]
        action = GovernanceAction.SUSPEND_DEPARTMENT if active else GovernanceAction.REINSTATE_DEPARTMENT
        role_event = "RoleRevoked" if active else "RoleGranted"
        done = "DepartmentSuspended" if active else "DepartmentReinstated"
        expected = ["ProposalApproved", "ProposalExecuted", role_event, done]
        self.check(expected, lambda: self.ledger.govern(action, abi_encode(["uint32"], [dept])))
        self.model.active[dept] = not active

    @precondition(lambda self: bool(self.model.agreements))
    @rule(
        data=st.data(),
        action=st.sampled_from(
            [
                GovernanceAction.SUSPEND_AGREEMENT,
                GovernanceAction.REINSTATE_AGREEMENT,
                GovernanceAction.REVOKE_AGREEMENT,
            ]
        ),
    )
    def governance_on_agreement(self, data: st.DataObject, action: GovernanceAction) -> None:
        aid = data.draw(st.sampled_from(sorted(self.model.agreements)))
        a = self.model.agreements[aid]
        live = a.status in (AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED)
        reinstatable = a.held and a.status == AgreementStatus.SUSPENDED
        ok, done, status, held = {
            GovernanceAction.REINSTATE_AGREEMENT: (
                reinstatable, "AgreementReinstated", AgreementStatus.ACTIVE, False
            ),
            GovernanceAction.SUSPEND_AGREEMENT: (
                a.status == AgreementStatus.ACTIVE or (a.status == AgreementStatus.SUSPENDED and not a.held),
                "AgreementSuspended", AgreementStatus.SUSPENDED, True,
            ),
            GovernanceAction.REVOKE_AGREEMENT: (live, "AgreementRevoked", AgreementStatus.REVOKED, False),
        }[action]  # fmt: skip
        expected: Outcome = (
            ["ProposalApproved", "ProposalExecuted", done]
            if ok
            else ("AgreementStatusMismatch", {"agreementId": aid, "status": a.status})
        )
        self.check(expected, lambda: self.ledger.govern(action, abi_encode(["uint64"], [aid])))
        if ok:
            a.status, a.held = status, held

    # --- the clock ------------------------------------------------------------------------------------------

    @rule()
    def a_week_passes(self) -> None:
        rpc = self.ledger.client.w3.provider
        rpc.make_request("evm_increaseTime", [STEP_SECONDS])  # type: ignore[arg-type]
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        self.model.week += 1

    # --- catalog --------------------------------------------------------------------------------------------

    @rule(owner=st.sampled_from([1, 2, 3]), share=st.sampled_from(list(ShareType)))
    def register_resource(self, owner: int, share: ShareType) -> None:
        expected = self.inactive(owner) or ["ResourceRegistered"]
        result = self.check(
            expected,
            lambda: self.ledger.send(
                self.dept(owner), "registerResource", os.urandom(32), os.urandom(32), share, 2
            ),
        )
        if result is not None:
            rid = int(result.event("ResourceRegistered").args["resourceId"])
            self.model.resources[rid] = Res(owner, share)

    @precondition(lambda self: bool(self.model.resources))
    @rule(data=st.data(), share=st.sampled_from(list(ShareType)))
    def reclassify(self, data: st.DataObject, share: ShareType) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model.resources)))
        r = self.model.resources[rid]
        expected = self.inactive(r.owner) or ["ResourceUpdated"]
        _owner, _share, sensitivity, meta, schema = self.ledger.call("resource", rid)
        self.check(
            expected,
            lambda: self.ledger.send(
                self.dept(r.owner), "updateResource", rid, meta, schema, share, sensitivity
            ),
        )
        if isinstance(expected, list):
            r.share = share

    # --- requests -------------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.resources))
    @rule(data=st.data(), consumer=st.sampled_from([1, 2, 3]))
    def request_access(self, data: st.DataObject, consumer: int) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model.resources)))
        r = self.model.resources[rid]
        expected: Outcome | None = self.inactive(consumer)
        if expected is None and r.share == ShareType.NOT_SHARED:
            expected = ("RequestResourceNotShared", {"resourceId": rid})
        if expected is None and r.owner == consumer:
            expected = ("RequestOwnResource", {"resourceId": rid})
        expected = expected or self.inactive(r.owner)
        on_arrival = r.share == ShareType.UNCONDITIONAL
        expected = expected or (["AccessRequested", "RequestApproved"] if on_arrival else ["AccessRequested"])
        now = self.ledger.now()
        result = self.check(
            expected,
            lambda: self.ledger.send(
                self.dept(consumer), "requestAccess", rid, "checks", SCOPE, TERMS_DOC, now, now + VALIDITY
            ),
        )
        if result is not None:
            qid = int(result.event("AccessRequested").args["requestId"])
            status = RequestStatus.APPROVED if on_arrival else RequestStatus.PENDING
            self.model.requests[qid] = Req(rid, consumer, r.owner, status, on_arrival, self.model.week)

    @precondition(lambda self: bool(self.model.requests))
    @rule(data=st.data())
    def approve_request(self, data: st.DataObject) -> None:
        qid = data.draw(st.sampled_from(sorted(self.model.requests)))
        q = self.model.requests[qid]
        status = self.model.request_status(qid)
        expected: Outcome | None = self.inactive(q.provider)
        if expected is None and status != RequestStatus.PENDING:
            expected = ("RequestStatusMismatch", {"requestId": qid, "status": status})
        if expected is None and self.model.resources[q.resource].share == ShareType.NOT_SHARED:
            expected = ("RequestResourceNotShared", {"resourceId": q.resource})
        expected = expected or ["RequestApproved"]
        self.check(expected, lambda: self.ledger.send(self.dept(q.provider), "approveRequest", qid))
        if isinstance(expected, list):
            q.status, q.on_arrival = RequestStatus.APPROVED, False

    @precondition(lambda self: bool(self.model.requests))
    @rule(data=st.data(), reason=st.sampled_from([0, 7]))
    def reject_request(self, data: st.DataObject, reason: int) -> None:
        qid = data.draw(st.sampled_from(sorted(self.model.requests)))
        q = self.model.requests[qid]
        status = self.model.request_status(qid)
        expected: Outcome | None = self.inactive(q.provider)
        if expected is None and status != RequestStatus.PENDING:
            expected = ("RequestStatusMismatch", {"requestId": qid, "status": status})
        if expected is None and reason == 0:
            expected = ("RequestReasonRequired", {})
        expected = expected or ["RequestRejected"]
        self.check(expected, lambda: self.ledger.send(self.dept(q.provider), "rejectRequest", qid, reason))
        if isinstance(expected, list):
            q.status, q.on_arrival = RequestStatus.REJECTED, False

    @precondition(lambda self: bool(self.model.requests))
    @rule(data=st.data(), by_provider=st.booleans())
    def withdraw_request(self, data: st.DataObject, by_provider: bool) -> None:
        qid = data.draw(st.sampled_from(sorted(self.model.requests)))
        q = self.model.requests[qid]
        who = q.provider if by_provider else q.consumer
        expected: Outcome | None = self.inactive(who)
        if expected is None and q.status not in (RequestStatus.PENDING, RequestStatus.APPROVED):
            expected = ("RequestStatusMismatch", {"requestId": qid, "status": q.status})
        expected = expected or ["RequestWithdrawn"]
        self.check(expected, lambda: self.ledger.send(self.dept(who), "withdrawRequest", qid))
        if isinstance(expected, list):
            q.status = RequestStatus.WITHDRAWN

    # --- agreements -----------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.requests))
    @rule(data=st.data())
    def conclude(self, data: st.DataObject) -> None:
        qid = data.draw(st.sampled_from(sorted(self.model.requests)))
        q = self.model.requests[qid]
        status = self.model.request_status(qid)
        expected: Outcome | None = None
        if status != RequestStatus.APPROVED:
            expected = ("RequestStatusMismatch", {"requestId": qid, "status": status})
        elif self.model.resources[q.resource].share == ShareType.NOT_SHARED:
            expected = ("RequestResourceNotShared", {"resourceId": q.resource})
        elif self.model.validity_over(q.week):
            expected = ("RequestInvalidPeriod", {})
        expected = expected or self.inactive(q.provider, q.consumer) or ["AgreementConcluded"]
        terms = self.ledger.terms(qid)
        sigs = self.ledger.signatures(terms, self.dept(q.provider), self.dept(q.consumer))
        result = self.check(
            expected,
            lambda: self.ledger.send(self.ledger.outsider, "concludeAgreement", terms.as_tuple(), *sigs),
        )
        if result is not None:
            aid = int(result.event("AgreementConcluded").args["agreementId"])
            self.model.agreements[aid] = Agr(q.resource, q.provider, q.consumer, week=q.week)
            q.status = RequestStatus.CONCLUDED

    @precondition(lambda self: bool(self.model.agreements))
    @rule(data=st.data(), fn=st.sampled_from(["suspendAgreement", "reinstateAgreement", "revokeAgreement"]))
    def provider_changes_agreement(self, data: st.DataObject, fn: str) -> None:
        aid = data.draw(st.sampled_from(sorted(self.model.agreements)))
        a = self.model.agreements[aid]
        mismatch = ("AgreementStatusMismatch", {"agreementId": aid, "status": a.status})
        expected: Outcome
        if fn == "suspendAgreement":  # withdrawing access: also while the provider is suspended
            expected = ["AgreementSuspended"] if a.status == AgreementStatus.ACTIVE else mismatch
        elif fn == "revokeAgreement":
            live = a.status in (AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED)
            expected = ["AgreementRevoked"] if live else mismatch
        else:
            expected = self.inactive(a.provider) or (
                mismatch
                if a.status != AgreementStatus.SUSPENDED
                else ("AgreementSuspendedByGovernance", {"agreementId": aid})
                if a.held
                else ["AgreementReinstated"]
            )
        self.check(expected, lambda: self.ledger.send(self.dept(a.provider), fn, aid))
        if isinstance(expected, list):
            a.status = {
                "suspendAgreement": AgreementStatus.SUSPENDED,
                "reinstateAgreement": AgreementStatus.ACTIVE,
                "revokeAgreement": AgreementStatus.REVOKED,
            }[fn]
            a.held = a.held and fn != "revokeAgreement"

    # --- grants and deliveries ------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.agreements))
    @rule(data=st.data())
    def issue_grant(self, data: st.DataObject) -> None:
        aid = data.draw(st.sampled_from(sorted(self.model.agreements)))
        a = self.model.agreements[aid]
        expected: Outcome | None = self.inactive(a.provider, a.consumer)
        if expected is None and a.status != AgreementStatus.ACTIVE:
            expected = ("AgreementStatusMismatch", {"agreementId": aid, "status": a.status})
        if expected is None and self.model.validity_over(a.week):
            expected = ("AgreementOutsideValidity", {"agreementId": aid})
        if expected is None and self.model.resources[a.resource].share == ShareType.NOT_SHARED:
            expected = ("RequestResourceNotShared", {"resourceId": a.resource})
        expected = expected or ["GrantIssued"]
        result = self.check(
            expected,
            lambda: self.ledger.send(
                self.dept(a.provider), "issueGrant", aid, self.ledger.now() + GRANT_SECONDS
            ),
        )
        if result is not None:
            gid = int(result.event("GrantIssued").args["grantId"])
            self.model.grants[gid] = Grt(aid, a.provider, a.consumer, week=self.model.week)

    @precondition(lambda self: bool(self.model.grants))
    @rule(data=st.data())
    def revoke_grant(self, data: st.DataObject) -> None:
        gid = data.draw(st.sampled_from(sorted(self.model.grants)))
        g = self.model.grants[gid]
        revoked = self.model.grant_revoked(gid)
        expected: Outcome = ("GrantAlreadyRevoked", {"grantId": gid}) if revoked else ["GrantRevoked"]
        if self.check(expected, lambda: self.ledger.send(self.dept(g.provider), "revokeGrant", gid)):
            g.revoked = True

    @precondition(lambda self: bool(self.model.grants))
    @rule(data=st.data(), algorithm=st.sampled_from([1, 2, 3]), foreign=st.booleans())
    def deliver(self, data: st.DataObject, algorithm: int, foreign: bool) -> None:
        gid = data.draw(st.sampled_from(sorted(self.model.grants)))
        g = self.model.grants[gid]
        a = self.model.agreements[g.agreement]
        expected: Outcome | None = None
        if algorithm == 3:
            expected = ("DeliveryUnknownHashAlgorithm", {"hashAlgorithm": 3})
        elif g.revoked:
            expected = ("GrantAlreadyRevoked", {"grantId": gid})
        elif self.model.grant_expired(gid):
            expected = ("GrantExpired", {"grantId": gid})
        elif a.status != AgreementStatus.ACTIVE:
            expected = ("AgreementStatusMismatch", {"agreementId": g.agreement, "status": a.status})
        elif self.model.resources[a.resource].share == ShareType.NOT_SHARED:
            expected = ("RequestResourceNotShared", {"resourceId": a.resource})
        expected = expected or self.inactive(g.provider, g.consumer)
        owner = g.consumer if foreign else g.provider  # the consumer's namespace is never the provider's
        did = new_delivery_id(owner)
        if expected is None and foreign:
            expected = ("DeliveryIdNotProviders", {"deliveryId": did, "provider": g.provider})
        expected = expected or ["DeliveryRecorded"]
        commitment = os.urandom(32)
        result = self.check(
            expected,
            lambda: self.ledger.send(
                self.dept(g.provider), "recordDelivery", did, gid, commitment, algorithm, 10, 1
            ),
        )
        if result is not None:
            self.model.deliveries[did] = Dlv(g.consumer, commitment, receipt_of(result))

    @precondition(lambda self: bool(self.model.deliveries))
    @rule(data=st.data(), same=st.booleans())
    def acknowledge(self, data: st.DataObject, same: bool) -> None:
        """The consumer settles a delivery: the commitment it computed equals the recorded one, or not."""
        did = data.draw(st.sampled_from(sorted(self.model.deliveries)))
        d = self.model.deliveries[did]
        expected: Outcome | None = self.inactive(d.consumer)
        if expected is None and d.status != DeliveryStatus.RECORDED:
            expected = ("DeliveryAlreadySettled", {"deliveryId": did, "status": d.status})
        expected = expected or (["DeliveryAcknowledged"] if same else ["DeliveryDisputed"])
        computed = d.commitment if same else os.urandom(32)
        self.check(
            expected,
            lambda: self.ledger.send(self.dept(d.consumer), "acknowledgeDelivery", did, d.receipt, computed),
        )
        if isinstance(expected, list):
            d.status = DeliveryStatus.ACKNOWLEDGED if same else DeliveryStatus.DISPUTED

    # --- the views tell the model's story -----------------------------------------------------------------

    @invariant()
    def views_agree(self) -> None:
        if not hasattr(self, "model"):
            return
        call = self.ledger.call
        for i, active in self.model.active.items():
            assert call("department", i)[1] == (1 if active else 2)
            assert call("hasRole", DEPARTMENT_ROLE, self.dept(i).account.address) is active
        for qid in self.model.requests:
            assert call("request", qid)[3] == self.model.request_status(qid), qid
        for aid, a in self.model.agreements.items():
            assert call("agreement", aid)[4] == a.status, aid
        for gid in self.model.grants:
            assert call("grant", gid)[4] is self.model.grant_revoked(gid), gid
        for did, d in self.model.deliveries.items():
            assert call("deliveryStatus", did) == d.status, did.hex()


def test_ledger_rules_hold_for_random_operation_sequences(world: World) -> None:
    LedgerRules.world = world
    # Bounded so the test stays cheap (each step is one or two real transactions).
    run_model(LedgerRules, LedgerRules.seen, examples=5, steps=12)
