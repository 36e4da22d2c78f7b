// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeliveryRecord} from "../types/Ledger.sol";

/// @title Receipt batch trees: RFC 6962-shaped Merkle trees over SHA-256, as in the verifier's `tree.py`
/// @notice Leaves and inner nodes are domain-separated (`0x00 || leaf`, `0x01 || left || right`), so an inner
/// node can never pass for a receipt. The leaf bytes are the ABI encoding of the receipt's six fields, which
/// any client rebuilds from the receipt alone. Batch trees carry no salt: a receipt holds no payload, only
/// its commitment.
library ReceiptTrees {
    /// @notice The leaf hash of `receipt`: SHA-256(0x00 || abi.encode(receipt)).
    function leafHash(DeliveryRecord memory receipt) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), abi.encode(receipt)));
    }

    /// @notice SHA-256(0x01 || left || right).
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /// @notice The root implied by the audit path `proof` of leaf `index` in a tree of `size` leaves (RFC 9162
    /// section 2.1.3.2), and whether the path has the length that tree needs.
    /// @dev `proof` runs from the leaf's sibling up. A path that is too short or too long, or an index outside
    /// the tree, gives `ok == false`; callers compare `root` with an anchored root only when `ok`.
    function rootFromProof(uint256 index, uint256 size, bytes32 leaf, bytes32[] calldata proof)
        internal
        pure
        returns (bytes32 root, bool ok)
    {
        if (index >= size) return (bytes32(0), false);
        uint256 fn = index;
        uint256 sn = size - 1;
        root = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            if (sn == 0) return (bytes32(0), false);
            if (fn & 1 == 1 || fn == sn) {
                root = nodeHash(proof[i], root);
                // A right-edge node with no sibling at these levels moves up without hashing.
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                root = nodeHash(root, proof[i]);
            }
            fn >>= 1;
            sn >>= 1;
        }
        ok = sn == 0;
    }
}
