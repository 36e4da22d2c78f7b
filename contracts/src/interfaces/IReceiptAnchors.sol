// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeliveryRecord} from "../types/Ledger.sol";
import {BatchStatus, ReceiptBatch} from "../types/Receipts.sol";

/// @title Receipt anchors: delivery receipts recorded in Merkle batches, one transaction per batch
/// @notice A provider with many small deliveries sends their receipts (the fields of a delivery) to its service,
/// which numbers each grant's receipts 0, 1, 2, ... and anchors them here in batches: the root of the batch's
/// Merkle tree, its leaf count and its first sequence number. A receipt is proved by its inclusion proof against
/// an anchored root; the consumer acknowledges a whole batch in one transaction or disputes one receipt by proof.
/// @dev Deployed beside the ledger and reading grant, agreement and department state through the ledger's
/// views: one anchor pays those calls once for its whole batch. Batches of a grant are contiguous — each starts
/// where the previous ended ({nextSequence}) — so a batch is anchored at most once, and a report that leaves
/// out receipts of a grant is detectable from the leaf counts on chain. The ledger's own errors
/// (`GrantExpired`, `DepartmentUnauthorized`, ...) are reused for the checks a single delivery makes.
interface IReceiptAnchors {
    /// @notice Thrown when a batch does not start at the grant's next sequence number: anchored already, or a gap.
    error ReceiptBatchOutOfSequence(uint64 grantId, uint64 firstSequence, uint64 expectedSequence);
    /// @notice Thrown when no batch of `grantId` starts at `firstSequence`.
    error ReceiptBatchUnknown(uint64 grantId, uint64 firstSequence);
    /// @notice Thrown when acknowledging or disputing in a batch the consumer already acknowledged.
    error ReceiptBatchAlreadySettled(uint64 grantId, uint64 firstSequence, BatchStatus status);
    /// @notice Thrown when a root, leaf count or consumer commitment is zero, a batch would number receipts past
    /// uint64 (`leafCount`), a disputed receipt's index is outside its batch, or a receipt names another grant.
    error ReceiptInvalidField(string field);
    /// @notice Thrown when an inclusion proof does not lead to the batch's anchored root.
    error ReceiptProofInvalid(uint64 grantId, uint64 sequence);
    /// @notice Thrown when a receipt was disputed already.
    error ReceiptAlreadyDisputed(uint64 grantId, uint64 sequence);

    /// @notice A provider anchored a batch of receipts under a grant.
    /// @param grantId The grant all the batch's receipts were delivered under.
    /// @param firstSequence The sequence number of the batch's first receipt within the grant.
    /// @param provider The delivering department.
    /// @param consumer The receiving department.
    /// @param leafCount Number of receipts in the batch.
    /// @param root Root of the batch's Merkle tree.
    /// @param anchoredAt Block time of anchoring.
    event ReceiptBatchAnchored(
        uint64 indexed grantId,
        uint64 indexed firstSequence,
        uint32 indexed provider,
        uint32 consumer,
        uint64 leafCount,
        bytes32 root,
        uint64 anchoredAt
    );
    /// @notice The consumer acknowledged every receipt of a batch it has not disputed.
    /// @param grantId The batch's grant.
    /// @param firstSequence The batch's first sequence number.
    /// @param consumer The acknowledging department.
    event ReceiptBatchAcknowledged(uint64 indexed grantId, uint64 indexed firstSequence, uint32 indexed consumer);
    /// @notice The consumer's own commitment for one receipt differs from the anchored one.
    /// @param grantId The receipt's grant.
    /// @param sequence The receipt's sequence number within the grant.
    /// @param deliveryId The receipt's delivery id.
    /// @param consumer The disputing department.
    /// @param recordedCommitment What the provider anchored.
    /// @param consumerCommitment What the consumer computed from the payload it received.
    event ReceiptDisputed(
        uint64 indexed grantId,
        uint64 indexed sequence,
        bytes32 indexed deliveryId,
        uint32 consumer,
        bytes32 recordedCommitment,
        bytes32 consumerCommitment
    );

    /// @notice Anchors the next batch of a grant's receipts.
    /// @dev Requirements: caller is the grant's provider's signer; provider and consumer active; the grant not
    /// revoked and not expired; its agreement active; its resource not `NOT_SHARED` (as for `recordDelivery`);
    /// `root` and `leafCount` non-zero; `firstSequence` is the grant's {nextSequence}, and `firstSequence +
    /// leafCount` fits uint64 (the grant's next sequence after this batch). Emits
    /// {ReceiptBatchAnchored}.
    function anchorBatch(uint64 grantId, uint64 firstSequence, uint64 leafCount, bytes32 root) external;

    /// @notice Acknowledges every receipt of a batch that the consumer has not disputed.
    /// @dev Requirements: caller is the batch's consumer's signer, consumer active; the batch is anchored and not
    /// acknowledged yet. Emits {ReceiptBatchAcknowledged}.
    function acknowledgeBatch(uint64 grantId, uint64 firstSequence) external;

    /// @notice Disputes one receipt of a batch by its inclusion proof and the commitment the consumer computed.
    /// @dev Requirements: caller is the batch's consumer's signer, consumer active; the batch not acknowledged;
    /// `receipt.grantId` is `grantId`; the receipt's fields a single delivery's, as `recordDelivery` checks them
    /// and with its errors: `receipt.commitment` non-zero (else `DeliveryInvalidField("commitment")`),
    /// `receipt.hashAlgorithm` 1 or 2 (else `DeliveryUnknownHashAlgorithm`), `receipt.deliveryId` in the batch
    /// provider's namespace (else `DeliveryIdNotProviders`); `index` below the batch's leaf count; `proof` proves
    /// `receipt` as leaf `index` of the batch; `consumerCommitment` non-zero and different from
    /// `receipt.commitment`; the receipt not disputed before. Emits {ReceiptDisputed}.
    function disputeReceipt(
        uint64 grantId,
        uint64 firstSequence,
        DeliveryRecord calldata receipt,
        uint64 index,
        bytes32[] calldata proof,
        bytes32 consumerCommitment
    ) external;

    /// @notice Whether `proof` proves `receipt` as leaf `index` of the anchored batch (false for an unknown batch,
    /// and for a receipt of another grant or that no single delivery of the batch's provider could be: a zero
    /// commitment, a hash algorithm the ledger does not accept, a delivery id outside the provider's namespace).
    /// @dev The contract never sees the leaves it anchors: a provider anchoring past the service may anchor any
    /// leaf, and such a leaf is denied here. A delivery id anchored twice is not: only the leaves tell it.
    function receiptIncluded(
        uint64 grantId,
        uint64 firstSequence,
        DeliveryRecord calldata receipt,
        uint64 index,
        bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice Whether the receipt numbered `sequence` of `grantId` was disputed.
    function receiptDisputed(uint64 grantId, uint64 sequence) external view returns (bool);

    /// @notice The batch of `grantId` starting at `firstSequence` (status `None` if there is none).
    function batch(uint64 grantId, uint64 firstSequence) external view returns (ReceiptBatch memory);

    /// @notice The sequence number the grant's next batch starts at (the number of receipts anchored so far).
    function nextSequence(uint64 grantId) external view returns (uint64);

    /// @notice The leaf hash of `receipt` in a batch tree: SHA-256(0x00 || abi.encode(receipt)).
    function receiptLeaf(DeliveryRecord calldata receipt) external pure returns (bytes32);

    /// @notice The ledger whose grants and departments this contract checks.
    function ledger() external view returns (address);
}
