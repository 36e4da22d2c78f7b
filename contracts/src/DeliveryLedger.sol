// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IDeliveryLedger} from "./interfaces/IDeliveryLedger.sol";
import {SharingAgreements} from "./SharingAgreements.sol";
import {DeliveryReceipts} from "./libraries/DeliveryReceipts.sol";
import {DeliveryReceipt, DeliveryRecord, DeliveryStatus, Grant, LAST_HASH_ALGORITHM} from "./types/Ledger.sol";

/// @title Delivery receipts and their acknowledgement
abstract contract DeliveryLedger is SharingAgreements, IDeliveryLedger {
    using DeliveryReceipts for bytes32;
    using DeliveryReceipts for DeliveryReceipt;

    mapping(bytes32 deliveryId => bytes32 packedReceipt) private _deliveries;

    /// @inheritdoc IDeliveryLedger
    function recordDelivery(
        bytes32 deliveryId,
        uint64 grantId,
        bytes32 commitment,
        uint8 hashAlgorithm,
        uint64 byteSize,
        uint64 recordCount
    ) external {
        _record(deliveryId, grantId, commitment, hashAlgorithm, byteSize, recordCount);
    }

    /// @inheritdoc IDeliveryLedger
    function recordDeliveries(DeliveryRecord[] calldata records) external {
        if (records.length == 0) revert DeliveryInvalidField("records");
        for (uint256 i = 0; i < records.length; ++i) {
            DeliveryRecord calldata r = records[i];
            _record(r.deliveryId, r.grantId, r.commitment, r.hashAlgorithm, r.byteSize, r.recordCount);
        }
    }

    function _record(
        bytes32 deliveryId,
        uint64 grantId,
        bytes32 commitment,
        uint8 hashAlgorithm,
        uint64 byteSize,
        uint64 recordCount
    ) private {
        if (deliveryId == bytes32(0)) revert DeliveryInvalidField("deliveryId");
        if (commitment == bytes32(0)) revert DeliveryInvalidField("commitment");
        if (hashAlgorithm == 0 || hashAlgorithm > LAST_HASH_ALGORITHM) revert DeliveryUnknownHashAlgorithm(hashAlgorithm);
        Grant memory g = _usableGrant(grantId);
        _requireCallerIs(g.provider);
        _requireActive(g.consumer);
        // Ids are global, so each provider chooses them only in its own namespace.
        if (uint32(bytes4(deliveryId)) != g.provider) revert DeliveryIdNotProviders(deliveryId, g.provider);
        if (_deliveries[deliveryId] != bytes32(0)) revert DeliveryDuplicate(deliveryId);

        DeliveryReceipt memory receipt = DeliveryReceipt({
            grantId: grantId,
            provider: g.provider,
            consumer: g.consumer,
            commitment: commitment,
            hashAlgorithm: hashAlgorithm,
            byteSize: byteSize,
            recordCount: recordCount,
            recordedAt: uint64(block.timestamp)
        });
        _deliveries[deliveryId] = receipt.pack(DeliveryStatus.Recorded);
        emit DeliveryRecorded(
            deliveryId,
            grantId,
            commitment,
            g.provider,
            g.consumer,
            hashAlgorithm,
            byteSize,
            recordCount,
            uint64(block.timestamp)
        );
    }

    /// @inheritdoc IDeliveryLedger
    function acknowledgeDelivery(bytes32 deliveryId, DeliveryReceipt calldata receipt, bytes32 consumerCommitment)
        external
        returns (DeliveryStatus status)
    {
        bytes32 word = _deliveries[deliveryId];
        if (word == bytes32(0)) revert DeliveryUnknown(deliveryId);
        // The receipt is checked first: the caller check below trusts its consumer field.
        if (!word.matches(receipt)) revert DeliveryReceiptMismatch(deliveryId);
        _requireCallerIs(receipt.consumer);
        DeliveryStatus current = word.status();
        if (current != DeliveryStatus.Recorded) revert DeliveryAlreadySettled(deliveryId, current);
        if (consumerCommitment == bytes32(0)) revert DeliveryInvalidField("consumerCommitment");

        status = consumerCommitment == receipt.commitment ? DeliveryStatus.Acknowledged : DeliveryStatus.Disputed;
        _deliveries[deliveryId] = word.withStatus(status);
        if (status == DeliveryStatus.Acknowledged) {
            emit DeliveryAcknowledged(deliveryId, receipt.consumer);
        } else {
            emit DeliveryDisputed(deliveryId, receipt.consumer, receipt.commitment, consumerCommitment);
        }
    }

    /// @inheritdoc IDeliveryLedger
    function deliveryStatus(bytes32 deliveryId) external view returns (DeliveryStatus) {
        return _deliveries[deliveryId].status();
    }

    /// @inheritdoc IDeliveryLedger
    function receiptMatches(bytes32 deliveryId, DeliveryReceipt calldata receipt) external view returns (bool) {
        return _deliveries[deliveryId].matches(receipt);
    }
}
