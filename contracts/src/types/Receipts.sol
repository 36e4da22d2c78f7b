// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Where an anchored receipt batch stands. A receipt of the batch is final once the batch is anchored;
/// the consumer then acknowledges the whole batch or disputes single receipts by proof.
enum BatchStatus {
    None,
    Anchored,
    Acknowledged
}

/// @notice One anchored batch of receipts of a grant: the root of the Merkle tree over its receipts, which are
/// the grant's receipts numbered `firstSequence` to `firstSequence + leafCount - 1`.
struct ReceiptBatch {
    bytes32 root;
    uint64 leafCount;
    uint64 anchoredAt;
    uint32 provider;
    uint32 consumer;
    BatchStatus status;
}
