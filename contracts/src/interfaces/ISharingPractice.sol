// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeliveryReceipt} from "../types/Ledger.sol";
import {Demand, DemandAnswer, Inspection, InspectionOutcome, InspectionStatus, ScoredSide} from "../types/Practice.sol";

/// @title The practice around the ledger: demand lists, mutual evaluation and sampling inspection
/// @notice Departments publish what data they need (a demand) and the addressed department answers it with a
/// catalogued resource or declines with a reason code (a demand addressed to no one is answered with a resource
/// only); the publisher may reject a resource answer that does not meet the demand (which reopens it) and
/// withdraw a demand still unanswered; after deliveries under an agreement each party scores
/// the other once per evaluation period; auditors inspect a sample of the deliveries of closed evaluation
/// periods, drawn from a block hash committed to in advance.
/// @dev Deployed beside the ledger and reading departments, resources, agreements, grants and deliveries through
/// the ledger's views (the ledger's runtime code is close to the size limit). The ledger's own errors
/// (`DepartmentUnauthorized`, `CatalogUnknownResource`, `AgreementUnknown`, ...) reach callers unchanged.
interface ISharingPractice {
    /// @notice Thrown when a demand id was never published.
    error PracticeUnknownDemand(uint64 demandId);
    /// @notice Thrown when answering a demand that was answered already.
    error PracticeDemandAnswered(uint64 demandId, DemandAnswer answer);
    /// @notice Thrown when a department answers a demand addressed to another, or its own demand.
    error PracticeNotAddressee(uint64 demandId, uint32 departmentId);
    /// @notice Thrown when a department declines a demand addressed to no department. Only an addressee
    /// declines: such a demand waits for whoever holds the data, and a decline by any department would close it
    /// for good, unmet, before the holder could answer.
    error PracticeOpenDemandDeclined(uint64 demandId, uint32 departmentId);
    /// @notice Thrown when a text hash is zero, a due date leaves the addressee less than a week (before the
    /// block's time plus 7 days), or an answer's fields do not fit its kind (a resource for a decline, no
    /// resource for a resource answer).
    error PracticeInvalidField(string field);
    /// @notice Thrown when a decline's reason code is not one of the declared codes 1..{declineCodeMax}.
    error PracticeUnknownDeclineCode(uint16 code);
    /// @notice Thrown when the resource answering a demand is not the answering department's, is not shared,
    /// or is not new (for `NewResource`) / not existing (for `ExistingResource`) at the demand's publication.
    error PracticeResourceUnfit(uint64 demandId, uint64 resourceId);
    /// @notice Thrown when a department other than a demand's publisher rejects an answer to it or withdraws it.
    error PracticeNotPublisher(uint64 demandId, uint32 departmentId);
    /// @notice Thrown when a publisher rejects the answer of a demand not answered with a resource: unanswered
    /// (`None`) or declined (a decline claims no resource to find unfit).
    error PracticeNotRejectable(uint64 demandId, DemandAnswer answer);
    /// @notice Thrown when a rejection's reason code is not one of the declared codes 1..{rejectionCodeMax}.
    error PracticeUnknownRejectionCode(uint16 code);
    /// @notice Thrown when a department answers again a demand addressed to no one whose publisher rejected
    /// its answer.
    error PracticeAnswererRejected(uint64 demandId, uint32 departmentId);
    /// @notice Thrown when answering, rejecting an answer of, or withdrawing a demand its publisher withdrew.
    error PracticeDemandWithdrawn(uint64 demandId);
    /// @notice Thrown when a score is outside 1..5.
    error PracticeScoreOutOfRange(uint8 score);
    /// @notice Thrown when the delivery offered as evidence was not made under the scored agreement.
    error PracticeNoDelivery(uint64 agreementId, bytes32 deliveryId);
    /// @notice Thrown when the receipt batch offered as evidence was not anchored under a grant of the scored
    /// agreement (or no receipt anchors serve this contract).
    error PracticeNoReceiptBatch(uint64 agreementId, uint64 grantId, uint64 firstSequence);
    /// @notice Thrown when the delivery or receipt batch offered as evidence was made more than one evaluation
    /// period ago (`deliveredAt < notBefore`): a period's score is about an exchange of that time, not one long
    /// past, which could otherwise vouch for a score every period for ever.
    error PracticeStaleEvidence(uint64 agreementId, uint64 deliveredAt, uint64 notBefore);
    /// @notice Thrown when a side of an agreement was scored already in the current period.
    error PracticeAlreadyScored(uint64 agreementId, uint32 period, ScoredSide side);
    /// @notice Thrown when the caller is not an auditor of the ledger.
    error PracticeNotAuditor(address account);
    /// @notice Thrown when an auditor records an outcome of an inspection another auditor opened and still audits.
    error PracticeNotInspectionAuditor(uint64 inspectionId, address auditor, address account);
    /// @notice Thrown when an inspection's period (not whole evaluation periods, or not over), sample size, seed
    /// block or deadline is unusable.
    error PracticeInvalidInspection(string field);
    /// @notice Thrown when an inspection id was never opened.
    error PracticeUnknownInspection(uint64 inspectionId);
    /// @notice Thrown when an inspection is not in the status the call needs.
    error PracticeInspectionStatus(uint64 inspectionId, InspectionStatus status);
    /// @notice Thrown when the seed block is not mined yet, or is older than the 256 blocks whose hash is known.
    error PracticeSeedUnavailable(uint64 inspectionId, uint64 seedBlock);
    /// @notice Thrown when a delivery's outcome was recorded already, is `None`, or is `NotPresented` before the
    /// deadline or for a sample drawn less than 3 days before it.
    error PracticeInvalidOutcome(uint64 inspectionId, bytes32 deliveryId, InspectionOutcome outcome);

