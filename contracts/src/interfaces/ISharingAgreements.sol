// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessRequest, Agreement, Grant, RequestStatus, AgreementStatus, SharingTerms} from "../types/Ledger.sol";

/// @title Requests, sharing agreements signed by both departments, and access grants
/// @notice A consumer requests a catalogued resource; the provider approves or rejects it (unconditionally
/// shared resources are approved on arrival); both departments sign the same EIP-712 `SharingTerms` and the
/// agreement is concluded on chain; the provider then issues expiring access grants under it.
interface ISharingAgreements {
    /// @notice Thrown when requesting a resource classified as not shared.
    error RequestResourceNotShared(uint64 resourceId);
    /// @notice Thrown when a department requests its own resource.
    error RequestOwnResource(uint64 resourceId);
    /// @notice Thrown when a request's validity window is empty or already over.
    error RequestInvalidPeriod(uint64 validFrom, uint64 validUntil);
    /// @notice Thrown when a request id was never created.
    error RequestUnknown(uint64 requestId);
    /// @notice Thrown when a request is not in the status the operation needs.
    error RequestStatusMismatch(uint64 requestId, RequestStatus status, RequestStatus expected);
    /// @notice Thrown when a request states no purpose: empty, or not well-formed UTF-8 text.
    error RequestPurposeRequired();
    /// @notice Thrown when rejecting without a reason code.
    error RequestReasonRequired();
    /// @notice Thrown when the caller is not the department the operation belongs to.
    error SharingNotAParty(uint32 departmentId, uint32 expectedDepartmentId);

    /// @notice Thrown when the signed terms differ from the approved request.
    error AgreementTermsMismatch(uint64 requestId);
    /// @notice Thrown when the resource's catalog entry changed since the terms were signed.
    error AgreementCatalogChanged(uint64 resourceId);
    /// @notice Thrown when the terms name a key epoch that is not the department's current one (it was re-keyed
    /// since it signed).
    error AgreementKeyEpochMismatch(uint32 departmentId, uint32 signedEpoch, uint32 currentEpoch);
    /// @notice Thrown when the signatures' deadline has passed.
    error AgreementSignatureExpired(uint64 deadline);
    /// @notice Thrown when a signature is not the named department's current signer's signature over the terms.
    error AgreementInvalidSignature(uint32 departmentId);
    /// @notice Thrown when an agreement id was never concluded.
    error AgreementUnknown(uint64 agreementId);
    /// @notice Thrown when an agreement is not in the status the operation needs.
    error AgreementStatusMismatch(uint64 agreementId, AgreementStatus status);
    /// @notice Thrown when a provider reinstates an agreement that governance suspended: only governance lifts it.
    error AgreementSuspendedByGovernance(uint64 agreementId);
    /// @notice Thrown when an agreement is active but outside its validity window.
    error AgreementOutsideValidity(uint64 agreementId, uint64 validFrom, uint64 validUntil);

    /// @notice Thrown when a grant id was never issued.
    error GrantUnknown(uint64 grantId);
    /// @notice Thrown when a grant's expiry is in the past or beyond its agreement's validity.
    error GrantInvalidExpiry(uint64 expiresAt, uint64 agreementValidUntil);
    /// @notice Thrown when using or revoking a revoked grant.
    error GrantAlreadyRevoked(uint64 grantId);
    /// @notice Thrown when using an expired grant.
    error GrantExpired(uint64 grantId, uint64 expiredAt);

