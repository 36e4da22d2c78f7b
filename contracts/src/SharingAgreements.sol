// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ISharingAgreements} from "./interfaces/ISharingAgreements.sol";
import {DataCatalog} from "./DataCatalog.sol";
import {SharingTermsHash} from "./libraries/SharingTermsHash.sol";
import {Utf8} from "./libraries/Utf8.sol";
import {
    AccessRequest,
    Agreement,
    AgreementStatus,
    Department,
    DepartmentStatus,
    GovernanceAction,
    Grant,
    RequestStatus,
    Resource,
    ShareType,
    SharingTerms
} from "./types/Ledger.sol";

/// @title Requests, two-party signed sharing agreements and access grants
abstract contract SharingAgreements is DataCatalog, EIP712, ISharingAgreements {
    uint64 private _requestCount;
    uint64 private _agreementCount;
    uint64 private _grantCount;

    mapping(uint64 requestId => AccessRequest) private _requests;
    mapping(uint64 agreementId => Agreement) private _agreements;
    mapping(uint64 grantId => Grant) private _grants;
    /// @dev Requests approved on arrival because their resource was unconditionally shared: the approval stands
    /// only while it still is.
    mapping(uint64 requestId => bool) private _approvedOnArrival;
    /// @dev Agreements whose suspension governance imposed: only governance lifts it.
    mapping(uint64 agreementId => bool) private _heldByGovernance;

    // ---------------------------------------------------------------- requests

    /// @inheritdoc ISharingAgreements
    function requestAccess(
        uint64 resourceId,
        string calldata purpose,
        bytes32 scopeHash,
        bytes32 termsHash,
        uint64 validFrom,
        uint64 validUntil
    ) external returns (uint64 requestId) {
        uint32 consumer = _callerDepartment();
        Resource storage r = _knownResource(resourceId);
        if (r.shareType == ShareType.NotShared) revert RequestResourceNotShared(resourceId);
        uint32 provider = r.owner;
        if (provider == consumer) revert RequestOwnResource(resourceId);
        _requireActive(provider);
        // Not UTF-8, the purpose its AccessRequested log carries would decode in no reader of the logs.
        if (bytes(purpose).length == 0 || !Utf8.isValid(bytes(purpose))) revert RequestPurposeRequired();
        if (validFrom >= validUntil || validUntil <= block.timestamp) revert RequestInvalidPeriod(validFrom, validUntil);

        bool automatic = r.shareType == ShareType.Unconditional;
        uint64 now_ = uint64(block.timestamp);
        requestId = ++_requestCount;
        _requests[requestId] = AccessRequest({
            resourceId: resourceId,
            consumer: consumer,
            provider: provider,
            status: automatic ? RequestStatus.Approved : RequestStatus.Pending,
            requestedAt: now_,
            decidedAt: automatic ? now_ : 0,
            reasonCode: 0,
            validFrom: validFrom,
            validUntil: validUntil,
            purposeHash: keccak256(bytes(purpose)),
            scopeHash: scopeHash,
            termsHash: termsHash
        });
        emit AccessRequested(requestId, resourceId, consumer, provider, purpose, scopeHash, termsHash, validFrom, validUntil);
        if (automatic) {
            _approvedOnArrival[requestId] = true;
            emit RequestApproved(requestId, provider, true);
        }
    }

    /// @inheritdoc ISharingAgreements
    function approveRequest(uint64 requestId) external {
        AccessRequest storage q = _pendingForCaller(requestId);
        _requireShared(q.resourceId);
        q.status = RequestStatus.Approved;
        q.decidedAt = uint64(block.timestamp);
        delete _approvedOnArrival[requestId];
        emit RequestApproved(requestId, q.provider, false);
    }

    /// @inheritdoc ISharingAgreements
    function rejectRequest(uint64 requestId, uint16 reasonCode) external {
        AccessRequest storage q = _pendingForCaller(requestId);
        if (reasonCode == 0) revert RequestReasonRequired();
        q.status = RequestStatus.Rejected;
        q.decidedAt = uint64(block.timestamp);
        q.reasonCode = reasonCode;
        delete _approvedOnArrival[requestId];
        emit RequestRejected(requestId, q.provider, reasonCode);
    }

    /// @inheritdoc ISharingAgreements
    function withdrawRequest(uint64 requestId) external {
        AccessRequest storage q = _knownRequest(requestId);
        uint32 caller = _callerDepartment();
        if (caller != q.consumer && caller != q.provider) revert SharingNotAParty(caller, q.consumer);
        RequestStatus status = q.status;
        if (status != RequestStatus.Pending && status != RequestStatus.Approved) {
            revert RequestStatusMismatch(requestId, status, RequestStatus.Approved);
        }
        q.status = RequestStatus.Withdrawn;
        delete _approvedOnArrival[requestId];
        emit RequestWithdrawn(requestId, caller);
    }

    function _pendingForCaller(uint64 requestId) private view returns (AccessRequest storage q) {
        q = _knownRequest(requestId);
        _requireCallerIs(q.provider);
        RequestStatus status = _status(requestId, q);
        if (status != RequestStatus.Pending) revert RequestStatusMismatch(requestId, status, RequestStatus.Pending);
    }

    /// @dev The status the rules apply: an approval on arrival reads as pending once the resource is no longer
    /// unconditionally shared, so that the provider decides.
    function _status(uint64 requestId, AccessRequest storage q) private view returns (RequestStatus status) {
        status = q.status;
        if (
            status == RequestStatus.Approved && _approvedOnArrival[requestId]
                && _knownResource(q.resourceId).shareType != ShareType.Unconditional
        ) status = RequestStatus.Pending;
    }

    function _requireShared(uint64 resourceId) private view {
        if (_knownResource(resourceId).shareType == ShareType.NotShared) revert RequestResourceNotShared(resourceId);
    }

    // ---------------------------------------------------------------- agreements

    /// @inheritdoc ISharingAgreements
    function concludeAgreement(
        SharingTerms calldata terms,
        bytes calldata providerSignature,
        bytes calldata consumerSignature
    ) external returns (uint64 agreementId) {
        AccessRequest storage q = _knownRequest(terms.requestId);
        RequestStatus status = _status(terms.requestId, q);
        if (status != RequestStatus.Approved) {
            revert RequestStatusMismatch(terms.requestId, status, RequestStatus.Approved);
        }
        if (
            terms.resourceId != q.resourceId || terms.provider != q.provider || terms.consumer != q.consumer
                || terms.purposeHash != q.purposeHash || terms.scopeHash != q.scopeHash
                || terms.termsHash != q.termsHash || terms.validFrom != q.validFrom || terms.validUntil != q.validUntil
        ) revert AgreementTermsMismatch(terms.requestId);
        Resource storage r = _knownResource(terms.resourceId);
        if (r.shareType == ShareType.NotShared) revert RequestResourceNotShared(terms.resourceId);
        if (
            terms.metadataHash != r.metadataHash || terms.schemaHash != r.schemaHash
                || terms.sensitivity != r.sensitivity
        ) revert AgreementCatalogChanged(terms.resourceId);
        // An agreement that could never be granted under is not concluded.
        if (block.timestamp >= terms.validUntil) revert RequestInvalidPeriod(terms.validFrom, terms.validUntil);
        if (block.timestamp > terms.deadline) revert AgreementSignatureExpired(terms.deadline);

        bytes32 digest = _hashTypedDataV4(SharingTermsHash.hash(terms));
        _requireSigned(terms.provider, terms.providerKeyEpoch, digest, providerSignature);
        _requireSigned(terms.consumer, terms.consumerKeyEpoch, digest, consumerSignature);

        // Concluding consumes the request, which is what makes both signatures single-use.
        q.status = RequestStatus.Concluded;
        agreementId = ++_agreementCount;
        _agreements[agreementId] = Agreement({
            requestId: terms.requestId,
            resourceId: terms.resourceId,
            provider: terms.provider,
            consumer: terms.consumer,
            status: AgreementStatus.Active,
            validFrom: terms.validFrom,
            validUntil: terms.validUntil,
            termsDigest: digest
        });
        emit AgreementConcluded(
            agreementId,
            terms.requestId,
            terms.provider,
            terms.consumer,
            terms.resourceId,
            digest,
            terms.validFrom,
            terms.validUntil,
            providerSignature,
            consumerSignature
        );
    }

    /// @dev Reverts unless department `id` is active, the terms name its current key epoch, and `signature` is its
    /// signer's over `digest`: ECDSA, or ERC-1271 for a department admitted with a contract signer.
    function _requireSigned(uint32 id, uint32 signedEpoch, bytes32 digest, bytes calldata signature) private view {
        Department storage d = _departmentRecord(id);
        if (d.status != DepartmentStatus.Active) revert DepartmentNotActive(id);
        if (d.keyEpoch != signedEpoch) revert AgreementKeyEpochMismatch(id, signedEpoch, d.keyEpoch);
        address signer = d.signer;
        bool valid;
        // The memory-signature variants: the calldata ones exist only from OpenZeppelin 5.5, whose libraries use
        // MCOPY, and the same source also builds for London-rules chains against OpenZeppelin 5.0.
        if (d.contractSigner) {
            valid = SignatureChecker.isValidSignatureNow(signer, digest, signature);
        } else {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
            valid = err == ECDSA.RecoverError.NoError && recovered == signer;
        }
        if (!valid) revert AgreementInvalidSignature(id);
    }

    /// @inheritdoc ISharingAgreements
    function suspendAgreement(uint64 agreementId) external {
        Agreement storage a = _knownAgreement(agreementId);
        _requireSignerOf(a.provider);
        _suspend(agreementId, a);
    }

    /// @inheritdoc ISharingAgreements
    function reinstateAgreement(uint64 agreementId) external {
        Agreement storage a = _knownAgreement(agreementId);
        _requireCallerIs(a.provider);
        if (a.status != AgreementStatus.Suspended) revert AgreementStatusMismatch(agreementId, a.status);
        if (_heldByGovernance[agreementId]) revert AgreementSuspendedByGovernance(agreementId);
        a.status = AgreementStatus.Active;
        emit AgreementReinstated(agreementId, msg.sender);
    }

    /// @inheritdoc ISharingAgreements
    function revokeAgreement(uint64 agreementId) external {
        Agreement storage a = _knownAgreement(agreementId);
        _requireSignerOf(a.provider);
        _revoke(agreementId, a);
    }

    /// @dev Governance suspends an agreement that is active, or one its provider suspended (taking the suspension
    /// over, so that the provider cannot lift it); revokes one not yet revoked; lifts only a suspension it holds.
    function _checkAgreementAction(GovernanceAction action, uint64 agreementId) internal view override {
        Agreement storage a = _knownAgreement(agreementId);
        bool held = _heldByGovernance[agreementId];
        bool allowed = action == GovernanceAction.ReinstateAgreement
            ? held
            : a.status == AgreementStatus.Active
                || (a.status == AgreementStatus.Suspended && (action == GovernanceAction.RevokeAgreement || !held));
        if (!allowed) revert AgreementStatusMismatch(agreementId, a.status);
    }

    function _governanceSuspendAgreement(uint64 agreementId) internal override {
        _agreements[agreementId].status = AgreementStatus.Suspended;
        _heldByGovernance[agreementId] = true;
        emit AgreementSuspended(agreementId, msg.sender);
    }

    function _governanceRevokeAgreement(uint64 agreementId) internal override {
        _revoke(agreementId, _agreements[agreementId]);
    }

    function _governanceReinstateAgreement(uint64 agreementId) internal override {
        // A revoked agreement is never held: revocation ends any suspension.
        delete _heldByGovernance[agreementId];
        _agreements[agreementId].status = AgreementStatus.Active;
        emit AgreementReinstated(agreementId, msg.sender);
    }

    function _suspend(uint64 agreementId, Agreement storage a) private {
        if (a.status != AgreementStatus.Active) revert AgreementStatusMismatch(agreementId, a.status);
        a.status = AgreementStatus.Suspended;
        emit AgreementSuspended(agreementId, msg.sender);
    }

    function _revoke(uint64 agreementId, Agreement storage a) private {
        if (a.status != AgreementStatus.Active && a.status != AgreementStatus.Suspended) {
            revert AgreementStatusMismatch(agreementId, a.status);
        }
        a.status = AgreementStatus.Revoked;
        delete _heldByGovernance[agreementId];
        emit AgreementRevoked(agreementId, msg.sender);
    }

    // ---------------------------------------------------------------- grants

    /// @inheritdoc ISharingAgreements
    function issueGrant(uint64 agreementId, uint64 expiresAt) external returns (uint64 grantId) {
        Agreement storage a = _knownAgreement(agreementId);
        _requireCallerIs(a.provider);
        _requireActive(a.consumer);
        if (a.status != AgreementStatus.Active) revert AgreementStatusMismatch(agreementId, a.status);
        if (block.timestamp < a.validFrom || block.timestamp >= a.validUntil) {
            revert AgreementOutsideValidity(agreementId, a.validFrom, a.validUntil);
        }
        _requireShared(a.resourceId);
        if (expiresAt <= block.timestamp || expiresAt > a.validUntil) revert GrantInvalidExpiry(expiresAt, a.validUntil);
        grantId = ++_grantCount;
        _grants[grantId] =
            Grant({agreementId: agreementId, provider: a.provider, consumer: a.consumer, expiresAt: expiresAt, revoked: false});
        emit GrantIssued(grantId, agreementId, a.consumer, a.provider, expiresAt);
    }

    /// @inheritdoc ISharingAgreements
    function revokeGrant(uint64 grantId) external {
        Grant storage g = _knownGrant(grantId);
        _requireSignerOf(g.provider);
        if (g.revoked || _agreements[g.agreementId].status == AgreementStatus.Revoked) revert GrantAlreadyRevoked(grantId);
        g.revoked = true;
        emit GrantRevoked(grantId, g.provider);
    }

    /// @dev The grant, if deliveries may be made under it now: not revoked, not expired, agreement active, resource
    /// still shared.
    function _usableGrant(uint64 grantId) internal view returns (Grant memory g) {
        g = _grants[grantId];
        if (g.agreementId == 0) revert GrantUnknown(grantId);
        if (g.revoked) revert GrantAlreadyRevoked(grantId);
        if (block.timestamp >= g.expiresAt) revert GrantExpired(grantId, g.expiresAt);
        Agreement storage a = _agreements[g.agreementId];
        AgreementStatus status = a.status;
        if (status != AgreementStatus.Active) revert AgreementStatusMismatch(g.agreementId, status);
        _requireShared(a.resourceId);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISharingAgreements
    function termsDigest(SharingTerms calldata terms) external view returns (bytes32) {
        return _hashTypedDataV4(SharingTermsHash.hash(terms));
    }

    /// @inheritdoc ISharingAgreements
    function request(uint64 requestId) external view returns (AccessRequest memory q) {
        AccessRequest storage stored = _knownRequest(requestId);
        q = stored;
        q.status = _status(requestId, stored);
    }

    /// @inheritdoc ISharingAgreements
    function agreement(uint64 agreementId) external view returns (Agreement memory) {
        return _knownAgreement(agreementId);
    }

    /// @inheritdoc ISharingAgreements
    function grant(uint64 grantId) external view returns (Grant memory g) {
        g = _knownGrant(grantId);
        if (_agreements[g.agreementId].status == AgreementStatus.Revoked) g.revoked = true;
    }

    /// @inheritdoc ISharingAgreements
    function counts() external view returns (uint64 requests, uint64 agreements, uint64 grants) {
        return (_requestCount, _agreementCount, _grantCount);
    }

    function _knownRequest(uint64 requestId) private view returns (AccessRequest storage q) {
        q = _requests[requestId];
        if (q.status == RequestStatus.None) revert RequestUnknown(requestId);
    }

    function _knownAgreement(uint64 agreementId) private view returns (Agreement storage a) {
        a = _agreements[agreementId];
        if (a.status == AgreementStatus.None) revert AgreementUnknown(agreementId);
    }

    function _knownGrant(uint64 grantId) private view returns (Grant storage g) {
        g = _grants[grantId];
        if (g.agreementId == 0) revert GrantUnknown(grantId);
    }
}
