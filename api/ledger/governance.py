"""Governance: proposals of the governors (membership, auditors, agreements), their approval, execution and
cancellation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from api import models as m
from api.auth import Principal, Role
from api.errors import ApiError
from api.ledger.core import (
    Finish,
    Listed,
    ListPage,
    b32,
    journaled,
    status_name,
    to_hex,
)
from api.ledger.exchanges import ExchangeService, agreement_public
from node.audit import queries as audit_queries
from node.audit.queries import ListFilter
from node.chain import LedgerRevertError
from node.types import (
    GovernanceAction,
    Proposal,
    decode_code,
    encode_code,
)
from verifier.eth import to_checksum_address

if TYPE_CHECKING:
    from node.audit.service import AuditContext

#: Each governance action's arguments (name, ABI type), in the order of its proposal's ``data`` (see
#: ``GovernanceAction`` in contracts/src/types/Ledger.sol). Names are the fields of ``ProposalParameters``.
_ACTION_ARGS: dict[GovernanceAction, tuple[tuple[str, str], ...]] = {
    GovernanceAction.ADMIT_DEPARTMENT: (
        ("code", "bytes32"), ("name", "string"), ("signer", "address"), ("encryption_key", "bytes32"),
        ("contract_signer", "bool"),
    ),
    GovernanceAction.SUSPEND_DEPARTMENT: (("department_id", "uint32"),),
    GovernanceAction.REINSTATE_DEPARTMENT: (("department_id", "uint32"),),
    GovernanceAction.REKEY_DEPARTMENT: (
        ("department_id", "uint32"), ("signer", "address"), ("encryption_key", "bytes32"),
    ),
    GovernanceAction.GRANT_AUDITOR: (("account", "address"),),
    GovernanceAction.REVOKE_AUDITOR: (("account", "address"),),
    GovernanceAction.ADD_GOVERNOR: (("account", "address"),),
    GovernanceAction.REMOVE_GOVERNOR: (("account", "address"),),
    GovernanceAction.SET_THRESHOLD: (("threshold", "uint8"),),
    GovernanceAction.SUSPEND_AGREEMENT: (("agreement_id", "uint64"),),
    GovernanceAction.REVOKE_AGREEMENT: (("agreement_id", "uint64"),),
    GovernanceAction.REINSTATE_AGREEMENT: (("agreement_id", "uint64"),),
}  # fmt: skip


def _decode_parameters(action: GovernanceAction, data: bytes) -> m.ProposalParameters | None:
    """A proposal's arguments as typed fields; None when ``data`` does not decode as the action's."""
    args = _ACTION_ARGS.get(action)
    if args is None:
        return None
    try:
        values = abi_decode([t for _, t in args], data)
    except Exception:  # eth-abi raises several decoding error types for malformed data
        return None
    fields: dict[str, Any] = {}
    for (name, abi_type), value in zip(args, values, strict=True):
        if name == "code":
            fields[name] = decode_code(value)
        elif abi_type == "address":
            fields[name] = to_checksum_address(value)
        elif abi_type == "bytes32":
            fields[name] = to_hex(value)
        else:
            fields[name] = value
    return m.ProposalParameters(**fields)


_Known = TypeVar("_Known", m.DepartmentPublic, m.AgreementPublic)


def _proposal_public(
    p: Proposal,
    parameters: m.ProposalParameters | None,
    *,
    department: m.DepartmentPublic | None,
    agreement: m.AgreementPublic | None,
    now: int,
    threshold: int,
    approved_by_you: bool | None = None,
) -> m.ProposalPublic:
    """A proposal's public form: open until executed, cancelled or past ``expires_at`` at ``now`` (the
    chain's clock)."""
    if p.executed:
        status = m.ProposalStatus.EXECUTED
    elif p.cancelled:
        status = m.ProposalStatus.CANCELLED
    else:
        status = m.ProposalStatus.OPEN if now < p.expires_at else m.ProposalStatus.EXPIRED
    return m.ProposalPublic(
        id=p.id, action=status_name(p.action), proposer=p.proposer, approvals=p.approvals,
        threshold=threshold, executed=p.executed, expires_at=p.expires_at, status=status, data=to_hex(p.data),
        parameters=parameters, department=department, agreement=agreement, approved_by_you=approved_by_you,
    )  # fmt: skip