    /// @notice A consumer department requested a resource.
    /// @param requestId Sequential id, starting at 1.
    /// @param resourceId The requested resource.
    /// @param consumer The requesting department.
    /// @param provider The resource's owner.
    /// @param purpose Stated purpose of use (its keccak256 is the terms' `purposeHash`).
    /// @param scopeHash Hash of the requested data list.
    /// @param termsHash Hash of the terms document (format, timeliness, rights and duties).
    /// @param validFrom Start of the requested sharing period.
    /// @param validUntil End of the requested sharing period.
    event AccessRequested(
        uint64 indexed requestId,
        uint64 indexed resourceId,
        uint32 indexed consumer,
        uint32 provider,
        string purpose,
        bytes32 scopeHash,
        bytes32 termsHash,
        uint64 validFrom,
        uint64 validUntil
    );
    /// @notice The provider approved a request (or it was approved on arrival for an unconditional resource).
    /// @param requestId The request.
    /// @param provider The approving department.
    /// @param automatic True when approved on arrival because the resource is unconditionally shared.
    event RequestApproved(uint64 indexed requestId, uint32 indexed provider, bool automatic);
    /// @notice The consumer withdrew its request, or the provider its approval, before an agreement was concluded.
    /// @param requestId The request.
    /// @param by The withdrawing department.
    event RequestWithdrawn(uint64 indexed requestId, uint32 indexed by);
    /// @notice The provider rejected a request.
    /// @param requestId The request.
    /// @param provider The rejecting department.
    /// @param reasonCode Why (codes are listed in the catalog's reason table).
    event RequestRejected(uint64 indexed requestId, uint32 indexed provider, uint16 reasonCode);

    /// @notice Both departments' signatures over the same terms were verified and the agreement is active.
    /// @param agreementId Sequential id, starting at 1.
    /// @param requestId The request it concludes.
    /// @param provider The providing department.
    /// @param consumer The consuming department.
    /// @param resourceId The shared resource.
    /// @param termsDigest EIP-712 digest both signatures are over.
    /// @param validFrom Start of validity.
    /// @param validUntil End of validity.
    /// @param providerSignature The provider's signature.
    /// @param consumerSignature The consumer's signature.
    event AgreementConcluded(
        uint64 indexed agreementId,
        uint64 indexed requestId,
        uint32 indexed provider,
        uint32 consumer,
        uint64 resourceId,
        bytes32 termsDigest,
        uint64 validFrom,
        uint64 validUntil,
        bytes providerSignature,
        bytes consumerSignature
    );
    /// @notice An agreement was suspended; no grant under it can be used until it is reinstated.
    /// @param agreementId The agreement.
    /// @param by The provider's signer or, under governance, the account whose call executed the proposal.
    event AgreementSuspended(uint64 indexed agreementId, address indexed by);
    /// @notice A suspended agreement was reinstated, by its provider or, for a governance suspension, by
    /// governance.
    /// @param agreementId The agreement.
    /// @param by The provider's signer or, under governance, the account whose call executed the proposal.
    event AgreementReinstated(uint64 indexed agreementId, address indexed by);
    /// @notice An agreement was revoked for good.
    /// @param agreementId The agreement.
    /// @param by The provider's signer or, under governance, the account whose call executed the proposal.
    event AgreementRevoked(uint64 indexed agreementId, address indexed by);

    /// @notice The provider issued an access grant to the consumer under an agreement.
    /// @param grantId Sequential id, starting at 1.
    /// @param agreementId The agreement it is issued under.
    /// @param consumer The department allowed to receive.
    /// @param provider The issuing department.
    /// @param expiresAt When the grant stops allowing deliveries.
    event GrantIssued(
        uint64 indexed grantId, uint64 indexed agreementId, uint32 indexed consumer, uint32 provider, uint64 expiresAt
    );
    /// @notice The provider revoked a grant.
    /// @param grantId The grant.
    /// @param provider The revoking department.
    event GrantRevoked(uint64 indexed grantId, uint32 indexed provider);

    /// @notice Requests a catalogued resource for the calling department.
    /// @dev Requirements: caller is an active department's signer; the resource exists, is not `NotShared`, and
    /// is not the caller's own; its owner is active; `purpose` is not empty and is well-formed UTF-8 (else
    /// {RequestPurposeRequired}); `validFrom < validUntil` and `validUntil` is in the future.
    /// Emits {AccessRequested}, and {RequestApproved} (automatic) for an unconditionally shared resource.
    /// @return requestId The new request's id.
    function requestAccess(
        uint64 resourceId,
        string calldata purpose,
        bytes32 scopeHash,
        bytes32 termsHash,
        uint64 validFrom,
        uint64 validUntil
    ) external returns (uint64 requestId);

    /// @notice Approves a pending request for a resource of the calling department. A request approved on arrival
    /// reads as pending again once its resource is no longer unconditionally shared, and needs this decision.
    /// @dev Requirements: caller is the provider's signer, provider active, request pending; the resource is not
    /// `NotShared` (else {RequestResourceNotShared}). Emits {RequestApproved}.
    function approveRequest(uint64 requestId) external;

