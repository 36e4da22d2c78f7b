// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IReceiptAnchors} from "./interfaces/IReceiptAnchors.sol";
import {IDataExchangeLedger} from "./interfaces/IDataExchangeLedger.sol";
import {IDeliveryLedger} from "./interfaces/IDeliveryLedger.sol";
import {IDepartmentRegistry} from "./interfaces/IDepartmentRegistry.sol";
import {ISharingAgreements} from "./interfaces/ISharingAgreements.sol";
import {ReceiptTrees} from "./libraries/ReceiptTrees.sol";
import {
    Agreement,
    AgreementStatus,
    DepartmentStatus,
    DeliveryRecord,
    Grant,
    LAST_HASH_ALGORITHM,
    ShareType
} from "./types/Ledger.sol";
import {BatchStatus, ReceiptBatch} from "./types/Receipts.sol";

/// @title Receipt anchors beside one ledger
/// @notice See {IReceiptAnchors}. One deployment serves one ledger, fixed at construction.
/// @dev A contract of its own rather than a ledger module: the ledger's runtime code is close to the 24,576-byte
/// limit, and an anchor amortizes the calls into the ledger over its whole batch.
contract ReceiptAnchors is IReceiptAnchors {
    IDataExchangeLedger private immutable _ledger;

    mapping(uint64 grantId => mapping(uint64 firstSequence => ReceiptBatch)) private _batches;
    mapping(uint64 grantId => uint64) private _nextSequence;
    mapping(uint64 grantId => mapping(uint64 sequence => bool)) private _disputed;

    /// @param ledger_ The DataExchangeLedger whose grants and departments the anchors check.
    constructor(IDataExchangeLedger ledger_) {
        _ledger = ledger_;
    }

    /// @inheritdoc IReceiptAnchors
    function anchorBatch(uint64 grantId, uint64 firstSequence, uint64 leafCount, bytes32 root) external {
        if (root == bytes32(0)) revert ReceiptInvalidField("root");
        if (leafCount == 0) revert ReceiptInvalidField("leafCount");
        Grant memory g = _usableGrant(grantId);
        _requireCallerIs(g.provider);
        _requireActive(g.consumer);
        uint64 expected = _nextSequence[grantId];
        if (firstSequence != expected) revert ReceiptBatchOutOfSequence(grantId, firstSequence, expected);
        // Summed in 256 bits and refused by name: a uint64 sum's overflow panic says nothing to the caller.
        uint256 next = uint256(expected) + leafCount;
        if (next > type(uint64).max) revert ReceiptInvalidField("leafCount");

        _nextSequence[grantId] = uint64(next);
        _batches[grantId][firstSequence] = ReceiptBatch({
            root: root,
            leafCount: leafCount,
            anchoredAt: uint64(block.timestamp),
            provider: g.provider,
            consumer: g.consumer,
            status: BatchStatus.Anchored
        });
        emit ReceiptBatchAnchored(
            grantId, firstSequence, g.provider, g.consumer, leafCount, root, uint64(block.timestamp)
        );
    }

    /// @inheritdoc IReceiptAnchors
    function acknowledgeBatch(uint64 grantId, uint64 firstSequence) external {
        ReceiptBatch storage b = _unsettledBatch(grantId, firstSequence);
        uint32 consumer = b.consumer;
        _requireCallerIs(consumer);
        b.status = BatchStatus.Acknowledged;
        emit ReceiptBatchAcknowledged(grantId, firstSequence, consumer);
    }

    /// @inheritdoc IReceiptAnchors
    function disputeReceipt(
        uint64 grantId,
        uint64 firstSequence,
        DeliveryRecord calldata receipt,
        uint64 index,
        bytes32[] calldata proof,
        bytes32 consumerCommitment
    ) external {
        ReceiptBatch storage b = _unsettledBatch(grantId, firstSequence);
        uint32 consumer = b.consumer;
        _requireCallerIs(consumer);
        if (receipt.grantId != grantId) revert ReceiptInvalidField("receipt.grantId");
        _requireDeliverable(b, receipt);
        if (consumerCommitment == bytes32(0) || consumerCommitment == receipt.commitment) {
            revert ReceiptInvalidField("consumerCommitment");
        }
        // Checked before the sequence is formed: past the batch, `firstSequence + index` numbers a receipt of
        // another batch (or passes uint64), and a refusal naming it would accuse that receipt's proof.
        if (index >= b.leafCount) revert ReceiptInvalidField("index");
        uint64 sequence = firstSequence + index;
        if (!_included(b, receipt, index, proof)) revert ReceiptProofInvalid(grantId, sequence);
        if (_disputed[grantId][sequence]) revert ReceiptAlreadyDisputed(grantId, sequence);
        _disputed[grantId][sequence] = true;
        emit ReceiptDisputed(
            grantId, sequence, receipt.deliveryId, consumer, receipt.commitment, consumerCommitment
        );
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReceiptAnchors
    function receiptIncluded(
        uint64 grantId,
        uint64 firstSequence,
        DeliveryRecord calldata receipt,
        uint64 index,
        bytes32[] calldata proof
    ) external view returns (bool) {
        ReceiptBatch storage b = _batches[grantId][firstSequence];
        return b.status != BatchStatus.None && receipt.grantId == grantId && _deliverable(b, receipt)
            && _included(b, receipt, index, proof);
    }

    /// @inheritdoc IReceiptAnchors
    function receiptDisputed(uint64 grantId, uint64 sequence) external view returns (bool) {
        return _disputed[grantId][sequence];
    }

    /// @inheritdoc IReceiptAnchors
    function batch(uint64 grantId, uint64 firstSequence) external view returns (ReceiptBatch memory) {
        return _batches[grantId][firstSequence];
    }

    /// @inheritdoc IReceiptAnchors
    function nextSequence(uint64 grantId) external view returns (uint64) {
        return _nextSequence[grantId];
    }

    /// @inheritdoc IReceiptAnchors
    function receiptLeaf(DeliveryRecord calldata receipt) external pure returns (bytes32) {
        return ReceiptTrees.leafHash(receipt);
    }

    /// @inheritdoc IReceiptAnchors
    function ledger() external view returns (address) {
        return address(_ledger);
    }

    // ---------------------------------------------------------------- internals

    function _included(
        ReceiptBatch storage b,
        DeliveryRecord calldata receipt,
        uint64 index,
        bytes32[] calldata proof
    ) private view returns (bool) {
        (bytes32 root, bool ok) = ReceiptTrees.rootFromProof(index, b.leafCount, ReceiptTrees.leafHash(receipt), proof);
        return ok && root == b.root;
    }

    /// Whether the batch's provider could record the receipt's fields as a single delivery (`recordDelivery`'s
    /// checks of them): a non-zero commitment, a hash algorithm the ledger accepts, an id in the provider's
    /// namespace (a zero id is in none: department ids start at 1). The contract never sees the leaves it
    /// anchors, so a leaf no delivery could be (anchored past the service, which refuses one at the door) is
    /// told apart here, where a receipt is proved. Byte size and record count are any uint64, as the ledger's.
    function _deliverable(ReceiptBatch storage b, DeliveryRecord calldata receipt) private view returns (bool) {
        uint8 algorithm = receipt.hashAlgorithm;
        return receipt.commitment != bytes32(0) && algorithm != 0 && algorithm <= LAST_HASH_ALGORITHM
            && uint32(bytes4(receipt.deliveryId)) == b.provider;
    }

    /// {_deliverable}, reverting with the error `recordDelivery` gives the first field it refuses.
    function _requireDeliverable(ReceiptBatch storage b, DeliveryRecord calldata receipt) private view {
        if (receipt.commitment == bytes32(0)) revert IDeliveryLedger.DeliveryInvalidField("commitment");
        uint8 algorithm = receipt.hashAlgorithm;
        if (algorithm == 0 || algorithm > LAST_HASH_ALGORITHM) {
            revert IDeliveryLedger.DeliveryUnknownHashAlgorithm(algorithm);
        }
        uint32 provider = b.provider;
        if (uint32(bytes4(receipt.deliveryId)) != provider) {
            revert IDeliveryLedger.DeliveryIdNotProviders(receipt.deliveryId, provider);
        }
    }

    function _unsettledBatch(uint64 grantId, uint64 firstSequence) private view returns (ReceiptBatch storage b) {
        b = _batches[grantId][firstSequence];
        if (b.status == BatchStatus.None) revert ReceiptBatchUnknown(grantId, firstSequence);
        if (b.status != BatchStatus.Anchored) revert ReceiptBatchAlreadySettled(grantId, firstSequence, b.status);
    }

    /// The checks the ledger makes on a single delivery's grant, through its views: unknown grants revert in
    /// the ledger's own `grant` view with `GrantUnknown`. A resource reclassified `NOT_SHARED` stops anchors
    /// under its existing grants as it stops `recordDelivery`: a batch of receipts is deliveries all the same.
    function _usableGrant(uint64 grantId) private view returns (Grant memory g) {
        g = _ledger.grant(grantId);
        if (g.revoked) revert ISharingAgreements.GrantAlreadyRevoked(grantId);
        if (block.timestamp >= g.expiresAt) revert ISharingAgreements.GrantExpired(grantId, g.expiresAt);
        Agreement memory a = _ledger.agreement(g.agreementId);
        if (a.status != AgreementStatus.Active) {
            revert ISharingAgreements.AgreementStatusMismatch(g.agreementId, a.status);
        }
        if (_ledger.resource(a.resourceId).shareType == ShareType.NotShared) {
            revert ISharingAgreements.RequestResourceNotShared(a.resourceId);
        }
    }

    function _requireCallerIs(uint32 id) private view {
        (address signer, DepartmentStatus status) = _ledger.departmentSigner(id);
        if (signer != msg.sender) revert IDepartmentRegistry.DepartmentUnauthorized(msg.sender);
        if (status != DepartmentStatus.Active) revert IDepartmentRegistry.DepartmentNotActive(id);
    }

    function _requireActive(uint32 id) private view {
        (, DepartmentStatus status) = _ledger.departmentSigner(id);
        if (status != DepartmentStatus.Active) revert IDepartmentRegistry.DepartmentNotActive(id);
    }
}
