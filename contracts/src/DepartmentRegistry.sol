// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IDepartmentRegistry} from "./interfaces/IDepartmentRegistry.sol";
import {Department, DepartmentStatus, GovernanceAction, Proposal} from "./types/Ledger.sol";

/// @title Department membership under M-of-N governor approval
/// @dev Roles are AccessControl roles, but only proposals change them: the public role-admin functions revert,
/// and no account holds the admin role.
abstract contract DepartmentRegistry is AccessControl, IDepartmentRegistry {
    bytes32 public constant GOVERNOR_ROLE = keccak256("dxl.role.governor");
    bytes32 public constant DEPARTMENT_ROLE = keccak256("dxl.role.department");
    bytes32 public constant AUDITOR_ROLE = keccak256("dxl.role.auditor");

    /// @notice How long a proposal collects approvals before it lapses.
    uint64 public constant PROPOSAL_TTL = 7 days;

    uint8 private _threshold;
    uint32 private _departmentCount;
    uint256 private _governorCount;
    uint256 private _proposalCount;

    mapping(uint32 departmentId => Department) private _departments;
    mapping(address signer => uint32 departmentId) private _departmentOf;
    mapping(bytes32 code => uint32 departmentId) private _departmentByCode;
    mapping(uint256 proposalId => Proposal) private _proposals;
    /// @dev A governor's term: 1 at its first appointment, one more at each re-appointment. An approval records
    /// the approver's term, and counts only while that term lasts.
    mapping(address governor => uint32 term) private _governorTerm;
    mapping(uint256 proposalId => mapping(address governor => uint32 term)) private _approvalTerm;

    modifier onlyGovernor() {
        if (!hasRole(GOVERNOR_ROLE, msg.sender)) revert GovernanceUnauthorized(msg.sender);
        _;
    }

    constructor(address[] memory governors, uint8 threshold_) {
        for (uint256 i = 0; i < governors.length; ++i) {
            if (governors[i] == address(0) || !_grantRole(GOVERNOR_ROLE, governors[i])) {
                revert GovernanceMembershipUnchanged(governors[i]);
            }
            _governorTerm[governors[i]] = 1;
        }
        _governorCount = governors.length;
        _setThreshold(threshold_);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IDepartmentRegistry
    function propose(uint8 action, bytes calldata data) external onlyGovernor returns (uint256 proposalId) {
        if (action > uint8(type(GovernanceAction).max)) revert GovernanceUnknownAction(action);
        // An action that cannot take effect now is refused now rather than left pending for a week.
        _checkAction(GovernanceAction(action), data);
        proposalId = ++_proposalCount;
        uint64 expiresAt = uint64(block.timestamp) + PROPOSAL_TTL;
        Proposal storage p = _proposals[proposalId];
        p.action = GovernanceAction(action);
        p.proposer = msg.sender;
        p.expiresAt = expiresAt;
        p.data = data;
        emit ProposalCreated(proposalId, msg.sender, GovernanceAction(action), data, expiresAt);
        _approve(proposalId, p);
    }

    /// @inheritdoc IDepartmentRegistry
    function approve(uint256 proposalId) external onlyGovernor {
        Proposal storage p = _pending(proposalId);
        if (_approvalTerm[proposalId][msg.sender] == _governorTerm[msg.sender]) {
            revert GovernanceAlreadyApproved(proposalId, msg.sender);
        }
        _approve(proposalId, p);
    }

    /// @inheritdoc IDepartmentRegistry
    function execute(uint256 proposalId) external {
        Proposal storage p = _pending(proposalId);
        uint8 approvals = _standingApprovals(proposalId, p);
        if (approvals < _threshold) revert GovernanceBelowThreshold(proposalId, approvals, _threshold);
        _executeProposal(proposalId, p);
    }

    /// @inheritdoc IDepartmentRegistry
    function cancel(uint256 proposalId) external {
        Proposal storage p = _proposals[proposalId];
        if (p.proposer == address(0)) revert GovernanceUnknownProposal(proposalId);
        if (p.proposer != msg.sender || !hasRole(GOVERNOR_ROLE, msg.sender)) {
            revert GovernanceNotProposer(proposalId, msg.sender);
        }
        if (p.executed) revert GovernanceProposalExecuted(proposalId);
        if (p.cancelled) revert GovernanceProposalCancelled(proposalId);
        p.cancelled = true;
        emit ProposalCancelled(proposalId, msg.sender);
    }

    /// @dev A proposal that may still take effect: exists, neither executed nor cancelled, not expired.
    function _pending(uint256 proposalId) private view returns (Proposal storage p) {
        p = _proposals[proposalId];
        if (p.proposer == address(0)) revert GovernanceUnknownProposal(proposalId);
        if (p.executed) revert GovernanceProposalExecuted(proposalId);
        if (p.cancelled) revert GovernanceProposalCancelled(proposalId);
        if (block.timestamp > p.expiresAt) revert GovernanceProposalExpired(proposalId, p.expiresAt);
    }

    function _approve(uint256 proposalId, Proposal storage p) private {
        // A re-appointed governor approving again replaces its old approval; it is listed once.
        if (_approvalTerm[proposalId][msg.sender] == 0) p.approvers.push(msg.sender);
        _approvalTerm[proposalId][msg.sender] = _governorTerm[msg.sender];
        uint8 approvals = _standingApprovals(proposalId, p);
        emit ProposalApproved(proposalId, msg.sender, approvals);
        if (approvals >= _threshold) _executeProposal(proposalId, p);
    }

    function _executeProposal(uint256 proposalId, Proposal storage p) private {
        p.executed = true;
        emit ProposalExecuted(proposalId);
        _execute(p.action, p.data);
    }

    /// @dev Approvals given by accounts that are governors now, during their current term: a removed governor's
    /// approvals stop counting and do not count again if it is re-appointed, so the M-of-N guarantee holds over
    /// the current governor set.
    function _standingApprovals(uint256 proposalId, Proposal storage p) private view returns (uint8 n) {
        address[] storage approvers = p.approvers;
        for (uint256 i = 0; i < approvers.length; ++i) {
            address a = approvers[i];
            if (hasRole(GOVERNOR_ROLE, a) && _approvalTerm[proposalId][a] == _governorTerm[a]) ++n;
        }
    }

    /// @dev Reverts with the error `action` would raise if it took effect now. Run when proposed, so that an
    /// action that cannot take effect is never left pending, and again when executed, against the state of that
    /// moment: other proposals may have executed in between. `_execute` relies on it and checks nothing more.
    function _checkAction(GovernanceAction action, bytes memory data) private view {
        if (action == GovernanceAction.AdmitDepartment) {
            (bytes32 code, string memory name, address signer, bytes32 encryptionKey,) =
                abi.decode(data, (bytes32, string, address, bytes32, bool));
            _checkAdmission(code, name, signer, encryptionKey);
        } else if (action == GovernanceAction.SuspendDepartment || action == GovernanceAction.ReinstateDepartment) {
            uint32 id = abi.decode(data, (uint32));
            DepartmentStatus from = action == GovernanceAction.SuspendDepartment
                ? DepartmentStatus.Active
                : DepartmentStatus.Suspended;
            if (_known(id).status != from) revert DepartmentStatusUnchanged(id);
        } else if (action == GovernanceAction.RekeyDepartment) {
            (uint32 id, address signer, bytes32 encryptionKey) = abi.decode(data, (uint32, address, bytes32));
            Department storage d = _known(id);
            if (signer == address(0)) revert DepartmentInvalidField("signer");
            if (encryptionKey == bytes32(0)) revert DepartmentInvalidField("encryptionKey");
            if (signer != d.signer && _departmentOf[signer] != 0) revert DepartmentAlreadyRegistered(d.code, signer);
        } else if (action == GovernanceAction.SetThreshold) {
            _checkThreshold(abi.decode(data, (uint8)), _governorCount);
        } else if (
            action == GovernanceAction.SuspendAgreement || action == GovernanceAction.RevokeAgreement
                || action == GovernanceAction.ReinstateAgreement
        ) {
            _checkAgreementAction(action, abi.decode(data, (uint64)));
        } else {
            // GrantAuditor, RevokeAuditor, AddGovernor, RemoveGovernor: a role given to an account without it
            // (never the zero address), or taken from an account with it.
            address account = abi.decode(data, (address));
            bool adding = action == GovernanceAction.GrantAuditor || action == GovernanceAction.AddGovernor;
            bytes32 role = action == GovernanceAction.GrantAuditor || action == GovernanceAction.RevokeAuditor
                ? AUDITOR_ROLE
                : GOVERNOR_ROLE;
            if (hasRole(role, account) == adding || (adding && account == address(0))) {
                revert GovernanceMembershipUnchanged(account);
            }
            if (action == GovernanceAction.RemoveGovernor) _checkThreshold(_threshold, _governorCount - 1);
        }
    }

    /// @dev The effects of an action `_checkAction` let through in this same transaction.
    function _execute(GovernanceAction action, bytes memory data) private {
        _checkAction(action, data);
        if (action == GovernanceAction.AdmitDepartment) {
            (bytes32 code, string memory name, address signer, bytes32 encryptionKey, bool contractSigner) =
                abi.decode(data, (bytes32, string, address, bytes32, bool));
            _admit(code, name, signer, encryptionKey, contractSigner);
        } else if (action == GovernanceAction.SuspendDepartment) {
            uint32 id = abi.decode(data, (uint32));
            Department storage d = _departments[id];
            d.status = DepartmentStatus.Suspended;
            _revokeRole(DEPARTMENT_ROLE, d.signer);
            emit DepartmentSuspended(id);
        } else if (action == GovernanceAction.ReinstateDepartment) {
            uint32 id = abi.decode(data, (uint32));
            Department storage d = _departments[id];
            d.status = DepartmentStatus.Active;
            _grantRole(DEPARTMENT_ROLE, d.signer);
            emit DepartmentReinstated(id);
        } else if (action == GovernanceAction.RekeyDepartment) {
            (uint32 id, address signer, bytes32 encryptionKey) = abi.decode(data, (uint32, address, bytes32));
            _rekey(id, signer, encryptionKey);
        } else if (action == GovernanceAction.GrantAuditor) {
            _grantRole(AUDITOR_ROLE, abi.decode(data, (address)));
        } else if (action == GovernanceAction.RevokeAuditor) {
            _revokeRole(AUDITOR_ROLE, abi.decode(data, (address)));
        } else if (action == GovernanceAction.AddGovernor) {
            address account = abi.decode(data, (address));
            _grantRole(GOVERNOR_ROLE, account);
            ++_governorTerm[account];
            ++_governorCount;
        } else if (action == GovernanceAction.RemoveGovernor) {
            _revokeRole(GOVERNOR_ROLE, abi.decode(data, (address)));
            --_governorCount;
        } else if (action == GovernanceAction.SetThreshold) {
            _setThreshold(abi.decode(data, (uint8)));
        } else if (action == GovernanceAction.SuspendAgreement) {
            _governanceSuspendAgreement(abi.decode(data, (uint64)));
        } else if (action == GovernanceAction.RevokeAgreement) {
            _governanceRevokeAgreement(abi.decode(data, (uint64)));
        } else if (action == GovernanceAction.ReinstateAgreement) {
            _governanceReinstateAgreement(abi.decode(data, (uint64)));
        } else {
            // Unreachable while every action has its branch above; a new action without one must not fall
            // through to another action's effect.
            revert GovernanceUnknownAction(uint8(action));
        }
    }

    function _setThreshold(uint8 threshold_) private {
        _checkThreshold(threshold_, _governorCount);
        _threshold = threshold_;
        emit ThresholdChanged(threshold_);
    }

    function _checkThreshold(uint8 threshold_, uint256 governorCount_) private pure {
        if (threshold_ == 0 || threshold_ > governorCount_) revert GovernanceInvalidThreshold(threshold_, governorCount_);
    }

    function _checkAdmission(bytes32 code, string memory name, address signer, bytes32 encryptionKey)
        private
        view
    {
        if (code == bytes32(0)) revert DepartmentInvalidField("code");
        if (bytes(name).length == 0) revert DepartmentInvalidField("name");
        if (signer == address(0)) revert DepartmentInvalidField("signer");
        if (encryptionKey == bytes32(0)) revert DepartmentInvalidField("encryptionKey");
        if (_departmentByCode[code] != 0 || _departmentOf[signer] != 0) revert DepartmentAlreadyRegistered(code, signer);
    }

    function _admit(bytes32 code, string memory name, address signer, bytes32 encryptionKey, bool contractSigner)
        private
    {
        uint32 id = ++_departmentCount;
        _departments[id] = Department({
            signer: signer,
            status: DepartmentStatus.Active,
            code: code,
            encryptionKey: encryptionKey,
            name: name,
            keyEpoch: 0,
            contractSigner: contractSigner
        });
        _departmentOf[signer] = id;
        _departmentByCode[code] = id;
        _grantRole(DEPARTMENT_ROLE, signer);
        emit DepartmentAdmitted(id, code, signer, encryptionKey, name, contractSigner);
    }

    function _rekey(uint32 id, address signer, bytes32 encryptionKey) private {
        Department storage d = _departments[id];
        address previous = d.signer;
        d.encryptionKey = encryptionKey;
        // The same signer rotates only the encryption key: its role and its signatures stay as they are.
        if (signer != previous) {
            delete _departmentOf[previous];
            _revokeRole(DEPARTMENT_ROLE, previous);
            d.signer = signer;
            ++d.keyEpoch;
            _departmentOf[signer] = id;
            // A suspended department's new signer gets the role on reinstatement, not before.
            if (d.status == DepartmentStatus.Active) _grantRole(DEPARTMENT_ROLE, signer);
        }
        emit DepartmentRekeyed(id, previous, signer, encryptionKey);
    }

    // ---------------------------------------------------------------- role changes go through proposals only

    /// @dev Always reverts: roles change only through executed proposals.
    function grantRole(bytes32, address) public pure override {
        revert GovernanceRoleManagedByProposals();
    }

    /// @dev Always reverts: roles change only through executed proposals.
    function revokeRole(bytes32, address) public pure override {
        revert GovernanceRoleManagedByProposals();
    }

    /// @dev Always reverts: a governor leaving would silently change the M-of-N guarantee.
    function renounceRole(bytes32, address) public pure override {
        revert GovernanceRoleManagedByProposals();
    }

    // ---------------------------------------------------------------- hooks and helpers for the other modules

    /// @dev Reverts unless governance may take `action` (an agreement action) on `agreementId` now.
    function _checkAgreementAction(GovernanceAction action, uint64 agreementId) internal view virtual;

    /// @dev The hooks below run after {_checkAgreementAction} let the action through.
    function _governanceSuspendAgreement(uint64 agreementId) internal virtual;

    function _governanceRevokeAgreement(uint64 agreementId) internal virtual;

    function _governanceReinstateAgreement(uint64 agreementId) internal virtual;

    function _known(uint32 id) internal view returns (Department storage d) {
        d = _departments[id];
        if (d.status == DepartmentStatus.None) revert DepartmentUnknown(id);
    }

    /// @dev The active department whose signer is the caller.
    function _callerDepartment() internal view returns (uint32 id) {
        id = _departmentOf[msg.sender];
        if (id == 0) revert DepartmentUnauthorized(msg.sender);
        if (_departments[id].status != DepartmentStatus.Active) revert DepartmentNotActive(id);
    }

    /// @dev Reverts unless the caller is the current signer of active department `id`. One storage read: signer
    /// and status share a slot.
    function _requireCallerIs(uint32 id) internal view {
        Department storage d = _departments[id];
        if (d.signer != msg.sender) revert DepartmentUnauthorized(msg.sender);
        if (d.status != DepartmentStatus.Active) revert DepartmentNotActive(id);
    }

    function _requireActive(uint32 id) internal view {
        if (_departments[id].status != DepartmentStatus.Active) revert DepartmentNotActive(id);
    }

    /// @dev Reverts unless the caller is the current signer of department `id`, active or suspended: for actions
    /// that only withdraw access, which a suspended provider may still take.
    function _requireSignerOf(uint32 id) internal view {
        if (_departments[id].signer != msg.sender) revert DepartmentUnauthorized(msg.sender);
    }

    function _departmentRecord(uint32 id) internal view returns (Department storage) {
        return _departments[id];
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IDepartmentRegistry
    function proposal(uint256 proposalId)
        external
        view
        returns (GovernanceAction action, address proposer, uint8 approvals, bool executed, uint64 expiresAt,
            bytes memory data, bool cancelled)
    {
        Proposal storage p = _proposals[proposalId];
        if (p.proposer == address(0)) revert GovernanceUnknownProposal(proposalId);
        return (p.action, p.proposer, _standingApprovals(proposalId, p), p.executed, p.expiresAt, p.data,
            p.cancelled);
    }

    /// @inheritdoc IDepartmentRegistry
    function hasApproved(uint256 proposalId, address governor) external view returns (bool) {
        uint32 term = _approvalTerm[proposalId][governor];
        return term != 0 && term == _governorTerm[governor] && hasRole(GOVERNOR_ROLE, governor);
    }

    /// @inheritdoc IDepartmentRegistry
    function threshold() external view returns (uint8) {
        return _threshold;
    }

    /// @inheritdoc IDepartmentRegistry
    function governorCount() external view returns (uint256) {
        return _governorCount;
    }

    /// @inheritdoc IDepartmentRegistry
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IDepartmentRegistry
    function department(uint32 departmentId) external view returns (Department memory) {
        return _known(departmentId);
    }

    /// @inheritdoc IDepartmentRegistry
    function departmentSigner(uint32 departmentId) external view returns (address signer, DepartmentStatus status) {
        Department storage d = _known(departmentId);
        return (d.signer, d.status);
    }

    /// @inheritdoc IDepartmentRegistry
    function departmentOf(address signer) external view returns (uint32) {
        return _departmentOf[signer];
    }

    /// @inheritdoc IDepartmentRegistry
    function departmentByCode(bytes32 code) external view returns (uint32) {
        return _departmentByCode[code];
    }

    /// @inheritdoc IDepartmentRegistry
    function departmentCount() external view returns (uint32) {
        return _departmentCount;
    }
}
