// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SharingTerms} from "../types/Ledger.sol";

/// @title EIP-712 struct hash of the sharing terms both departments sign
library SharingTermsHash {
    bytes32 internal constant TYPEHASH = keccak256(
        "SharingTerms(uint64 requestId,uint64 resourceId,uint32 provider,uint32 consumer,bytes32 purposeHash,"
        "bytes32 scopeHash,bytes32 termsHash,bytes32 metadataHash,bytes32 schemaHash,uint8 sensitivity,"
        "uint64 validFrom,uint64 validUntil,uint32 providerKeyEpoch,uint32 consumerKeyEpoch,uint64 deadline)"
    );

    function hash(SharingTerms calldata terms) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                TYPEHASH,
                terms.requestId,
                terms.resourceId,
                terms.provider,
                terms.consumer,
                terms.purposeHash,
                terms.scopeHash,
                terms.termsHash,
                terms.metadataHash,
                terms.schemaHash,
                terms.sensitivity,
                terms.validFrom,
                terms.validUntil,
                terms.providerKeyEpoch,
                terms.consumerKeyEpoch,
                terms.deadline
            )
        );
    }
}
