// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeliveryReceipt, DeliveryStatus} from "../types/Ledger.sol";

/// @title Packing of a delivery receipt into one storage word
/// @notice A stored word is the receipt's keccak256 with its lowest byte replaced by the delivery status, so one
/// SSTORE records a delivery and one cheap rewrite settles it. 248 bits of the hash remain, far beyond any
/// feasible collision search.
library DeliveryReceipts {
    uint256 private constant STATUS_MASK = 0xff;

    /// @notice The stored word for `receipt` in `newStatus`.
    function pack(DeliveryReceipt memory receipt, DeliveryStatus newStatus) internal pure returns (bytes32) {
        return withStatus(keccak256(abi.encode(receipt)), newStatus);
    }

    /// @notice `word` with its status byte replaced by `newStatus`.
    function withStatus(bytes32 word, DeliveryStatus newStatus) internal pure returns (bytes32) {
        return bytes32((uint256(word) & ~STATUS_MASK) | uint256(newStatus));
    }

    /// @notice The status held in a stored word (`None` for an empty slot).
    function status(bytes32 word) internal pure returns (DeliveryStatus) {
        return DeliveryStatus(uint8(uint256(word) & STATUS_MASK));
    }

    /// @notice Whether `word` was stored for `receipt`, whatever its status.
    function matches(bytes32 word, DeliveryReceipt memory receipt) internal pure returns (bool) {
        return word != bytes32(0)
            && (uint256(word) & ~STATUS_MASK) == (uint256(keccak256(abi.encode(receipt))) & ~STATUS_MASK);
    }
}