    /// @notice A department published a demand.
    /// @param demandId Sequential id, starting at 1.
    /// @param publisher The department that needs the data.
    /// @param addressee The department asked for it (0: not known).
    /// @param textHash SHA-256 of the demand's canonical document (what, purpose, legal basis).
    /// @param dueBy Block time by which an answer is wanted (7 days after publication at the earliest).
    event DemandPublished(
        uint64 indexed demandId, uint32 indexed publisher, uint32 indexed addressee, bytes32 textHash, uint64 dueBy
    );
    /// @notice A department answered a demand.
    /// @param demandId The demand.
    /// @param answeredBy The answering department.
    /// @param answer New resource, existing resource or declined.
    /// @param resourceId The resource that meets the demand (0 for a decline).
    /// @param declineCode The reason code of a decline (0 otherwise).
    /// @param answerHash SHA-256 of the answer's canonical document (0: none).
    event DemandAnswered(
        uint64 indexed demandId,
        uint32 indexed answeredBy,
        DemandAnswer answer,
        uint64 resourceId,
        uint16 declineCode,
        bytes32 answerHash
    );
    /// @notice A demand's publisher rejected the resource it was answered with: the demand is open again.
    /// @param demandId The demand.
    /// @param answeredBy The department whose answer was rejected.
    /// @param resourceId The resource it answered with.
    /// @param reasonCode The rejection's reason code (1..{rejectionCodeMax}).
    /// @param reasonHash SHA-256 of the rejection's canonical document (0: none).
    event DemandAnswerRejected(
        uint64 indexed demandId, uint32 indexed answeredBy, uint64 resourceId, uint16 reasonCode, bytes32 reasonHash
    );
    /// @notice A demand's publisher withdrew it, unanswered: it takes no answer any more.
    /// @param demandId The demand.
    /// @param publisher Its publisher.
    event DemandWithdrawn(uint64 indexed demandId, uint32 indexed publisher);
    /// @notice A party of an agreement scored the other side.
    /// @param agreementId The agreement.
    /// @param period The evaluation period (`block.timestamp / evaluationPeriod`).
    /// @param side Which side was scored (the provider by its consumer, or the consumer by its provider).
    /// @param scorer The scoring department.
    /// @param timeliness The provider's timeliness (1-5; 0 when the consumer is scored).
    /// @param completeness The provider's completeness (1-5; 0 when the consumer is scored).
    /// @param accuracy The provider's accuracy (1-5; 0 when the consumer is scored).
    /// @param purposeCompliance The consumer's compliance with the agreed purpose (1-5; 0 when the provider is
    /// scored).
    /// @param commentHash SHA-256 of a comment kept off chain (0: none).
    event EvaluationRecorded(
        uint64 indexed agreementId,
        uint32 indexed period,
        ScoredSide indexed side,
        uint32 scorer,
        uint8 timeliness,
        uint8 completeness,
        uint8 accuracy,
        uint8 purposeCompliance,
        bytes32 commentHash
    );
    /// @notice An auditor opened a sampling inspection.
    /// @param inspectionId Sequential id, starting at 1.
    /// @param auditor The opening auditor.
    /// @param periodFrom First block time of the inspected period.
    /// @param periodTo End (exclusive) of the inspected period.
    /// @param sampleSize How many deliveries are drawn (all of them if the period has fewer).
    /// @param seedBlock The future block whose hash seeds the draw.
    /// @param presentBy Block time by which sampled providers must present (a sample drawn less than 3 days before
    /// it is never recorded `NotPresented`).
    event InspectionOpened(
        uint64 indexed inspectionId,
        address indexed auditor,
        uint64 periodFrom,
        uint64 periodTo,
        uint16 sampleSize,
        uint64 seedBlock,
        uint64 presentBy
    );
    /// @notice The seed of an inspection's sample was fixed.
    /// @param inspectionId The inspection.
    /// @param seed The hash of its seed block.
    event InspectionDrawn(uint64 indexed inspectionId, bytes32 seed);
    /// @notice An auditor recorded the outcome of one sampled delivery.
    /// @param inspectionId The inspection.
    /// @param deliveryId The sampled delivery.
    /// @param outcome Passed, failed, or not presented by the deadline.
    /// @param evidenceHash SHA-256 of the verification verdict (0: none).
    event InspectionOutcomeRecorded(
        uint64 indexed inspectionId, bytes32 indexed deliveryId, InspectionOutcome outcome, bytes32 evidenceHash
    );

