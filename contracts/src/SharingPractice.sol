// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {DepartmentRegistry} from "./DepartmentRegistry.sol";
import {ISharingPractice} from "./interfaces/ISharingPractice.sol";
import {IDataExchangeLedger} from "./interfaces/IDataExchangeLedger.sol";
import {IDeliveryLedger} from "./interfaces/IDeliveryLedger.sol";
import {IDepartmentRegistry} from "./interfaces/IDepartmentRegistry.sol";
import {IReceiptAnchors} from "./interfaces/IReceiptAnchors.sol";
import {Agreement, DeliveryReceipt, DepartmentStatus, Resource, ShareType} from "./types/Ledger.sol";
import {BatchStatus, ReceiptBatch} from "./types/Receipts.sol";
import {
    Demand, DemandAnswer, Inspection, InspectionOutcome, InspectionStatus, ScoredSide
} from "./types/Practice.sol";

/// @title Demand lists, mutual evaluation and sampling inspection beside one ledger
/// @notice See {ISharingPractice}. One deployment serves one ledger, fixed at construction.
/// @dev A contract of its own rather than a ledger module: the ledger's runtime code is close to the 24,576-byte
/// limit. Every check of a party goes through the ledger's views, so a suspension or re-key on the ledger
/// applies here at once.
contract SharingPractice is ISharingPractice {
    /// @dev The decline reason codes are declared once, in `node/types.py` (`DeclineReason`); a test holds
    /// this bound to that table.
    uint16 private constant DECLINE_CODE_MAX = 5;
    /// @dev The reason codes a publisher rejects an answer with are declared once, in `node/types.py`
    /// (`RejectionReason`); a test holds this bound to that table.
    uint16 private constant REJECTION_CODE_MAX = 4;
    uint8 private constant SCORE_MAX = 5;
    /// @dev The least time a demand's addressee has to answer: a due date marks the addressee late on its
    /// scorecard, so it is not the publisher's alone to set (one due a second after publication made every
    /// demand addressed to a department overdue before it could answer). A week holds five working days
    /// whichever day a demand is published; `node/types.py` (`DEMAND_NOTICE_S`) holds the same figure.
    uint64 private constant DEMAND_NOTICE = 7 days;
    /// @dev The least time a sampled provider has to present, from the draw that tells it its sample: a sample
    /// drawn later than this before `presentBy` is never `NotPresented` (an auditor who set `presentBy` a
    /// second after its seed block's time had every sampled provider miss a deadline it could not meet). Three
    /// days hold a working day whichever day the sample is drawn; `node/types.py` (`PRESENTATION_NOTICE_S`)
    /// holds the same figure.
    uint64 private constant PRESENTATION_NOTICE = 3 days;
    /// @dev BLOCKHASH answers for the 256 blocks before the current one only.
    uint256 private constant BLOCKHASH_WINDOW = 256;
    /// The sample derivation of `verifier/sampling.py` that inspections here follow (see {sampleVersion}).
    uint8 private constant SAMPLE_VERSION = 3;

    IDataExchangeLedger private immutable _ledger;
    /// @dev Zero where the ledger has no receipt anchors: then only ledger deliveries are evidence.
    IReceiptAnchors private immutable _anchors;
    bytes32 private immutable _auditorRole;
    uint64 private immutable _evaluationPeriod;

    mapping(uint64 demandId => Demand) private _demands;
    uint64 private _demandCount;
    /// @dev Beside the `Demand` record rather than in it: the record's layout is the `demand` view's return
    /// type, which a service reading a contract deployed by an older dxl decodes as it was.
    mapping(uint64 demandId => uint64) private _withdrawnAt;
    /// @dev The departments whose answer to a demand addressed to no one its publisher rejected: they may not
    /// answer it again (see {rejectAnswer}). Never written for an addressed demand.
    mapping(uint64 demandId => mapping(uint32 departmentId => bool)) private _rejected;
    mapping(uint64 agreementId => mapping(uint32 period => mapping(ScoredSide side => bool))) private _scored;
    mapping(uint64 inspectionId => Inspection) private _inspections;
    uint64 private _inspectionCount;
    mapping(uint64 inspectionId => mapping(bytes32 deliveryId => InspectionOutcome)) private _outcomes;
    /// @dev Inspections drawn less than {PRESENTATION_NOTICE} before their `presentBy` (or after it): no provider
    /// had the time to present, so none failed to. Written only for such a draw, which the auditor chose by a
    /// seed block that late or a deadline that soon.
    mapping(uint64 inspectionId => bool) private _drawnTooLate;

    /// @param ledger_ The DataExchangeLedger whose departments, catalog, agreements and deliveries are read.
    /// @param evaluationPeriod_ Length of an evaluation period in seconds (each side of an agreement is scored
    /// at most once per period).
    /// @param anchors_ The ReceiptAnchors beside the same ledger, whose anchored batches are deliveries too
    /// (zero: none).
    constructor(IDataExchangeLedger ledger_, uint64 evaluationPeriod_, IReceiptAnchors anchors_) {
        if (evaluationPeriod_ == 0) revert PracticeInvalidField("evaluationPeriod");
        if (address(anchors_) != address(0) && anchors_.ledger() != address(ledger_)) {
            revert PracticeInvalidField("anchors");
        }
        _ledger = ledger_;
        _anchors = anchors_;
        _auditorRole = DepartmentRegistry(address(ledger_)).AUDITOR_ROLE();
        _evaluationPeriod = evaluationPeriod_;
    }

    // ---------------------------------------------------------------- demands

    /// @inheritdoc ISharingPractice
    function publishDemand(bytes32 textHash, uint32 addressee, uint64 dueBy) external returns (uint64 demandId) {
        uint32 publisher = _callerDepartment();
        if (textHash == bytes32(0)) revert PracticeInvalidField("textHash");
        if (dueBy < block.timestamp + DEMAND_NOTICE) revert PracticeInvalidField("dueBy");
        if (addressee != 0) {
            if (addressee == publisher) revert PracticeInvalidField("addressee");
            (, DepartmentStatus status) = _ledger.departmentSigner(addressee);
            if (status == DepartmentStatus.None) revert IDepartmentRegistry.DepartmentUnknown(addressee);
            // A suspended department cannot answer: the demand would be overdue and unmet on its card before
            // it could, however soon it is reinstated.
            if (status != DepartmentStatus.Active) revert IDepartmentRegistry.DepartmentNotActive(addressee);
        }
        demandId = ++_demandCount;
        Demand storage d = _demands[demandId];
        d.publisher = publisher;
        d.addressee = addressee;
        d.publishedAt = uint64(block.timestamp);
        d.dueBy = dueBy;
        d.catalogSize = _ledger.resourceCount();
        d.textHash = textHash;
        emit DemandPublished(demandId, publisher, addressee, textHash, dueBy);
    }

    /// @inheritdoc ISharingPractice
    function answerDemand(
        uint64 demandId,
        DemandAnswer answer,
        uint64 resourceId,
        uint16 declineCode,
        bytes32 answerHash
    ) external {
        uint32 me = _callerDepartment();
        Demand storage d = _openDemand(demandId);
        if (d.answer != DemandAnswer.None) revert PracticeDemandAnswered(demandId, d.answer);
        if (d.addressee != 0 ? me != d.addressee : me == d.publisher) revert PracticeNotAddressee(demandId, me);
        if (d.addressee == 0 && _rejected[demandId][me]) revert PracticeAnswererRejected(demandId, me);
        if (answer == DemandAnswer.Declined) {
            if (d.addressee == 0) revert PracticeOpenDemandDeclined(demandId, me);
            if (resourceId != 0) revert PracticeInvalidField("resourceId");
            if (declineCode == 0 || declineCode > DECLINE_CODE_MAX) revert PracticeUnknownDeclineCode(declineCode);
        } else if (answer == DemandAnswer.NewResource || answer == DemandAnswer.ExistingResource) {
            if (declineCode != 0) revert PracticeInvalidField("declineCode");
            Resource memory r = _ledger.resource(resourceId);
            bool isNew = resourceId > d.catalogSize;
            if (
                r.owner != me || r.shareType == ShareType.NotShared
                    || isNew != (answer == DemandAnswer.NewResource)
            ) revert PracticeResourceUnfit(demandId, resourceId);
        } else {
            revert PracticeInvalidField("answer");
        }
        d.answer = answer;
        d.answeredBy = me;
        d.answeredAt = uint64(block.timestamp);
        d.resourceId = resourceId;
        d.declineCode = declineCode;
        d.answerHash = answerHash;
        emit DemandAnswered(demandId, me, answer, resourceId, declineCode, answerHash);
    }

    /// @inheritdoc ISharingPractice
    /// @dev The rejected answerer of a demand addressed to no one is barred from it: anyone may answer such a
    /// demand, so a department answering it again with another unfit resource as soon as it reopened would
    /// keep it from the department that holds the data, rejection after rejection. The addressee of a demand
    /// is not barred: it is the only department that may answer, and its second answer may well be the right
    /// one (a publisher who no longer expects one withdraws the demand).
    function rejectAnswer(uint64 demandId, uint16 reasonCode, bytes32 reasonHash) external {
        Demand storage d = _publishersDemand(demandId);
        DemandAnswer answer = d.answer;
        // A decline claims no resource: there is nothing to find unfit, and the decline's reason code is the
        // addressee's to give. Unanswered, there is nothing to reject.
        if (answer != DemandAnswer.NewResource && answer != DemandAnswer.ExistingResource) {
            revert PracticeNotRejectable(demandId, answer);
        }
        if (reasonCode == 0 || reasonCode > REJECTION_CODE_MAX) revert PracticeUnknownRejectionCode(reasonCode);
        uint32 answeredBy = d.answeredBy;
        uint64 resourceId = d.resourceId;
        if (d.addressee == 0) _rejected[demandId][answeredBy] = true;
        d.answer = DemandAnswer.None;
        d.answeredBy = 0;
        d.answeredAt = 0;
        d.resourceId = 0;
        d.answerHash = bytes32(0);
        emit DemandAnswerRejected(demandId, answeredBy, resourceId, reasonCode, reasonHash);
    }

    /// @inheritdoc ISharingPractice
    function withdrawDemand(uint64 demandId) external {
        Demand storage d = _publishersDemand(demandId);
        // An answered demand is the answerer's record as much as the publisher's: one met stays met, one
        // declined stays declined. An unfit resource is rejected first.
        if (d.answer != DemandAnswer.None) revert PracticeDemandAnswered(demandId, d.answer);
        _withdrawnAt[demandId] = uint64(block.timestamp);
        emit DemandWithdrawn(demandId, d.publisher);
    }

    // ---------------------------------------------------------------- evaluation

    /// @inheritdoc ISharingPractice
    function scoreProvider(
        uint64 agreementId,
        uint8 timeliness,
        uint8 completeness,
        uint8 accuracy,
        bytes32 commentHash,
        bytes32 deliveryId,
        DeliveryReceipt calldata receipt
    ) external {
        uint32 scorer = _providerScorer(agreementId, timeliness, completeness, accuracy);
        _requireDelivery(agreementId, deliveryId, receipt);
        _recordProviderScore(agreementId, scorer, timeliness, completeness, accuracy, commentHash);
    }

    /// @inheritdoc ISharingPractice
    function scoreProviderForBatch(
        uint64 agreementId,
        uint8 timeliness,
        uint8 completeness,
        uint8 accuracy,
        bytes32 commentHash,
        uint64 grantId,
        uint64 firstSequence
    ) external {
        uint32 scorer = _providerScorer(agreementId, timeliness, completeness, accuracy);
        _requireBatch(agreementId, grantId, firstSequence);
        _recordProviderScore(agreementId, scorer, timeliness, completeness, accuracy, commentHash);
    }

    /// @inheritdoc ISharingPractice
    function scoreConsumer(
        uint64 agreementId,
        uint8 purposeCompliance,
        bytes32 commentHash,
        bytes32 deliveryId,
        DeliveryReceipt calldata receipt
    ) external {
        uint32 scorer = _consumerScorer(agreementId, purposeCompliance);
        _requireDelivery(agreementId, deliveryId, receipt);
        _recordConsumerScore(agreementId, scorer, purposeCompliance, commentHash);
    }

    /// @inheritdoc ISharingPractice
    function scoreConsumerForBatch(
        uint64 agreementId,
        uint8 purposeCompliance,
        bytes32 commentHash,
        uint64 grantId,
        uint64 firstSequence
    ) external {
        uint32 scorer = _consumerScorer(agreementId, purposeCompliance);
        _requireBatch(agreementId, grantId, firstSequence);
        _recordConsumerScore(agreementId, scorer, purposeCompliance, commentHash);
    }

    // ---------------------------------------------------------------- inspection

    /// @inheritdoc ISharingPractice
    function openInspection(
        uint64 periodFrom,
        uint64 periodTo,
        uint16 sampleSize,
        uint64 seedBlock,
        uint64 presentBy
    ) external returns (uint64 inspectionId) {
        _requireAuditor();
        // Whole evaluation periods only, on the grid fixed at deployment: the period is closed when it is
        // opened, so an auditor choosing its bounds to the second chose its population, and a period around
        // one delivery made that delivery the whole "random" sample (or one just short of it spared it).
        // On the grid, the least an inspection covers is every delivery of one period, whoever provided it.
        if (periodFrom >= periodTo || periodFrom % _evaluationPeriod != 0) {
            revert PracticeInvalidInspection("periodFrom");
        }
        if (periodTo % _evaluationPeriod != 0 || periodTo > block.timestamp) {
            revert PracticeInvalidInspection("periodTo");
        }
        if (sampleSize == 0) revert PracticeInvalidInspection("sampleSize");
        if (seedBlock <= block.number) revert PracticeInvalidInspection("seedBlock");
        if (presentBy <= block.timestamp) revert PracticeInvalidInspection("presentBy");
        inspectionId = ++_inspectionCount;
        _inspections[inspectionId] = Inspection({
            auditor: msg.sender,
            status: InspectionStatus.Open,
            sampleSize: sampleSize,
            periodFrom: periodFrom,
            periodTo: periodTo,
            seedBlock: seedBlock,
            presentBy: presentBy,
            seed: bytes32(0)
        });
        emit InspectionOpened(inspectionId, msg.sender, periodFrom, periodTo, sampleSize, seedBlock, presentBy);
    }

    /// @inheritdoc ISharingPractice
    function drawSample(uint64 inspectionId) external returns (bytes32 seed) {
        Inspection storage i = _knownInspection(inspectionId);
        if (i.status != InspectionStatus.Open) revert PracticeInspectionStatus(inspectionId, i.status);
        // blockhash is zero for the current block, future blocks and blocks older than 256.
        seed = blockhash(i.seedBlock);
        if (seed == bytes32(0)) {
            if (_expired(i)) revert PracticeInspectionStatus(inspectionId, InspectionStatus.Expired);
            revert PracticeSeedUnavailable(inspectionId, i.seedBlock);
        }
        i.seed = seed;
        i.status = InspectionStatus.Drawn;
        if (block.timestamp + PRESENTATION_NOTICE > i.presentBy) _drawnTooLate[inspectionId] = true;
        emit InspectionDrawn(inspectionId, seed);
    }

    /// @inheritdoc ISharingPractice
    function recordOutcome(uint64 inspectionId, bytes32 deliveryId, InspectionOutcome outcome_, bytes32 evidenceHash)
        external
    {
        _requireAuditor();
        Inspection storage i = _knownInspection(inspectionId);
        // Outcomes are final: another auditor recording first would stand in place of the opener's outcome. An
        // opener governance dismissed leaves its inspection to the auditors there are.
        address opener = i.auditor;
        if (opener != msg.sender && _isAuditor(opener)) {
            revert PracticeNotInspectionAuditor(inspectionId, opener, msg.sender);
        }
        if (i.status != InspectionStatus.Drawn) {
            revert PracticeInspectionStatus(inspectionId, _expired(i) ? InspectionStatus.Expired : i.status);
        }
        _requireDrawable(deliveryId);
        if (
            outcome_ == InspectionOutcome.None || _outcomes[inspectionId][deliveryId] != InspectionOutcome.None
                || (
                    outcome_ == InspectionOutcome.NotPresented
                        && (block.timestamp <= i.presentBy || _drawnTooLate[inspectionId])
                )
        ) revert PracticeInvalidOutcome(inspectionId, deliveryId, outcome_);
        _outcomes[inspectionId][deliveryId] = outcome_;
        emit InspectionOutcomeRecorded(inspectionId, deliveryId, outcome_, evidenceHash);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISharingPractice
    function demand(uint64 demandId) external view returns (Demand memory) {
        return _knownDemand(demandId);
    }

    /// @inheritdoc ISharingPractice
    function demandCount() external view returns (uint64) {
        return _demandCount;
    }

    /// @inheritdoc ISharingPractice
    function declineCodeMax() external pure returns (uint16) {
        return DECLINE_CODE_MAX;
    }

    /// @inheritdoc ISharingPractice
    function rejectionCodeMax() external pure returns (uint16) {
        return REJECTION_CODE_MAX;
    }

    /// @inheritdoc ISharingPractice
    function demandWithdrawnAt(uint64 demandId) external view returns (uint64) {
        _knownDemand(demandId);
        return _withdrawnAt[demandId];
    }

    /// @inheritdoc ISharingPractice
    function answerRejected(uint64 demandId, uint32 departmentId) external view returns (bool) {
        _knownDemand(demandId);
        return _rejected[demandId][departmentId];
    }

    /// @inheritdoc ISharingPractice
    function evaluationPeriod() external view returns (uint64) {
        return _evaluationPeriod;
    }

    /// @inheritdoc ISharingPractice
    function scored(uint64 agreementId, uint32 period, ScoredSide side) external view returns (bool) {
        return _scored[agreementId][period][side];
    }

    /// @inheritdoc ISharingPractice
    function inspection(uint64 inspectionId) external view returns (Inspection memory i) {
        Inspection storage stored = _knownInspection(inspectionId);
        i = stored;
        if (_expired(stored)) i.status = InspectionStatus.Expired;
    }

    /// @inheritdoc ISharingPractice
    function inspectionCount() external view returns (uint64) {
        return _inspectionCount;
    }

    /// @inheritdoc ISharingPractice
    function outcome(uint64 inspectionId, bytes32 deliveryId) external view returns (InspectionOutcome) {
        return _outcomes[inspectionId][deliveryId];
    }

    /// @inheritdoc ISharingPractice
    function ledger() external view returns (address) {
        return address(_ledger);
    }

    /// @inheritdoc ISharingPractice
    function anchors() external view returns (address) {
        return address(_anchors);
    }

    /// @inheritdoc ISharingPractice
    function sampleVersion() external pure returns (uint8) {
        return SAMPLE_VERSION;
    }

    // ---------------------------------------------------------------- internals

    /// The scores in range and the caller the agreement's consumer: the consumer's department id.
    function _providerScorer(uint64 agreementId, uint8 timeliness, uint8 completeness, uint8 accuracy)
        private
        view
        returns (uint32 consumer)
    {
        _checkScore(timeliness);
        _checkScore(completeness);
        _checkScore(accuracy);
        consumer = _ledger.agreement(agreementId).consumer;
        _requireCallerIs(consumer);
    }

    /// The score in range and the caller the agreement's provider: the provider's department id.
    function _consumerScorer(uint64 agreementId, uint8 purposeCompliance) private view returns (uint32 provider) {
        _checkScore(purposeCompliance);
        provider = _ledger.agreement(agreementId).provider;
        _requireCallerIs(provider);
    }

    function _recordProviderScore(
        uint64 agreementId,
        uint32 consumer,
        uint8 timeliness,
        uint8 completeness,
        uint8 accuracy,
        bytes32 commentHash
    ) private {
        uint32 period = _markScored(agreementId, ScoredSide.Provider);
        emit EvaluationRecorded(
            agreementId, period, ScoredSide.Provider, consumer, timeliness, completeness, accuracy, 0, commentHash
        );
    }

    function _recordConsumerScore(uint64 agreementId, uint32 provider, uint8 purposeCompliance, bytes32 commentHash)
        private
    {
        uint32 period = _markScored(agreementId, ScoredSide.Consumer);
        emit EvaluationRecorded(agreementId, period, ScoredSide.Consumer, provider, 0, 0, 0, purposeCompliance, commentHash);
    }

    /// A delivery recorded on the ledger (its receipt as recorded) under a grant of the agreement, lately.
    function _requireDelivery(uint64 agreementId, bytes32 deliveryId, DeliveryReceipt calldata receipt) private view {
        if (!_ledger.receiptMatches(deliveryId, receipt) || _ledger.grant(receipt.grantId).agreementId != agreementId)
        {
            revert PracticeNoDelivery(agreementId, deliveryId);
        }
        _requireRecent(agreementId, receipt.recordedAt);
    }

    /// Evidence of the period scored: made at most one evaluation period ago. A delivery at a period's end is
    /// still evidence early in the next; one long past no longer vouches for a score.
    function _requireRecent(uint64 agreementId, uint64 deliveredAt) private view {
        uint64 notBefore = block.timestamp > _evaluationPeriod ? uint64(block.timestamp) - _evaluationPeriod : 0;
        if (deliveredAt < notBefore) revert PracticeStaleEvidence(agreementId, deliveredAt, notBefore);
    }

    /// Deliveries at volume: a batch of receipts anchored (acknowledged or not) under a grant of the agreement.
    /// The anchors checked the grant, both parties and the resource when they took it, as `recordDelivery`
    /// checks a single delivery; a batch is never removed, so it stays evidence as a recorded delivery does.
    function _requireBatch(uint64 agreementId, uint64 grantId, uint64 firstSequence) private view {
        if (address(_anchors) == address(0)) revert PracticeNoReceiptBatch(agreementId, grantId, firstSequence);
        ReceiptBatch memory b = _anchors.batch(grantId, firstSequence);
        if (b.status == BatchStatus.None || _ledger.grant(grantId).agreementId != agreementId) {
            revert PracticeNoReceiptBatch(agreementId, grantId, firstSequence);
        }
        _requireRecent(agreementId, b.anchoredAt);
    }

    /// What an inspection may draw: a delivery the ledger recorded, or a receipt slot (first 16 bytes zero)
    /// whose sequence a grant's contiguous anchored batches cover.
    function _requireDrawable(bytes32 deliveryId) private view {
        uint256 key = uint256(deliveryId);
        bool known = key >> 128 == 0
            ? address(_anchors) != address(0) && uint64(key) < _anchors.nextSequence(uint64(key >> 64))
            : uint8(_ledger.deliveryStatus(deliveryId)) != 0;
        if (!known) revert IDeliveryLedger.DeliveryUnknown(deliveryId);
    }

    function _markScored(uint64 agreementId, ScoredSide side) private returns (uint32 period) {
        period = uint32(block.timestamp / _evaluationPeriod);
        if (_scored[agreementId][period][side]) revert PracticeAlreadyScored(agreementId, period, side);
        _scored[agreementId][period][side] = true;
    }

    function _checkScore(uint8 score) private pure {
        if (score == 0 || score > SCORE_MAX) revert PracticeScoreOutOfRange(score);
    }

    function _knownDemand(uint64 demandId) private view returns (Demand storage d) {
        d = _demands[demandId];
        if (d.publisher == 0) revert PracticeUnknownDemand(demandId);
    }

    /// A known demand not withdrawn: withdrawn, it takes no answer, rejection or second withdrawal.
    function _openDemand(uint64 demandId) private view returns (Demand storage d) {
        d = _knownDemand(demandId);
        if (_withdrawnAt[demandId] != 0) revert PracticeDemandWithdrawn(demandId);
    }

    /// A known demand not withdrawn, and the caller its publisher's signer, active.
    function _publishersDemand(uint64 demandId) private view returns (Demand storage d) {
        uint32 me = _callerDepartment();
        d = _openDemand(demandId);
        if (d.publisher != me) revert PracticeNotPublisher(demandId, me);
    }

    function _knownInspection(uint64 inspectionId) private view returns (Inspection storage i) {
        i = _inspections[inspectionId];
        if (i.status == InspectionStatus.None) revert PracticeUnknownInspection(inspectionId);
    }

    /// An open inspection no later block can draw: a block after `seedBlock + 256` no longer sees its seed
    /// block's hash. Read at the head (`eth_call`), it says whether a draw sent now can still succeed; in the
    /// block `seedBlock + 256` itself the draw still succeeds (it reads the hash before asking this). Stored
    /// nowhere, so expiry costs no write and no one has to send it.
    function _expired(Inspection storage i) private view returns (bool) {
        return i.status == InspectionStatus.Open && block.number >= i.seedBlock + BLOCKHASH_WINDOW;
    }

    /// The active department whose signer is the caller.
    function _callerDepartment() private view returns (uint32 id) {
        id = _ledger.departmentOf(msg.sender);
        if (id == 0) revert IDepartmentRegistry.DepartmentUnauthorized(msg.sender);
        _requireCallerIs(id);
    }

    function _requireCallerIs(uint32 id) private view {
        (address signer, DepartmentStatus status) = _ledger.departmentSigner(id);
        if (signer != msg.sender) revert IDepartmentRegistry.DepartmentUnauthorized(msg.sender);
        if (status != DepartmentStatus.Active) revert IDepartmentRegistry.DepartmentNotActive(id);
    }

    function _requireAuditor() private view {
        if (!_isAuditor(msg.sender)) revert PracticeNotAuditor(msg.sender);
    }

    function _isAuditor(address account) private view returns (bool) {
        return IAccessControl(address(_ledger)).hasRole(_auditorRole, account);
    }
}
