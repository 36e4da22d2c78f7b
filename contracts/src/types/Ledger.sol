// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Membership state of a department. `None` means the id was never admitted.
enum DepartmentStatus {
    None,
    Active,
    Suspended
}

/// @notice The three classes of government data-sharing rules a catalogued resource falls under.
/// @dev `Unconditional` resources are granted without a provider decision (the request is approved on arrival),
/// `Conditional` ones need the provider's approval, `NotShared` ones can never be agreed.
enum ShareType {
    Unconditional,
    Conditional,
    NotShared
}

enum RequestStatus {
    None,
    Pending,
    Approved,
    Rejected,
    Concluded,
    Withdrawn
}

enum AgreementStatus {
    None,
    Active,
    Suspended,
    Revoked
}

enum DeliveryStatus {
    None,
    Recorded,
    Acknowledged,
    Disputed
}

/// @notice What a governance proposal does once enough governors approved it. The proposal's `data` is the
/// ABI encoding of the arguments named here.
enum GovernanceAction {
    /// (bytes32 code, string name, address signer, bytes32 encryptionKey, bool contractSigner)
    AdmitDepartment,
    /// (uint32 departmentId)
    SuspendDepartment,
    /// (uint32 departmentId)
    ReinstateDepartment,
    /// (uint32 departmentId, address newSigner, bytes32 newEncryptionKey)
    RekeyDepartment,
    /// (address account)
    GrantAuditor,
    /// (address account)
    RevokeAuditor,
    /// (address account)
    AddGovernor,
    /// (address account)
    RemoveGovernor,
    /// (uint8 threshold)
    SetThreshold,
    /// (uint64 agreementId)
    SuspendAgreement,
    /// (uint64 agreementId)
    RevokeAgreement,
    /// (uint64 agreementId): lifts a suspension governance imposed (a provider's own stays the provider's)
    ReinstateAgreement
}

/// @dev `keyEpoch` counts the department's changes of signer: signed terms name it, so a signature made before a
/// re-key never verifies again, even after a re-key back to the same signer. `contractSigner` is chosen at
/// admission: only then is the signer's ERC-1271 `isValidSignature` accepted, which lets that contract decide
/// alone what the department signed.
struct Department {
    address signer;
    DepartmentStatus status;
    bytes32 code;
    bytes32 encryptionKey;
    string name;
    uint32 keyEpoch;
    bool contractSigner;
}

struct Resource {
    uint32 owner;
    ShareType shareType;
    uint8 sensitivity;
    bytes32 metadataHash;
    bytes32 schemaHash;
}

struct AccessRequest {
    uint64 resourceId;
    uint32 consumer;
    uint32 provider;
    RequestStatus status;
    uint64 requestedAt;
    uint64 decidedAt;
    uint16 reasonCode;
    uint64 validFrom;
    uint64 validUntil;
    bytes32 purposeHash;
    bytes32 scopeHash;
    bytes32 termsHash;
}

/// @notice The terms both departments sign (EIP-712 typed data `SharingTerms`).
/// @dev `deadline` bounds the signatures' lifetime; the request id makes each signature single-use because a
/// request concludes at most one agreement. The catalog entry as agreed (metadata hash, schema hash, sensitivity)
/// and both departments' key epochs are pinned: a changed entry or a re-key voids the signatures.
struct SharingTerms {
    uint64 requestId;
    uint64 resourceId;
    uint32 provider;
    uint32 consumer;
    bytes32 purposeHash;
    bytes32 scopeHash;
    bytes32 termsHash;
    bytes32 metadataHash;
    bytes32 schemaHash;
    uint8 sensitivity;
    uint64 validFrom;
    uint64 validUntil;
    uint32 providerKeyEpoch;
    uint32 consumerKeyEpoch;
    uint64 deadline;
}

struct Agreement {
    uint64 requestId;
    uint64 resourceId;
    uint32 provider;
    uint32 consumer;
    AgreementStatus status;
    uint64 validFrom;
    uint64 validUntil;
    bytes32 termsDigest;
}

/// @dev Packed in one storage slot: it is read on every delivery.
struct Grant {
    uint64 agreementId;
    uint32 provider;
    uint32 consumer;
    uint64 expiresAt;
    bool revoked;
}

/// @notice Everything recorded about one delivery. Only its hash (with the status in the low byte) is stored;
/// the fields travel in the `DeliveryRecorded` event and are handed back when the consumer acknowledges.
struct DeliveryReceipt {
    uint64 grantId;
    uint32 provider;
    uint32 consumer;
    bytes32 commitment;
    uint8 hashAlgorithm;
    uint64 byteSize;
    uint64 recordCount;
    uint64 recordedAt;
}

/// @dev The highest hash algorithm id the ledger accepts for a delivery: 1 = SHA-256, 2 = SM3. Readers of the chain
/// name every recorded algorithm, so an id is accepted only once they know it; a receipt proved against an
/// anchored batch is held to the same ids.
uint8 constant LAST_HASH_ALGORITHM = 2;

/// @notice One delivery of a batch (see `recordDeliveries`): the arguments of `recordDelivery`.
struct DeliveryRecord {
    bytes32 deliveryId;
    uint64 grantId;
    bytes32 commitment;
    uint8 hashAlgorithm;
    uint64 byteSize;
    uint64 recordCount;
}

struct Proposal {
    GovernanceAction action;
    address proposer;
    bool executed;
    bool cancelled;
    uint64 expiresAt;
    bytes data;
    /// @dev Everyone who approved, in order, each once. Only approvals given during an approver's current term as
    /// governor count towards the threshold.
    address[] approvers;
}