    /// @notice Publishes a demand of the calling department.
    /// @dev Requirements: caller is an active department's signer; `textHash` non-zero; `dueBy` at least 7 days
    /// after the block's time (the due date marks a late addressee overdue, so the publisher cannot leave it no
    /// time to answer); `addressee` 0 or another department, active ({IDepartmentRegistry-DepartmentNotActive}
    /// for a suspended one, which could not answer). Emits {DemandPublished}.
    /// @return demandId The new demand's id.
    function publishDemand(bytes32 textHash, uint32 addressee, uint64 dueBy) external returns (uint64 demandId);

    /// @notice Answers a demand on behalf of the calling department.
    /// @dev Requirements: caller is an active department's signer, the demand's addressee (or, for a demand
    /// addressed to no one, any department but its publisher and those whose answer it rejected:
    /// {PracticeAnswererRejected}); the demand not withdrawn ({PracticeDemandWithdrawn}) nor answered yet.
    /// `NewResource` and `ExistingResource`: `resourceId` is the caller's, not `NotShared`, catalogued after
    /// (new) or before (existing) the demand's publication, `declineCode` 0. `Declined`: the demand has an
    /// addressee (else {PracticeOpenDemandDeclined}), `resourceId` 0, `declineCode` in 1..{declineCodeMax}.
    /// Emits {DemandAnswered}.
    function answerDemand(
        uint64 demandId,
        DemandAnswer answer,
        uint64 resourceId,
        uint16 declineCode,
        bytes32 answerHash
    ) external;

    /// @notice The publisher of a demand rejects the resource it was answered with, as not meeting the demand:
    /// the demand is unanswered again, and the rejected answer never counts as meeting it.
    /// @dev Requirements: caller is the demand's publisher's signer ({PracticeNotPublisher}), active; the
    /// demand not withdrawn ({PracticeDemandWithdrawn}) and answered with a resource, new or existing
    /// ({PracticeNotRejectable}); `reasonCode` in 1..{rejectionCodeMax} ({PracticeUnknownRejectionCode}).
    /// For a demand addressed to no one the rejected answerer may not answer it again
    /// ({PracticeAnswererRejected}); the addressee of a demand may. Emits {DemandAnswerRejected}.
    function rejectAnswer(uint64 demandId, uint16 reasonCode, bytes32 reasonHash) external;

