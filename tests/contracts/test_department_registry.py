"""Membership under M-of-N governance: proposals, approvals, departments, auditors and governors."""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from web3 import Web3

from node.chain import LedgerRevertError
from node.endpoint import NodeEndpoint
from node.types import AgreementStatus, DepartmentStatus, GovernanceAction, encode_code
from tests.contracts.conftest import Consortium, admission, deploy, names, reverts

AUDITOR_ROLE = Web3.keccak(text="dxl.role.auditor")
GOVERNOR_ROLE = Web3.keccak(text="dxl.role.governor")
DEPARTMENT_ROLE = Web3.keccak(text="dxl.role.department")


def uint(value: int) -> bytes:
    return abi_encode(["uint256"], [value])


def address(account_address: str) -> bytes:
    return abi_encode(["address"], [account_address])


@pytest.mark.parametrize(
    ("governor_count", "threshold", "error"),
    [
        (3, 0, "GovernanceInvalidThreshold"),
        (3, 4, "GovernanceInvalidThreshold"),
        (0, 1, "GovernanceInvalidThreshold"),
    ],
)
def test_constructor_rejectsUnusableThreshold(
    node_endpoint: NodeEndpoint, governor_count: int, threshold: int, error: str
) -> None:
    governors = [Account.create() for _ in range(max(governor_count, 1))][:governor_count] or [
        Account.create()
    ]
    with reverts(error, threshold=threshold, governorCount=governor_count):
        if governor_count == 0:
            from node.chain import LedgerClient
            from node.compiler import load_artifact

            artifact = load_artifact("DataExchangeLedger")
            LedgerClient(node_endpoint, artifact.abi).deploy(governors[0], artifact.bytecode, [], threshold)
        else:
            deploy(node_endpoint, governors, threshold)


def test_constructor_duplicateGovernor_reverts(node_endpoint: NodeEndpoint) -> None:
    g = Account.create()
    with reverts("GovernanceMembershipUnchanged", account=g.address):
        deploy(node_endpoint, [g, g], 1)


def test_propose_byNonGovernor_reverts(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    with reverts("GovernanceUnauthorized", account=psb.account.address):
        ledger.send(psb, "propose", GovernanceAction.SUSPEND_DEPARTMENT, uint(psb.id))


def test_admit_takesEffectOnlyAtThreshold(ledger: Consortium) -> None:
    signer, key = Account.create(), os.urandom(32)
    before = ledger.call("departmentCount")
    proposed = ledger.send(
        ledger.governors[0],
        "propose",
        GovernanceAction.ADMIT_DEPARTMENT,
        admission("SAMR", "Market", signer, key),
    )
    assert names(proposed) == ["ProposalCreated", "ProposalApproved"]  # no DepartmentAdmitted yet
    assert ledger.call("departmentCount") == before
    assert ledger.call("departmentOf", signer.address) == 0

    proposal_id = proposed.event("ProposalCreated").args["proposalId"]
    approved = ledger.send(ledger.governors[2], "approve", proposal_id)
    assert names(approved) == ["ProposalApproved", "ProposalExecuted", "RoleGranted", "DepartmentAdmitted"]
    admitted = approved.event("DepartmentAdmitted").args
    assert admitted["departmentId"] == before + 1
    assert admitted["signer"] == signer.address
    assert admitted["encryptionKey"] == key
    assert admitted["name"] == "Market"
    dept = ledger.call("department", before + 1)
    assert dept[0] == signer.address and dept[1] == DepartmentStatus.ACTIVE
    assert ledger.call("departmentByCode", encode_code("SAMR")) == before + 1
    assert ledger.call("hasRole", DEPARTMENT_ROLE, signer.address)
    assert list(ledger.call("proposal", proposal_id)[2:4]) == [2, True]


def test_approve_twiceBySameGovernor_reverts(ledger: Consortium) -> None:
    proposed = ledger.send(ledger.governors[0], "propose", GovernanceAction.SUSPEND_DEPARTMENT, uint(1))
    proposal_id = proposed.event("ProposalCreated").args["proposalId"]
    with reverts("GovernanceAlreadyApproved", proposalId=proposal_id, governor=ledger.governors[0].address):
        ledger.send(ledger.governors[0], "approve", proposal_id)


def test_approve_executedProposal_reverts(ledger: Consortium) -> None:
    result = ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(ledger.depts["CIVIL"].id))
    proposal_id = result.event("ProposalExecuted").args["proposalId"]
    with reverts("GovernanceProposalExecuted", proposalId=proposal_id):
        ledger.send(ledger.governors[2], "approve", proposal_id)


