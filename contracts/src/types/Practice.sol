// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice How the addressed department answered a demand. `None`: not answered yet.
/// @dev `NewResource`: a resource catalogued after the demand was published meets it; `ExistingResource`: a
/// resource already in the catalog when the demand was published meets it; `Declined`: with a reason code.
enum DemandAnswer {
    None,
    NewResource,
    ExistingResource,
    Declined
}

/// @notice One entry of a department's demand list. Only hashes of its texts are kept on chain.
/// @dev `addressee` 0 means the publisher did not know who holds the data: any other department may answer it
/// with a resource, none may decline it (a decline by a department never asked would close it unmet). The
/// answer fields hold the answer standing: a resource answer the publisher rejected is cleared (its record is
/// the `DemandAnswerRejected` event), and the demand waits for another. A withdrawal is kept beside the
/// record (`demandWithdrawnAt`).
/// `catalogSize` is the catalog's resource count at publication, which tells a new resource (id above it) from
/// an existing one.
struct Demand {
    uint32 publisher;
    uint32 addressee;
    uint64 publishedAt;
    uint64 dueBy;
    uint64 catalogSize;
    bytes32 textHash;
    DemandAnswer answer;
    uint32 answeredBy;
    uint64 answeredAt;
    uint64 resourceId;
    uint16 declineCode;
    bytes32 answerHash;
}

/// @notice Which side of an agreement a score is about.
enum ScoredSide {
    Provider,
    Consumer
}

/// @notice Where a sampling inspection stands: opened (the seed block is still in the future) or drawn.
enum InspectionStatus {
    None,
    Open,
    Drawn,
    /// Read only, never stored: an open inspection whose seed block left the 256 blocks whose hash the EVM
    /// knows. It can never be drawn (its seed is out of reach for good), so no later draw can re-roll it.
    Expired
}

/// @notice The outcome of one sampled delivery of an inspection.
enum InspectionOutcome {
    None,
    Passed,
    Failed,
    NotPresented
}

/// @notice A sampling inspection over the deliveries recorded in `[periodFrom, periodTo)` (block time).
/// @dev The sample is drawn off chain from `seed` (the hash of block `seedBlock`, committed to before it
/// existed) by the derivation in `verifier/sampling.py`; the chain only keeps the seed and the outcomes.
struct Inspection {
    address auditor;
    InspectionStatus status;
    uint16 sampleSize;
    uint64 periodFrom;
    uint64 periodTo;
    uint64 seedBlock;
    uint64 presentBy;
    bytes32 seed;
}