    /// @notice Withdraws a pending or approved request: the consumer its request, the provider its approval.
    /// @dev Requirements: caller is the signer of the request's consumer or provider (else {SharingNotAParty}),
    /// active; the request is pending or approved. Emits {RequestWithdrawn}.
    function withdrawRequest(uint64 requestId) external;

    /// @notice Rejects a pending request with a non-zero reason code.
    /// @dev Requirements: as {approveRequest}; `reasonCode` is not zero. Emits {RequestRejected}.
    function rejectRequest(uint64 requestId, uint16 reasonCode) external;

    /// @notice Concludes the agreement of an approved request from both departments' EIP-712 signatures.
    /// @dev Anyone may submit: the signatures are the authorisation. Requirements: the request is approved (an
    /// approval on arrival counts only while the resource is unconditionally shared); the resource is not
    /// `NotShared`; the terms equal the request's resource, parties, purpose, scope, terms hash and period (else
    /// {AgreementTermsMismatch}), the resource's current metadata hash, schema hash and sensitivity (else
    /// {AgreementCatalogChanged}) and both departments' current key epochs (else {AgreementKeyEpochMismatch});
    /// the validity has not ended (else {RequestInvalidPeriod}); `deadline` not passed; both departments active;
    /// each signature is its department's current signer's: an ECDSA signature, or an ERC-1271 one only for a
    /// department admitted with `contractSigner`.
    /// Emits {AgreementConcluded}.
    /// @return agreementId The new agreement's id.
    function concludeAgreement(
        SharingTerms calldata terms,
        bytes calldata providerSignature,
        bytes calldata consumerSignature
    ) external returns (uint64 agreementId);

    /// @notice Suspends an active agreement. Requirements: caller is the provider's signer (also while the provider
    /// is suspended: withdrawing access is always its own to do). Emits {AgreementSuspended}.
    function suspendAgreement(uint64 agreementId) external;

    /// @notice Reinstates an agreement its provider suspended. Requirements: caller is the provider's signer; the
    /// agreement is suspended, and not by governance (else {AgreementSuspendedByGovernance}: only a
    /// `ReinstateAgreement` proposal lifts that). Emits {AgreementReinstated}.
    function reinstateAgreement(uint64 agreementId) external;

    /// @notice Revokes an active or suspended agreement for good, and with it every grant issued under it.
    /// Requirements: caller is the provider's signer, also while the provider is suspended. Emits {AgreementRevoked}.
    function revokeAgreement(uint64 agreementId) external;

    /// @notice Issues an access grant under an agreement of the calling provider.
    /// @dev Requirements: caller is the provider's signer; both departments active; the agreement is active and
    /// inside its validity window; the resource is not `NotShared`; `now < expiresAt <= validUntil`.
    /// Emits {GrantIssued}.
    /// @return grantId The new grant's id.
    function issueGrant(uint64 agreementId, uint64 expiresAt) external returns (uint64 grantId);

    /// @notice Revokes a grant. Requirements: caller is the provider's signer, also while the provider is
    /// suspended; the grant not revoked, by itself or with its agreement. Emits {GrantRevoked}.
    function revokeGrant(uint64 grantId) external;

    /// @notice The EIP-712 digest of `terms` under this ledger's domain: what both departments sign.
    function termsDigest(SharingTerms calldata terms) external view returns (bytes32);

    /// @notice Returns a request; reverts with {RequestUnknown} for an unknown id. `status` is the one the rules
    /// apply: an approval on arrival reads `Pending` while the resource is not unconditionally shared.
    function request(uint64 requestId) external view returns (AccessRequest memory);

    /// @notice Returns an agreement; reverts with {AgreementUnknown} for an unknown id.
    function agreement(uint64 agreementId) external view returns (Agreement memory);

    /// @notice Returns a grant; reverts with {GrantUnknown} for an unknown id. `revoked` is also true when its
    /// agreement was revoked.
    function grant(uint64 grantId) external view returns (Grant memory);

    /// @notice Counters of requests, agreements and grants (ids run from 1 to each value).
    function counts() external view returns (uint64 requests, uint64 agreements, uint64 grants);
}