    /// @notice The publisher of a demand withdraws it, unanswered: it no longer waits for an answer.
    /// @dev Requirements: caller is the demand's publisher's signer ({PracticeNotPublisher}), active; the
    /// demand not withdrawn ({PracticeDemandWithdrawn}) and not answered ({PracticeDemandAnswered}: a resource
    /// that does not meet it is rejected first). Emits {DemandWithdrawn}.
    function withdrawDemand(uint64 demandId) external;

    /// @notice The consumer of an agreement scores its provider, once per period.
    /// @dev Requirements: caller is the agreement's consumer's signer, active; each score in 1..5; the receipt
    /// of `deliveryId` (as recorded, see {IDeliveryLedger-receiptMatches}) was delivered under a grant of the
    /// agreement, at most one evaluation period ago ({PracticeStaleEvidence}); the provider not scored in this
    /// agreement's current period. Emits {EvaluationRecorded}.
    function scoreProvider(
        uint64 agreementId,
        uint8 timeliness,
        uint8 completeness,
        uint8 accuracy,
        bytes32 commentHash,
        bytes32 deliveryId,
        DeliveryReceipt calldata receipt
    ) external;

    /// @notice The provider of an agreement scores its consumer's compliance with the agreed purpose, once per
    /// period.
    /// @dev Requirements: as {scoreProvider}, with the provider's signer as caller. Emits {EvaluationRecorded}.
    function scoreConsumer(
        uint64 agreementId,
        uint8 purposeCompliance,
        bytes32 commentHash,
        bytes32 deliveryId,
        DeliveryReceipt calldata receipt
    ) external;

    /// @notice As {scoreProvider}, for an agreement delivered through receipts: the evidence is a batch of
    /// receipts anchored on {anchors} instead of a ledger delivery.
    /// @dev Requirements: as {scoreProvider}, except the evidence: the batch `(grantId, firstSequence)` is
    /// anchored ({IReceiptAnchors-batch}), at most one evaluation period ago ({PracticeStaleEvidence}), and
    /// `grantId` is a grant of the agreement. Emits {EvaluationRecorded}.
    function scoreProviderForBatch(
        uint64 agreementId,
        uint8 timeliness,
        uint8 completeness,
        uint8 accuracy,
        bytes32 commentHash,
        uint64 grantId,
        uint64 firstSequence
    ) external;

    /// @notice As {scoreConsumer}, with an anchored batch of receipts as evidence (see {scoreProviderForBatch}).
    /// @dev Requirements: as {scoreProviderForBatch}, with the provider's signer as caller. Emits
    /// {EvaluationRecorded}.
    function scoreConsumerForBatch(
        uint64 agreementId,
        uint8 purposeCompliance,
        bytes32 commentHash,
        uint64 grantId,
        uint64 firstSequence
    ) external;

    /// @notice Opens a sampling inspection of the deliveries recorded in `[periodFrom, periodTo)`: one or more
    /// whole evaluation periods.
    /// @dev Requirements: caller holds the ledger's auditor role; `periodFrom < periodTo <= block.timestamp`
    /// (a closed period: its deliveries can no longer change); both bounds multiples of {evaluationPeriod}
    /// (else {PracticeInvalidInspection} naming the bound: a period is closed before it is inspected, so bounds
    /// of the auditor's choosing would choose its population, down to a single delivery); `sampleSize > 0`;
    /// `seedBlock > block.number`; `presentBy > block.timestamp`. Emits {InspectionOpened}.
    /// @return inspectionId The new inspection's id.
    function openInspection(
        uint64 periodFrom,
        uint64 periodTo,
        uint16 sampleSize,
        uint64 seedBlock,
        uint64 presentBy
    ) external returns (uint64 inspectionId);

    /// @notice Fixes an inspection's seed: the hash of its seed block. Anyone may call it, so an auditor who
    /// dislikes the sample it can compute off chain cannot hold the draw back and open another in its place
    /// unseen: an inspection not drawn while its seed block is among the last 256 is `Expired` for good.
    /// @dev Requirements: the inspection is open; its seed block is mined and among the last 256 blocks
    /// ({PracticeSeedUnavailable} before, {PracticeInspectionStatus} with `Expired` after). Emits
    /// {InspectionDrawn}.
    function drawSample(uint64 inspectionId) external returns (bytes32 seed);

