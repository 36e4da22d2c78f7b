// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Department, DepartmentStatus, GovernanceAction} from "../types/Ledger.sol";

/// @title Department membership under M-of-N governor approval
/// @notice Admitting, suspending and re-keying departments, and appointing auditors, take effect only when a
/// threshold of governors approved the same proposal: no single key administers the consortium.
interface IDepartmentRegistry {
    /// @notice Thrown when the caller is not a governor.
    error GovernanceUnauthorized(address account);
    /// @notice Thrown when the deployment or a proposal would leave an unusable governor set.
    error GovernanceInvalidThreshold(uint8 threshold, uint256 governorCount);
    /// @notice Thrown when a proposal id was never created.
    error GovernanceUnknownProposal(uint256 proposalId);
    /// @notice Thrown when approving a proposal that already took effect.
    error GovernanceProposalExecuted(uint256 proposalId);
    /// @notice Thrown when approving a proposal after its approval window closed.
    error GovernanceProposalExpired(uint256 proposalId, uint64 expiredAt);
    /// @notice Thrown when a governor approves the same proposal twice.
    error GovernanceAlreadyApproved(uint256 proposalId, address governor);
    /// @notice Thrown when a role would be changed outside governance (grantRole, revokeRole, renounceRole).
    error GovernanceRoleManagedByProposals();
    /// @notice Thrown when adding a governor who already is one, or removing an account that is not.
    error GovernanceMembershipUnchanged(address account);
    /// @notice Thrown when a proposal names an action this ledger does not know.
    error GovernanceUnknownAction(uint8 action);
    /// @notice Thrown when executing a proposal whose standing approvals are below the threshold.
    error GovernanceBelowThreshold(uint256 proposalId, uint8 approvals, uint8 threshold);
    /// @notice Thrown when approving, executing or cancelling a cancelled proposal.
    error GovernanceProposalCancelled(uint256 proposalId);
    /// @notice Thrown when anyone but a proposal's proposer (still a governor) cancels it.
    error GovernanceNotProposer(uint256 proposalId, address account);

    /// @notice Thrown when a department id was never admitted.
    error DepartmentUnknown(uint32 departmentId);
    /// @notice Thrown when a department code or signing address is already taken.
    error DepartmentAlreadyRegistered(bytes32 code, address signer);
    /// @notice Thrown when a department field is empty (code, name, signer or encryption key).
    error DepartmentInvalidField(string field);
    /// @notice Thrown when the calling address is not the signing address of an admitted department.
    error DepartmentUnauthorized(address account);
    /// @notice Thrown when a suspended department acts or is acted upon.
    error DepartmentNotActive(uint32 departmentId);
    /// @notice Thrown when suspending a suspended department or reinstating an active one.
    error DepartmentStatusUnchanged(uint32 departmentId);

    /// @notice A governor proposed an action; the proposer's approval is counted.
    /// @param proposalId Sequential id of the proposal.
    /// @param proposer The governor who proposed it.
    /// @param action What the proposal does.
    /// @param data ABI-encoded arguments of the action.
    /// @param expiresAt Time after which approvals are refused.
    event ProposalCreated(
        uint256 indexed proposalId, address indexed proposer, GovernanceAction action, bytes data, uint64 expiresAt
    );
    /// @notice A governor approved a proposal.
    /// @param proposalId The proposal.
    /// @param governor The approving governor.
    /// @param approvals Approvals that count now (by current governors), this one included.
    event ProposalApproved(uint256 indexed proposalId, address indexed governor, uint8 approvals);
    /// @notice A proposal reached the threshold and its action took effect (events of the action follow).
    /// @param proposalId The proposal.
    event ProposalExecuted(uint256 indexed proposalId);
    /// @notice The proposer withdrew a pending proposal; it can no longer be approved or executed.
    /// @param proposalId The proposal.
    /// @param by The proposer.
    event ProposalCancelled(uint256 indexed proposalId, address indexed by);
    /// @notice The approval threshold changed (also emitted at deployment).
    /// @param threshold Approvals now needed.
    event ThresholdChanged(uint8 threshold);

    /// @notice A department was admitted and is active.
    /// @param departmentId Sequential id, starting at 1.
    /// @param code Stable short code (ASCII, right-padded).
    /// @param signer Address that signs the department's transactions and agreements.
    /// @param encryptionKey X25519 public key for payloads sent to the department.
    /// @param name Display name.
    /// @param contractSigner Whether the signer may be an ERC-1271 contract that validates signatures itself.
    event DepartmentAdmitted(
        uint32 indexed departmentId,
        bytes32 indexed code,
        address indexed signer,
        bytes32 encryptionKey,
        string name,
        bool contractSigner
    );
    /// @notice A department was suspended: it can neither act nor receive deliveries, and its signer loses
    /// `DEPARTMENT_ROLE` until it is reinstated.
    /// @param departmentId The department.
    event DepartmentSuspended(uint32 indexed departmentId);
    /// @notice A suspended department was reinstated.
    /// @param departmentId The department.
    event DepartmentReinstated(uint32 indexed departmentId);
    /// @notice A department's keys were replaced; signatures of the old signer are no longer accepted. When
    /// `signer == previousSigner` only the encryption key changed.
    /// @param departmentId The department.
    /// @param previousSigner The replaced signing address.
    /// @param signer The new signing address.
    /// @param encryptionKey The new X25519 public key.
    event DepartmentRekeyed(
        uint32 indexed departmentId, address indexed previousSigner, address indexed signer, bytes32 encryptionKey
    );

