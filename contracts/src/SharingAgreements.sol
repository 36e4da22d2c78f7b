// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ISharingAgreements} from "./interfaces/ISharingAgreements.sol";
import {DataCatalog} from "./DataCatalog.sol";
import {SharingTermsHash} from "./libraries/SharingTermsHash.sol";
import {
    AccessRequest,
    Agreement,
    AgreementStatus,
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
        if (bytes(purpose).length == 0) revert RequestPurposeRequired();
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
        if (automatic) emit RequestApproved(requestId, provider, true);
    }

    /// @inheritdoc ISharingAgreements
    function approveRequest(uint64 requestId) external {
        AccessRequest storage q = _pendingForCaller(requestId);
        q.status = RequestStatus.Approved;
        q.decidedAt = uint64(block.timestamp);
        emit RequestApproved(requestId, q.provider, false);
    }

    /// @inheritdoc ISharingAgreements
    function rejectRequest(uint64 requestId, uint16 reasonCode) external {
        AccessRequest storage q = _pendingForCaller(requestId);
        if (reasonCode == 0) revert RequestReasonRequired();
        q.status = RequestStatus.Rejected;
        q.decidedAt = uint64(block.timestamp);
        q.reasonCode = reasonCode;
        emit RequestRejected(requestId, q.provider, reasonCode);
    }

    function _pendingForCaller(uint64 requestId) private view returns (AccessRequest storage q) {
        q = _knownRequest(requestId);
        _requireCallerIs(q.provider);
        if (q.status != RequestStatus.Pending) revert RequestStatusMismatch(requestId, q.status, RequestStatus.Pending);
    }

    // ---------------------------------------------------------------- agreements

    /// @inheritdoc ISharingAgreements
    function concludeAgreement(
        SharingTerms calldata terms,
        bytes calldata providerSignature,
        bytes calldata consumerSignature
    ) external returns (uint64 agreementId) {
        AccessRequest storage q = _knownRequest(terms.requestId);
        if (q.status != RequestStatus.Approved) {
            revert RequestStatusMismatch(terms.requestId, q.status, RequestStatus.Approved);
        }
        if (
            terms.resourceId != q.resourceId || terms.provider != q.provider || terms.consumer != q.consumer
                || terms.purposeHash != q.purposeHash || terms.scopeHash != q.scopeHash
                || terms.termsHash != q.termsHash || terms.validFrom != q.validFrom || terms.validUntil != q.validUntil
        ) revert AgreementTermsMismatch(terms.requestId);
        if (block.timestamp > terms.deadline) revert AgreementSignatureExpired(terms.deadline);
        _requireActive(terms.provider);
        _requireActive(terms.consumer);

        bytes32 digest = _hashTypedDataV4(SharingTermsHash.hash(terms));
        if (!SignatureChecker.isValidSignatureNowCalldata(_signerOf(terms.provider), digest, providerSignature)) {
            revert AgreementInvalidSignature(terms.provider);
        }
        if (!SignatureChecker.isValidSignatureNowCalldata(_signerOf(terms.consumer), digest, consumerSignature)) {
            revert AgreementInvalidSignature(terms.consumer);
        }

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

    /// @inheritdoc ISharingAgreements
    function suspendAgreement(uint64 agreementId) external {
        Agreement storage a = _knownAgreement(agreementId);
        _requireCallerIs(a.provider);
        _suspend(agreementId, a);
    }

    /// @inheritdoc ISharingAgreements
    function reinstateAgreement(uint64 agreementId) external {
        Agreement storage a = _knownAgreement(agreementId);
        _requireCallerIs(a.provider);
        if (a.status != AgreementStatus.Suspended) revert AgreementStatusMismatch(agreementId, a.status);
        a.status = AgreementStatus.Active;
        emit AgreementReinstated(agreementId, msg.sender);
    }

    /// @inheritdoc ISharingAgreements
    function revokeAgreement(uint64 agreementId) external {
        Agreement storage a = _knownAgreement(agreementId);
        _requireCallerIs(a.provider);
        _revoke(agreementId, a);
    }

    function _governanceSuspendAgreement(uint64 agreementId) internal override {
        _suspend(agreementId, _knownAgreement(agreementId));
    }

    function _governanceRevokeAgreement(uint64 agreementId) internal override {
        _revoke(agreementId, _knownAgreement(agreementId));
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
        if (expiresAt <= block.timestamp || expiresAt > a.validUntil) revert GrantInvalidExpiry(expiresAt, a.validUntil);
        grantId = ++_grantCount;
        _grants[grantId] =
            Grant({agreementId: agreementId, provider: a.provider, consumer: a.consumer, expiresAt: expiresAt, revoked: false});
        emit GrantIssued(grantId, agreementId, a.consumer, a.provider, expiresAt);
    }

    /// @inheritdoc ISharingAgreements
    function revokeGrant(uint64 grantId) external {
        Grant storage g = _knownGrant(grantId);
        _requireCallerIs(g.provider);
        if (g.revoked) revert GrantAlreadyRevoked(grantId);
        g.revoked = true;
        emit GrantRevoked(grantId, g.provider);
    }

    /// @dev The grant, if deliveries may be made under it now: not revoked, not expired, agreement active.
    function _usableGrant(uint64 grantId) internal view returns (Grant memory g) {
        g = _grants[grantId];
        if (g.agreementId == 0) revert GrantUnknown(grantId);
        if (g.revoked) revert GrantAlreadyRevoked(grantId);
        if (block.timestamp >= g.expiresAt) revert GrantExpired(grantId, g.expiresAt);
        AgreementStatus status = _agreements[g.agreementId].status;
        if (status != AgreementStatus.Active) revert AgreementStatusMismatch(g.agreementId, status);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISharingAgreements
    function termsDigest(SharingTerms calldata terms) external view returns (bytes32) {
        return _hashTypedDataV4(SharingTermsHash.hash(terms));
    }

    /// @inheritdoc ISharingAgreements
    function request(uint64 requestId) external view returns (AccessRequest memory) {
        return _knownRequest(requestId);
    }

    /// @inheritdoc ISharingAgreements
    function agreement(uint64 agreementId) external view returns (Agreement memory) {
        return _knownAgreement(agreementId);
    }

    /// @inheritdoc ISharingAgreements
    function grant(uint64 grantId) external view returns (Grant memory) {
        return _knownGrant(grantId);
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