    /// @notice Records the outcome of one sampled delivery: a delivery recorded on the ledger, or a receipt
    /// anchored in a batch, named by its slot (`bytes32(uint256(grantId) << 64 | sequence)`: its first 16
    /// bytes are zero, which no delivery id's are, a delivery id starting with its provider's department id).
    /// @dev Requirements: caller holds the auditor role and opened the inspection, or its opener no longer holds
    /// the role ({PracticeNotInspectionAuditor}: an outcome is final, so another auditor's sent first would stand
    /// in place of the opener's; an opener governance dismissed leaves the rest to any auditor); the inspection
    /// is drawn; the delivery was recorded on
    /// the ledger, or the receipt's sequence is below its grant's {IReceiptAnchors-nextSequence} (a grant's
    /// batches are contiguous, so it is in an anchored batch) — else {IDeliveryLedger-DeliveryUnknown}; its
    /// outcome not recorded before; `outcome` not `None`, and `NotPresented` only after the inspection's
    /// `presentBy` and for an inspection drawn 3 days before it at the latest (drawn later, its sampled
    /// providers learned their sample with no time left to present: the deadline is the auditor's to set).
    /// Membership of the sample is checked off chain (`verifier/sampling.py`, derivation
    /// {sampleVersion}): the population lives in the ledger's and the anchors' logs. Emits
    /// {InspectionOutcomeRecorded}.
    function recordOutcome(uint64 inspectionId, bytes32 deliveryId, InspectionOutcome outcome, bytes32 evidenceHash)
        external;

    /// @notice A demand; reverts with {PracticeUnknownDemand} for an unknown id.
    function demand(uint64 demandId) external view returns (Demand memory);

    /// @notice Number of demands published so far (ids run from 1 to this value).
    function demandCount() external view returns (uint64);

    /// @notice The highest declared decline reason code (codes run from 1 to this value).
    function declineCodeMax() external pure returns (uint16);

    /// @notice The highest declared rejection reason code (codes run from 1 to this value).
    function rejectionCodeMax() external pure returns (uint16);

    /// @notice Block time a demand was withdrawn at (0: not withdrawn); reverts with {PracticeUnknownDemand}
    /// for an unknown id.
    function demandWithdrawnAt(uint64 demandId) external view returns (uint64);

    /// @notice Whether the publisher of `demandId`, addressed to no one, rejected an answer of `departmentId`
    /// (which may then not answer it again); reverts with {PracticeUnknownDemand} for an unknown id.
    function answerRejected(uint64 demandId, uint32 departmentId) external view returns (bool);

    /// @notice Length of an evaluation period in seconds.
    function evaluationPeriod() external view returns (uint64);

    /// @notice Whether `side` of `agreementId` was scored in `period`.
    function scored(uint64 agreementId, uint32 period, ScoredSide side) external view returns (bool);

    /// @notice An inspection; reverts with {PracticeUnknownInspection} for an unknown id. Its status reads
    /// `Expired` once no later block can draw it (the head is 256 blocks past its seed block, undrawn).
    function inspection(uint64 inspectionId) external view returns (Inspection memory);

    /// @notice Number of inspections opened so far.
    function inspectionCount() external view returns (uint64);

    /// @notice The recorded outcome of a delivery in an inspection (`None`: not recorded).
    function outcome(uint64 inspectionId, bytes32 deliveryId) external view returns (InspectionOutcome);

    /// @notice The ledger whose departments, catalog, agreements and deliveries this contract reads.
    function ledger() external view returns (address);

    /// @notice The receipt anchors beside the same ledger whose batches are evidence of delivery (zero: none).
    function anchors() external view returns (address);

    /// @notice The version of the sample derivation this contract's inspections follow (`verifier/sampling.py`):
    /// 3, whose population holds the receipts of the batches anchored in the period beside the ledger's
    /// deliveries, drawn stratified by provider department so that no provider's batches crowd out another's
    /// deliveries (2: the same population drawn as one pool). A contract without this function follows
    /// version 1: the ledger's deliveries alone.
    function sampleVersion() external pure returns (uint8);
}