    /// @notice Proposes a governance action and counts the caller's approval; executes at once if the
    /// threshold is 1.
    /// @dev Requirements: caller is a governor; `action` is a {GovernanceAction} (else {GovernanceUnknownAction});
    /// the action could take effect now, else the error its execution would raise: an admission's arguments are
    /// complete and its code and signer free ({DepartmentInvalidField}, {DepartmentAlreadyRegistered}); the
    /// department or agreement exists ({DepartmentUnknown}, {AgreementUnknown}) and is in a status the action
    /// changes ({DepartmentStatusUnchanged}, {AgreementStatusMismatch}); a re-key's signer and key are set and
    /// the signer free; the account lacks the role it is given or holds the one it loses
    /// ({GovernanceMembershipUnchanged}); the threshold, or the one a removal leaves, is 1 to the number of
    /// governors ({GovernanceInvalidThreshold}). Execution checks the same again against its own moment.
    /// Emits {ProposalCreated}, {ProposalApproved} and, on reaching the threshold, {ProposalExecuted}.
    /// @param action What to do, a {GovernanceAction} value (taken as a number so that an unknown one is refused
    /// with {GovernanceUnknownAction} instead of an empty revert).
    /// @param data ABI-encoded arguments, see {GovernanceAction}.
    /// @return proposalId The new proposal's id.
    function propose(uint8 action, bytes calldata data) external returns (uint256 proposalId);

    /// @notice Approves a pending proposal; the approval that reaches the threshold executes it.
    /// @dev Requirements: caller is a governor whose approval does not count yet (a governor removed and added
    /// again approves anew: approvals from an earlier term never count); the proposal exists, is neither executed
    /// nor cancelled, and not expired. Emits {ProposalApproved} and, on reaching the threshold, {ProposalExecuted}.
    /// @param proposalId The proposal.
    function approve(uint256 proposalId) external;

    /// @notice Executes a proposal that has reached the threshold without an approval doing so (the threshold
    /// was lowered, or approvals that did not count then count now). Anyone may call it: the approvals are the
    /// authorisation.
    /// @dev Requirements: the proposal exists, is neither executed nor cancelled, not expired, and its standing
    /// approvals reach the threshold (else {GovernanceBelowThreshold}). Emits {ProposalExecuted}.
    /// @param proposalId The proposal.
    function execute(uint256 proposalId) external;

    /// @notice Withdraws a pending proposal.
    /// @dev Requirements: caller is the proposal's proposer and still a governor (else {GovernanceNotProposer});
    /// the proposal is neither executed nor cancelled. Emits {ProposalCancelled}.
    /// @param proposalId The proposal.
    function cancel(uint256 proposalId) external;

    /// @notice Returns a proposal; `approvals` counts only approvals given by current governors during their
    /// current term.
    function proposal(uint256 proposalId) external view returns (GovernanceAction action, address proposer,
        uint8 approvals, bool executed, uint64 expiresAt, bytes memory data, bool cancelled);

    /// @notice Whether `governor`'s approval of `proposalId` counts now.
    function hasApproved(uint256 proposalId, address governor) external view returns (bool);

    /// @notice Number of approvals a proposal needs.
    function threshold() external view returns (uint8);

    /// @notice Number of governors.
    function governorCount() external view returns (uint256);

    /// @notice Number of proposals created so far (ids run from 1 to this value).
    function proposalCount() external view returns (uint256);

    /// @notice Returns an admitted department.
    /// @dev Reverts with {DepartmentUnknown} for an id never admitted.
    function department(uint32 departmentId) external view returns (Department memory);

    /// @notice A department's signing address and status, from one storage slot: what another contract checks a
    /// caller against without reading the whole record.
    /// @dev Reverts with {DepartmentUnknown} for an id never admitted.
    function departmentSigner(uint32 departmentId) external view returns (address signer, DepartmentStatus status);

    /// @notice The department whose current signing address is `signer`, or 0.
    function departmentOf(address signer) external view returns (uint32);

    /// @notice The department registered under `code`, or 0.
    function departmentByCode(bytes32 code) external view returns (uint32);

    /// @notice Number of departments admitted so far (ids run from 1 to this value).
    function departmentCount() external view returns (uint32);
}
