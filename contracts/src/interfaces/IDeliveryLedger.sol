// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeliveryReceipt, DeliveryRecord, DeliveryStatus} from "../types/Ledger.sol";

/// @title Delivery receipts: salted payload commitments recorded by the provider, checked by the consumer
/// @notice The payload never reaches the chain. The provider records a commitment (the root of a salted Merkle
/// tree over the payload) under an access grant; the consumer recomputes it from what it received and either
/// acknowledges (equal) or disputes (different, both values kept in the log).
/// @dev Only `keccak256(abi.encode(receipt))` with the status in its low byte is stored — one storage slot per
/// delivery keeps recording within its gas budget. The receipt's fields are in {DeliveryRecorded}; the consumer
/// hands them back to acknowledge, and {receiptMatches} lets anyone check a receipt rebuilt from logs.
interface IDeliveryLedger {
    /// @notice Thrown when a delivery id was already recorded.
    error DeliveryDuplicate(bytes32 deliveryId);
    /// @notice Thrown when a delivery id was never recorded.
    error DeliveryUnknown(bytes32 deliveryId);
    /// @notice Thrown when the receipt handed back differs from the recorded one.
    error DeliveryReceiptMismatch(bytes32 deliveryId);
    /// @notice Thrown when acknowledging a delivery that was already acknowledged or disputed.
    error DeliveryAlreadySettled(bytes32 deliveryId, DeliveryStatus status);
    /// @notice Thrown when a delivery id or commitment is zero.
    error DeliveryInvalidField(string field);
    /// @notice Thrown when a delivery id is outside the recording provider's namespace: its first four bytes must
    /// be the provider's department id, so that no department can take another's next id first.
    error DeliveryIdNotProviders(bytes32 deliveryId, uint32 provider);
    /// @notice Thrown when a hash algorithm id is not one the ledger knows (1 = SHA-256, 2 = SM3).
    error DeliveryUnknownHashAlgorithm(uint8 hashAlgorithm);

    /// @notice The provider recorded a delivery under a grant.
    /// @param deliveryId Unique id chosen by the provider in its namespace (first four bytes: its department id).
    /// @param grantId The grant it was delivered under.
    /// @param commitment Salted Merkle root of the payload.
    /// @param provider The delivering department.
    /// @param consumer The receiving department.
    /// @param hashAlgorithm Hash algorithm id (1 = SHA-256, 2 = SM3).
    /// @param byteSize Payload size in bytes.
    /// @param recordCount Number of records (0 for an opaque file).
    /// @param recordedAt Block time of recording.
    event DeliveryRecorded(
        bytes32 indexed deliveryId,
        uint64 indexed grantId,
        bytes32 indexed commitment,
        uint32 provider,
        uint32 consumer,
        uint8 hashAlgorithm,
        uint64 byteSize,
        uint64 recordCount,
        uint64 recordedAt
    );
    /// @notice The consumer's own commitment equals the recorded one.
    /// @param deliveryId The delivery.
    /// @param consumer The acknowledging department.
    event DeliveryAcknowledged(bytes32 indexed deliveryId, uint32 indexed consumer);
    /// @notice The consumer's own commitment differs from the recorded one.
    /// @param deliveryId The delivery.
    /// @param consumer The disputing department.
    /// @param recordedCommitment What the provider recorded.
    /// @param consumerCommitment What the consumer computed from the payload it received.
    event DeliveryDisputed(
        bytes32 indexed deliveryId, uint32 indexed consumer, bytes32 recordedCommitment, bytes32 consumerCommitment
    );

    /// @notice Records a delivery's commitment under a grant of the calling provider.
    /// @dev Requirements: caller is the grant's provider's signer; provider and consumer active; the grant not
    /// revoked and not expired; its agreement active; `deliveryId` and `commitment` non-zero; `deliveryId` in the
    /// provider's namespace (big-endian department id in its first four bytes, else {DeliveryIdNotProviders}) and
    /// not recorded before; `hashAlgorithm` 1 (SHA-256) or 2 (SM3), else {DeliveryUnknownHashAlgorithm}.
    /// Emits {DeliveryRecorded}.
    function recordDelivery(
        bytes32 deliveryId,
        uint64 grantId,
        bytes32 commitment,
        uint8 hashAlgorithm,
        uint64 byteSize,
        uint64 recordCount
    ) external;

    /// @notice Records several deliveries in one transaction, all or none: each is checked as by
    /// {recordDelivery} and the first that fails reverts the whole batch with its error.
    /// @dev A transaction's fixed cost (21,000 gas, one block slot) is paid once per batch instead of once per
    /// receipt, which is what lets a provider record many small deliveries. Requirements: `records` is not
    /// empty; each record satisfies {recordDelivery}'s requirements (ids also unique within the batch).
    /// Emits one {DeliveryRecorded} per record, in order.
    function recordDeliveries(DeliveryRecord[] calldata records) external;

    /// @notice Settles a recorded delivery with the commitment the consumer computed itself: equal acknowledges,
    /// different disputes.
    /// @dev Requirements: caller is the receipt's consumer's signer, consumer active; `receipt` is exactly the
    /// recorded one (see {DeliveryRecorded}); the delivery is not settled yet.
    /// Emits {DeliveryAcknowledged} or {DeliveryDisputed}.
    /// @return status The new status.
    function acknowledgeDelivery(bytes32 deliveryId, DeliveryReceipt calldata receipt, bytes32 consumerCommitment)
        external
        returns (DeliveryStatus status);

    /// @notice The status of a delivery (`None` if never recorded).
    function deliveryStatus(bytes32 deliveryId) external view returns (DeliveryStatus);

    /// @notice Whether `receipt` is exactly what was recorded for `deliveryId`.
    function receiptMatches(bytes32 deliveryId, DeliveryReceipt calldata receipt) external view returns (bool);
}