class GovernanceService(ExchangeService):
    """Governance proposals."""

    # --- governance ---------------------------------------------------------------------------------------

    def _governor_address(self, viewer: Principal | None) -> str | None:
        """The address of ``viewer`` when it is a governor whose key this service holds (one it can approve
        with); None otherwise."""
        if viewer is None or viewer.role is not Role.GOVERNOR or viewer.governor is None:
            return None
        name = self.custody.governors.get(viewer.governor)
        return None if name is None else self.custody.keystore.address(name)

    def _approved_by(self, address: str | None, proposal_id: int) -> bool | None:
        """Whether the approval of ``address`` stands on the proposal, by the contract's own ``hasApproved``
        (what :meth:`approve_proposal` refuses a second approval by); None without an address."""
        return None if address is None else bool(self.client.call("hasApproved", proposal_id, address))

    def proposal(self, proposal_id: int, *, viewer: Principal | None = None) -> m.ProposalPublic:
        """One proposal as the chain holds it now, with its decoded arguments and the department or agreement
        it concerns; for a governor ``viewer``, whether its approval stands on it.

        Raises:
            LedgerRevertError: GovernanceUnknownProposal for an id never created.
        """
        p = Proposal.read(self.client, proposal_id)
        parameters = _decode_parameters(p.action, p.data)
        department = agreement = None
        if parameters is not None and parameters.department_id is not None:
            department = self._known(self.department, parameters.department_id)
        if parameters is not None and parameters.agreement_id is not None:
            agreement = self._known(self.agreement, parameters.agreement_id)
        return _proposal_public(
            p, parameters, department=department, agreement=agreement, now=self._chain_time(),
            threshold=int(self.client.call("threshold")),
            approved_by_you=self._approved_by(self._governor_address(viewer), proposal_id),
        )  # fmt: skip

    @staticmethod
    def _known(read: Callable[[int], _Known], ident: int) -> _Known | None:
        """The record, or None when the chain has no such id (a proposal may name one that never existed)."""
        try:
            return read(ident)
        except LedgerRevertError:
            return None
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def proposals(
        self,
        *,
        index: AuditContext,
        page: ListPage,
        status: m.ProposalStatus | None = None,
        viewer: Principal | None = None,
    ) -> Listed[m.ProposalPublic]:
        """Proposals newest first, one page read from the audit index (:func:`node.audit.queries.proposals`),
        optionally only those in ``status``: each as :meth:`proposal` answers it (for ``viewer``), with the
        department or agreement it concerns as the index holds them, open or expired by the chain's clock now.

        Raises:
            ApiError: VALIDATION_ERROR for a malformed cursor; INDEX_BEHIND.
        """
        now = self._chain_time()
        governor = self._governor_address(viewer)

        def public(page: list[tuple[Proposal, frozenset[str]]]) -> list[m.ProposalPublic]:
            rows = [p for p, _ in page]
            decoded = [_decode_parameters(p.action, p.data) for p in rows]
            # Each department once a page, however many proposals name it (its key custody is looked up too).
            departments = {
                d.id: self._department_public(d)
                for d in audit_queries.department_records(
                    index.engine,
                    [d.department_id for d in decoded if d is not None and d.department_id is not None],
                ).values()
            }
            agreements = {
                a.id: agreement_public(a)
                for a in audit_queries.agreements_by_id(
                    index.engine,
                    [d.agreement_id for d in decoded if d is not None and d.agreement_id is not None],
                ).values()
            }
            # The deployment's ThresholdChanged is in the index's first block; an index that holds proposals
            # holds it, and the chain answers for one that does not (the count of a list, not of its rows).
            threshold = audit_queries.threshold(index.engine)
            if threshold is None and rows:
                threshold = int(self.client.call("threshold"))
            return [
                _proposal_public(
                    p, parameters,
                    department=None if parameters is None or parameters.department_id is None
                    else departments.get(parameters.department_id),
                    agreement=None if parameters is None or parameters.agreement_id is None
                    else agreements.get(parameters.agreement_id),
                    now=now, threshold=threshold or 0,
                    # Read in the index with the approvals, not from the chain per proposal.
                    approved_by_you=None if governor is None else governor in approvers,
                )
                for (p, approvers), parameters in zip(page, decoded, strict=True)
            ]  # fmt: skip

        return self._indexed(
            audit_queries.proposal_approvals, public, index=index, flt=ListFilter(), page=page,
            keep=None if status is None else (lambda p: p.status is status),
        )  # fmt: skip

    @journaled
    def propose(self, *, principal: Principal, body: m.ProposalCreate) -> m.Written[m.ProposalPublic]:
        account = self.governor_account(principal)
        action = GovernanceAction[body.action.upper()]
        if isinstance(body, m.AdmitDepartment):
            values: list[Any] = [encode_code(body.code), body.name, to_checksum_address(body.signer),
                                 b32(body.encryption_key), body.contract_signer]  # fmt: skip
        elif isinstance(body, m.DepartmentAction):
            self.department(body.department_id)
            values = [body.department_id]
        elif isinstance(body, m.AuditorAction):
            values = [to_checksum_address(body.account)]
        else:
            self.agreement(body.agreement_id)
            values = [body.agreement_id]
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(
                account, "propose", (int(action), abi_encode([t for _, t in _ACTION_ARGS[action]], values)),
                Finish("proposal", event="ProposalCreated", arg="proposalId"), principal,
            ),
        )  # fmt: skip

    @journaled
    def approve_proposal(self, *, principal: Principal, proposal_id: int) -> m.Written[m.ProposalPublic]:
        account = self.governor_account(principal)
        current = self.proposal(proposal_id)
        if current.executed:
            raise ApiError("PROPOSAL_EXECUTED", f"proposal {proposal_id} already took effect")
        if self.client.call("hasApproved", proposal_id, account.address):
            raise ApiError(
                "ALREADY_APPROVED", f"governor {principal.governor} already approved {proposal_id}"
            )
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(account, "approve", (proposal_id,), Finish("proposal", proposal_id), principal),
        )

    def execute_proposal(self, *, principal: Principal, proposal_id: int) -> m.Written[m.ProposalPublic]:
        """Carry out a proposal whose standing approvals reach the threshold but did not take effect when the
        last one came (the threshold was lowered since, or an approving governor's term ended and began
        again). The contract lets anyone execute; through the API a governor's key sends it."""
        account = self.governor_account(principal)
        if self.proposal(proposal_id).executed:
            raise ApiError("PROPOSAL_EXECUTED", f"proposal {proposal_id} already took effect")
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(account, "execute", (proposal_id,), Finish("proposal", proposal_id), principal),
        )

    def cancel_proposal(self, *, principal: Principal, proposal_id: int) -> m.Written[m.ProposalPublic]:
        """Withdraw a proposal: only its proposer, while still a governor, and only before it took effect."""
        account = self.governor_account(principal)
        if self.proposal(proposal_id).executed:
            raise ApiError("PROPOSAL_EXECUTED", f"proposal {proposal_id} already took effect")
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(account, "cancel", (proposal_id,), Finish("proposal", proposal_id), principal),
        )