def test_approve_unknownProposal_reverts(ledger: Consortium) -> None:
    with reverts("GovernanceUnknownProposal", proposalId=999):
        ledger.send(ledger.governors[0], "approve", 999)


def test_approve_byNonGovernor_reverts(ledger: Consortium) -> None:
    proposed = ledger.send(ledger.governors[0], "propose", GovernanceAction.SUSPEND_DEPARTMENT, uint(1))
    proposal_id = proposed.event("ProposalCreated").args["proposalId"]
    with reverts("GovernanceUnauthorized", account=ledger.outsider.address):
        ledger.send(ledger.outsider, "approve", proposal_id)


@pytest.mark.parametrize(
    ("code", "name", "signer", "key", "field"),
    [
        ("", "n", "new", b"\x01" * 32, "code"),
        ("X1", "", "new", b"\x01" * 32, "name"),
        ("X2", "n", "zero", b"\x01" * 32, "signer"),
        ("X3", "n", "new", b"\x00" * 32, "encryptionKey"),
    ],
)
def test_admit_emptyField_reverts(
    ledger: Consortium, code: str, name: str, signer: str, key: bytes, field: str
) -> None:
    signer_address = "0x" + "00" * 20 if signer == "zero" else Account.create().address
    data = abi_encode(
        ["bytes32", "string", "address", "bytes32", "bool"],
        [code.encode().ljust(32, b"\0"), name, signer_address, key, False],
    )
    with reverts("DepartmentInvalidField", field=field):
        ledger.govern(GovernanceAction.ADMIT_DEPARTMENT, data)


def test_admit_takenCodeOrSigner_reverts(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    with reverts("DepartmentAlreadyRegistered", code=encode_code("PSB")):
        ledger.govern(
            GovernanceAction.ADMIT_DEPARTMENT, admission("PSB", "again", Account.create(), b"\x01" * 32)
        )
    with reverts("DepartmentAlreadyRegistered", signer=psb.account.address):
        ledger.govern(
            GovernanceAction.ADMIT_DEPARTMENT, admission("NEW", "dup signer", psb.account, b"\x01" * 32)
        )


def test_suspendAndReinstate_changeStatusOnce(ledger: Consortium) -> None:
    civil = ledger.depts["CIVIL"]
    suspended = ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    assert suspended.event("DepartmentSuspended").args["departmentId"] == civil.id
    assert ledger.call("department", civil.id)[1] == DepartmentStatus.SUSPENDED
    with reverts("DepartmentStatusUnchanged", departmentId=civil.id):
        ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    # A suspended department cannot act.
    with reverts("DepartmentNotActive", departmentId=civil.id):
        ledger.resource(civil)
    reinstated = ledger.govern(GovernanceAction.REINSTATE_DEPARTMENT, uint(civil.id))
    assert names(reinstated)[-1] == "DepartmentReinstated"
    with reverts("DepartmentStatusUnchanged", departmentId=civil.id):
        ledger.govern(GovernanceAction.REINSTATE_DEPARTMENT, uint(civil.id))
    assert ledger.resource(civil) > 0


def test_suspend_unknownDepartment_reverts(ledger: Consortium) -> None:
    with reverts("DepartmentUnknown", departmentId=77):
        ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(77))
    with reverts("DepartmentUnknown", departmentId=77):
        ledger.call("department", 77)


def test_rekey_movesAuthorityToNewSigner(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    old, new, key = psb.account, Account.create(), os.urandom(32)
    result = ledger.govern(
        GovernanceAction.REKEY_DEPARTMENT,
        abi_encode(["uint32", "address", "bytes32"], [psb.id, new.address, key]),
    )
    ev = result.event("DepartmentRekeyed").args
    assert (ev["previousSigner"], ev["signer"], ev["encryptionKey"]) == (old.address, new.address, key)
    assert "RoleRevoked" in names(result) and "RoleGranted" in names(result)
    assert ledger.call("departmentOf", old.address) == 0
    assert ledger.call("departmentOf", new.address) == psb.id
    with reverts("DepartmentUnauthorized", account=old.address):
        ledger.resource(psb)
    psb.account = new
    assert ledger.resource(psb) > 0


def test_rekey_toTakenSigner_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    data = abi_encode(["uint32", "address", "bytes32"], [psb.id, hrss.account.address, b"\x01" * 32])
    with reverts("DepartmentAlreadyRegistered", signer=hrss.account.address):
        ledger.govern(GovernanceAction.REKEY_DEPARTMENT, data)


def test_auditor_grantAndRevoke(ledger: Consortium) -> None:
    auditor = Account.create()
    granted = ledger.govern(GovernanceAction.GRANT_AUDITOR, address(auditor.address))
    assert granted.event("RoleGranted").args["role"] == AUDITOR_ROLE
    assert ledger.call("hasRole", AUDITOR_ROLE, auditor.address)
    with reverts("GovernanceMembershipUnchanged", account=auditor.address):
        ledger.govern(GovernanceAction.GRANT_AUDITOR, address(auditor.address))
    ledger.govern(GovernanceAction.REVOKE_AUDITOR, address(auditor.address))
    assert not ledger.call("hasRole", AUDITOR_ROLE, auditor.address)
    with reverts("GovernanceMembershipUnchanged", account=auditor.address):
        ledger.govern(GovernanceAction.REVOKE_AUDITOR, address(auditor.address))


def test_governors_addRemoveAndThreshold(ledger: Consortium) -> None:
    newcomer = Account.create()
    ledger.govern(GovernanceAction.ADD_GOVERNOR, address(newcomer.address))
    assert ledger.call("governorCount") == 4
    changed = ledger.govern(GovernanceAction.SET_THRESHOLD, uint(3))
    assert changed.event("ThresholdChanged").args["threshold"] == 3
    # Now two approvals no longer execute.
    proposed = ledger.govern(GovernanceAction.REMOVE_GOVERNOR, address(newcomer.address))
    assert "ProposalExecuted" not in names(proposed)
    proposal_id = proposed.event("ProposalApproved").args["proposalId"]
    removed = ledger.send(newcomer, "approve", proposal_id)
    assert "ProposalExecuted" in names(removed)
    assert ledger.call("governorCount") == 3
    assert not ledger.call("hasRole", GOVERNOR_ROLE, newcomer.address)


def test_removeGovernor_thresholdRaisedSinceProposed_revertsOnExecution(ledger: Consortium) -> None:
    """A removal proposed while it could take effect is checked again when executed: the threshold was raised
    to every governor since, and the removal would leave fewer governors than approvals needed."""
    g0, g1, g2 = ledger.governors
    removal = _pending(ledger, g0, GovernanceAction.REMOVE_GOVERNOR, address(g2.address))
    ledger.govern(GovernanceAction.SET_THRESHOLD, uint(3))
    ledger.send(g1, "approve", removal)
    with reverts("GovernanceInvalidThreshold", threshold=3, governorCount=2):
        ledger.send(g2, "approve", removal)
    assert ledger.call("governorCount") == 3 and ledger.call("proposal", removal)[3] is False


@pytest.mark.parametrize("fn", ["grantRole", "revokeRole", "renounceRole"])
def test_roleFunctions_outsideGovernance_revert(ledger: Consortium, fn: str) -> None:
    with reverts("GovernanceRoleManagedByProposals"):
        ledger.send(ledger.governors[0], fn, GOVERNOR_ROLE, ledger.governors[0].address)


def test_revert_minedWithStatusZero_isDecoded(ledger: Consortium) -> None:
    # With gas given there is no estimation: the transaction is mined, reverts, and is still decoded.
    with pytest.raises(LedgerRevertError) as info:
        ledger.send(ledger.outsider, "approve", 1, gas=200_000)
    assert info.value.error_name == "GovernanceUnauthorized"
    assert info.value.tx_hash


def test_approve_removedGovernorsApprovalNoLongerCounts(ledger: Consortium) -> None:
    g0, g1, g2 = ledger.governors
    civil = ledger.depts["CIVIL"]
    pending = ledger.send(g0, "propose", GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    pending_id = pending.event("ProposalCreated").args["proposalId"]
    # g1 and g2 remove g0 (2-of-3 executes).
    removal = ledger.send(g1, "propose", GovernanceAction.REMOVE_GOVERNOR, address(g0.address))
    ledger.send(g2, "approve", removal.event("ProposalCreated").args["proposalId"])
    assert ledger.call("proposal", pending_id)[2] == 0  # g0's approval stopped counting

    second = ledger.send(g1, "approve", pending_id)
    assert second.event("ProposalApproved").args["approvals"] == 1
    assert "ProposalExecuted" not in names(second)
    assert ledger.call("department", civil.id)[1] == DepartmentStatus.ACTIVE
    third = ledger.send(g2, "approve", pending_id)
    assert names(third)[-3:] == ["ProposalExecuted", "RoleRevoked", "DepartmentSuspended"]


def _pending(ledger: Consortium, governor: Any, action: GovernanceAction, data: bytes) -> int:
    proposed = ledger.send(governor, "propose", action, data)
    return int(proposed.event("ProposalCreated").args["proposalId"])


def _advance(ledger: Consortium, seconds: int) -> None:
    """Moves the node's clock forward and mines a block at the new time (the test's snapshot restores it)."""
    ledger.client.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    ledger.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def test_approve_afterTheSevenDayWindow_reverts(ledger: Consortium) -> None:
    """A proposal is approved within 7 days of being made, or never: a late approval, or an execution after
    the threshold was lowered, reverts naming its end, and nothing is executed."""
    g0, g1, _ = ledger.governors
    civil = ledger.depts["CIVIL"]
    late = ledger.send(g0, "propose", GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    pid, expires_at = (late.event("ProposalCreated").args[k] for k in ("proposalId", "expiresAt"))
    assert expires_at == ledger.client.w3.eth.get_block(late.block_number)["timestamp"] + 7 * 86400
    _advance(ledger, 7 * 86400 - 120)
    in_time = _pending(ledger, g0, GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    _advance(ledger, 7 * 86400 - 120)  # the first is 14 days old less 4 minutes, the second 7 days less 2
    with reverts("GovernanceProposalExpired", proposalId=pid, expiredAt=expires_at):
        ledger.send(g1, "approve", pid)
    ledger.govern(GovernanceAction.SET_THRESHOLD, uint(1))
    with reverts("GovernanceProposalExpired", proposalId=pid, expiredAt=expires_at):
        ledger.send(ledger.outsider, "execute", pid)
    assert ledger.call("department", civil.id)[1] == DepartmentStatus.ACTIVE
    assert names(ledger.send(g1, "execute", in_time))[-1] == "DepartmentSuspended"


def test_propose_unknownAction_reverts(ledger: Consortium) -> None:
    before = ledger.call("proposalCount")
    unknown = max(GovernanceAction) + 1
    with reverts("GovernanceUnknownAction", action=unknown):
        ledger.send(ledger.governors[0], "propose", unknown, uint(1))
    with reverts("GovernanceUnknownAction", action=255):
        ledger.send(ledger.governors[0], "propose", 255, uint(1))
    assert ledger.call("proposalCount") == before


def test_propose_admissionOfRegisteredCode_reverts(ledger: Consortium) -> None:
    """Refused when proposed, not left pending to fail at execution: no proposal is created."""
    before = ledger.call("proposalCount")
    newcomer = Account.create()
    with reverts("DepartmentAlreadyRegistered", code=encode_code("PSB"), signer=newcomer.address):
        ledger.send(
            ledger.governors[0],
            "propose",
            GovernanceAction.ADMIT_DEPARTMENT,
            admission("PSB", "again", newcomer, b"\x01" * 32),
        )
    hrss = ledger.depts["HRSS"]
    with reverts("DepartmentAlreadyRegistered", code=encode_code("NEW"), signer=hrss.account.address):
        ledger.send(
            ledger.governors[0],
            "propose",
            GovernanceAction.ADMIT_DEPARTMENT,
            admission("NEW", "taken signer", hrss.account, b"\x01" * 32),
        )
    assert ledger.call("proposalCount") == before


def test_suspendDepartment_revokesDepartmentRoleUntilReinstated(ledger: Consortium) -> None:
    civil = ledger.depts["CIVIL"]
    suspended = ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    assert names(suspended)[-2:] == ["RoleRevoked", "DepartmentSuspended"]
    revoked = suspended.event("RoleRevoked").args
    assert (revoked["role"], revoked["account"]) == (DEPARTMENT_ROLE, civil.account.address)
    assert ledger.call("hasRole", DEPARTMENT_ROLE, civil.account.address) is False

    # A suspended department re-keyed meanwhile: the new signer gets the role only on reinstatement.
    new = Account.create()
    rekeyed = ledger.govern(
        GovernanceAction.REKEY_DEPARTMENT,
        abi_encode(["uint32", "address", "bytes32"], [civil.id, new.address, os.urandom(32)]),
    )
    assert "RoleGranted" not in names(rekeyed) and "RoleRevoked" not in names(rekeyed)
    assert ledger.call("hasRole", DEPARTMENT_ROLE, new.address) is False

    reinstated = ledger.govern(GovernanceAction.REINSTATE_DEPARTMENT, uint(civil.id))
    assert names(reinstated)[-2:] == ["RoleGranted", "DepartmentReinstated"]
    assert reinstated.event("RoleGranted").args["account"] == new.address
    assert ledger.call("hasRole", DEPARTMENT_ROLE, new.address) is True
    assert ledger.call("hasRole", DEPARTMENT_ROLE, civil.account.address) is False


def test_rekeyDepartment_sameSigner_rotatesEncryptionKeyOnly(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    key = os.urandom(32)
    result = ledger.govern(
        GovernanceAction.REKEY_DEPARTMENT,
        abi_encode(["uint32", "address", "bytes32"], [psb.id, psb.account.address, key]),
    )
    assert names(result)[-1] == "DepartmentRekeyed"
    assert "RoleRevoked" not in names(result) and "RoleGranted" not in names(result)
    ev = result.event("DepartmentRekeyed").args
    assert (ev["departmentId"], ev["previousSigner"], ev["signer"], ev["encryptionKey"]) == (
        psb.id,
        psb.account.address,
        psb.account.address,
        key,
    )
    dept = ledger.call("department", psb.id)
    assert (dept[0], dept[3]) == (psb.account.address, key)
    assert ledger.call("departmentOf", psb.account.address) == psb.id
    assert ledger.call("hasRole", DEPARTMENT_ROLE, psb.account.address) is True
    assert ledger.resource(psb) > 0  # the signer still acts for the department


def test_execute_thresholdLoweredAfterApproval_executesForAnyone(ledger: Consortium) -> None:
    g0, _, _ = ledger.governors
    civil = ledger.depts["CIVIL"]
    pid = _pending(ledger, g0, GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    with reverts("GovernanceBelowThreshold", proposalId=pid, approvals=1, threshold=2):
        ledger.send(ledger.outsider, "execute", pid)
    ledger.govern(GovernanceAction.SET_THRESHOLD, uint(1))
    executed = ledger.send(ledger.outsider, "execute", pid)
    assert names(executed) == ["ProposalExecuted", "RoleRevoked", "DepartmentSuspended"]
    assert executed.event("ProposalExecuted").args["proposalId"] == pid
    assert ledger.call("department", civil.id)[1] == DepartmentStatus.SUSPENDED
    assert ledger.call("proposal", pid)[3] is True
    with reverts("GovernanceProposalExecuted", proposalId=pid):
        ledger.send(ledger.outsider, "execute", pid)


def test_execute_everyGovernorApprovedButStuck_executes(ledger: Consortium) -> None:
    """Removing a governor whose approval was the only one missing leaves a proposal at threshold that no
    approval can execute any more (all remaining governors approved): execute is the way out."""
    g0, g1, g2 = ledger.governors
    ledger.govern(GovernanceAction.SET_THRESHOLD, uint(3))
    civil = ledger.depts["CIVIL"]
    pid = _pending(ledger, g0, GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    ledger.send(g1, "approve", pid)
    # Lower the threshold to 2 (g0, g1, g2 approve), then g2 never needs to approve pid: execute it.
    lower = _pending(ledger, g0, GovernanceAction.SET_THRESHOLD, uint(2))
    ledger.send(g1, "approve", lower)
    ledger.send(g2, "approve", lower)
    assert ledger.call("proposal", pid)[2:4] == [2, False]
    with reverts("GovernanceAlreadyApproved", proposalId=pid, governor=g1.address):
        ledger.send(g1, "approve", pid)
    executed = ledger.send(g2, "execute", pid)
    assert names(executed)[-1] == "DepartmentSuspended"


def test_cancel_byProposer_stopsApprovalAndExecution(ledger: Consortium) -> None:
    g0, g1, g2 = ledger.governors
    pid = _pending(ledger, g0, GovernanceAction.SUSPEND_DEPARTMENT, uint(ledger.depts["CIVIL"].id))
    with reverts("GovernanceNotProposer", proposalId=pid, account=g1.address):
        ledger.send(g1, "cancel", pid)
    with reverts("GovernanceNotProposer", proposalId=pid, account=ledger.outsider.address):
        ledger.send(ledger.outsider, "cancel", pid)
    cancelled = ledger.send(g0, "cancel", pid)
    assert names(cancelled) == ["ProposalCancelled"]
    assert (cancelled.event("ProposalCancelled").args["by"], ledger.call("proposal", pid)[6]) == (
        g0.address,
        True,
    )
    with reverts("GovernanceProposalCancelled", proposalId=pid):
        ledger.send(g2, "approve", pid)
    with reverts("GovernanceProposalCancelled", proposalId=pid):
        ledger.send(g0, "cancel", pid)
    ledger.govern(GovernanceAction.SET_THRESHOLD, uint(1))
    with reverts("GovernanceProposalCancelled", proposalId=pid):
        ledger.send(ledger.outsider, "execute", pid)
    assert ledger.call("department", ledger.depts["CIVIL"].id)[1] == DepartmentStatus.ACTIVE


def test_approve_reAddedGovernorsOldApproval_doesNotCount(ledger: Consortium) -> None:
    g0, g1, g2 = ledger.governors
    civil = ledger.depts["CIVIL"]
    pid = _pending(ledger, g0, GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    removal = _pending(ledger, g1, GovernanceAction.REMOVE_GOVERNOR, address(g0.address))
    ledger.send(g2, "approve", removal)
    readd = _pending(ledger, g1, GovernanceAction.ADD_GOVERNOR, address(g0.address))
    ledger.send(g2, "approve", readd)
    assert ledger.call("hasRole", GOVERNOR_ROLE, g0.address) is True
    # g0's approval from its first term does not count in its second.
    assert ledger.call("proposal", pid)[2] == 0
    assert ledger.call("hasApproved", pid, g0.address) is False
    with reverts("GovernanceBelowThreshold", proposalId=pid, approvals=0, threshold=2):
        ledger.send(ledger.outsider, "execute", pid)
    first = ledger.send(g1, "approve", pid)
    assert first.event("ProposalApproved").args["approvals"] == 1
    assert "ProposalExecuted" not in names(first)
    # g0 approves anew in its current term, and that approval counts.
    second = ledger.send(g0, "approve", pid)
    assert second.event("ProposalApproved").args["approvals"] == 2
    assert names(second)[-1] == "DepartmentSuspended"


def _no_effect_proposals(ledger: Consortium) -> list[tuple[GovernanceAction, bytes, str, dict[str, Any]]]:
    """Proposals whose action cannot take effect in the ledger's present state, each with the error its
    execution would raise. ``ledger`` is first given every kind of such target: CIVIL suspended, an agreement
    active, one its provider suspended, one governance suspended, one revoked (threshold 2 of 3)."""
    g1 = ledger.governors[1]
    psb, hrss, civil = (ledger.depts[c] for c in ("PSB", "HRSS", "CIVIL"))
    ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id))
    active, paused, held, revoked = (ledger.agreement(psb, hrss) for _ in range(4))
    ledger.send(psb, "suspendAgreement", paused)
    ledger.govern(GovernanceAction.SUSPEND_AGREEMENT, uint(held))
    ledger.send(psb, "revokeAgreement", revoked)
    rekey, key, zero = ["uint32", "address", "bytes32"], b"\x01" * 32, "0x" + "00" * 20
    outsider = Account.create().address
    status, unchanged, threshold = (
        "DepartmentStatusUnchanged",
        "GovernanceMembershipUnchanged",
        "GovernanceInvalidThreshold",
    )
    mismatch = "AgreementStatusMismatch"
    return [
        (GovernanceAction.REINSTATE_DEPARTMENT, uint(psb.id), status, {"departmentId": psb.id}),
        (GovernanceAction.SUSPEND_DEPARTMENT, uint(civil.id), status, {"departmentId": civil.id}),
        (GovernanceAction.SUSPEND_DEPARTMENT, uint(77), "DepartmentUnknown", {"departmentId": 77}),
        (GovernanceAction.REINSTATE_DEPARTMENT, uint(77), "DepartmentUnknown", {"departmentId": 77}),
        (GovernanceAction.REKEY_DEPARTMENT, abi_encode(rekey, [77, outsider, key]), "DepartmentUnknown",
         {"departmentId": 77}),
        (GovernanceAction.REKEY_DEPARTMENT, abi_encode(rekey, [psb.id, zero, key]), "DepartmentInvalidField",
         {"field": "signer"}),
        (GovernanceAction.REKEY_DEPARTMENT, abi_encode(rekey, [psb.id, outsider, bytes(32)]),
         "DepartmentInvalidField", {"field": "encryptionKey"}),
        (GovernanceAction.REKEY_DEPARTMENT, abi_encode(rekey, [psb.id, hrss.account.address, key]),
         "DepartmentAlreadyRegistered", {"code": encode_code("PSB"), "signer": hrss.account.address}),
        (GovernanceAction.GRANT_AUDITOR, address(zero), unchanged, {"account": zero}),
        (GovernanceAction.REVOKE_AUDITOR, address(outsider), unchanged, {"account": outsider}),
        (GovernanceAction.ADD_GOVERNOR, address(g1.address), unchanged, {"account": g1.address}),
        (GovernanceAction.ADD_GOVERNOR, address(zero), unchanged, {"account": zero}),
        (GovernanceAction.REMOVE_GOVERNOR, address(outsider), unchanged, {"account": outsider}),
        (GovernanceAction.SET_THRESHOLD, uint(0), threshold, {"threshold": 0, "governorCount": 3}),
        (GovernanceAction.SET_THRESHOLD, uint(4), threshold, {"threshold": 4, "governorCount": 3}),
        (GovernanceAction.SUSPEND_AGREEMENT, uint(99), "AgreementUnknown", {"agreementId": 99}),
        (GovernanceAction.SUSPEND_AGREEMENT, uint(held), mismatch,
         {"agreementId": held, "status": AgreementStatus.SUSPENDED}),
        (GovernanceAction.SUSPEND_AGREEMENT, uint(revoked), mismatch,
         {"agreementId": revoked, "status": AgreementStatus.REVOKED}),
        (GovernanceAction.REVOKE_AGREEMENT, uint(revoked), mismatch,
         {"agreementId": revoked, "status": AgreementStatus.REVOKED}),
        (GovernanceAction.REINSTATE_AGREEMENT, uint(active), mismatch,
         {"agreementId": active, "status": AgreementStatus.ACTIVE}),
        (GovernanceAction.REINSTATE_AGREEMENT, uint(paused), mismatch,
         {"agreementId": paused, "status": AgreementStatus.SUSPENDED}),
        (GovernanceAction.REINSTATE_AGREEMENT, uint(revoked), mismatch,
         {"agreementId": revoked, "status": AgreementStatus.REVOKED}),
    ]  # fmt: skip


def test_propose_actionThatCannotTakeEffectNow_reverts(ledger: Consortium) -> None:
    """Every kind of proposal is refused when proposed, with the error its execution would raise, if its
    action cannot take effect in the ledger's present state (reinstating an active department, suspending a
    suspended one, adding a governor who is one, a threshold out of range, revoking a revoked agreement, ...):
    none is left pending for a week to fail. No proposal is created."""
    cases = _no_effect_proposals(ledger)
    before = ledger.call("proposalCount")
    assert {action for action, *_ in cases} == set(GovernanceAction) - {GovernanceAction.ADMIT_DEPARTMENT}
    for action, data, error, args in cases:
        with reverts(error, **args):
            ledger.send(ledger.governors[0], "propose", action, data)
    assert ledger.call("proposalCount") == before


def test_propose_removalBelowThreshold_reverts(ledger: Consortium) -> None:
    """Removing a governor when every remaining one would be needed and more is refused when proposed."""
    ledger.govern(GovernanceAction.SET_THRESHOLD, uint(3))
    before = ledger.call("proposalCount")
    with reverts("GovernanceInvalidThreshold", threshold=3, governorCount=2):
        ledger.send(
            ledger.governors[0],
            "propose",
            GovernanceAction.REMOVE_GOVERNOR,
            address(ledger.governors[2].address),
        )
    assert ledger.call("proposalCount") == before


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01" * 31, abi_encode(["uint256"], [2**32 + 1])],
    ids=["empty", "short", "id-past-uint32"],
)
def test_propose_argumentsThatDoNotDecode_reverts(ledger: Consortium, data: bytes) -> None:
    """Arguments that are not the action's ABI encoding are refused when proposed (the decoder's own revert,
    which carries no error): before, only an admission's were decoded then, and any other proposal was
    created to fail at every approval."""
    before = ledger.call("proposalCount")
    with pytest.raises(LedgerRevertError) as info:
        ledger.send(ledger.governors[0], "propose", GovernanceAction.SUSPEND_DEPARTMENT, data)
    assert info.value.error_name is None
    assert ledger.call("proposalCount") == before
