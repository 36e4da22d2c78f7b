"""The one table from the ledger's Solidity errors to dxl's stable error codes.

The chain client names a revert by it (:class:`node.chain.LedgerRevertError` ``.code``, what ``dxl`` prints
with ``--json``) and the API answers with the same code (``api.errors``, which gives each code its HTTP
status), so a caller sees one code for one failure whichever way it came. ``tests/api/test_error_table.py``
holds the table to the compiled ABIs: every error they declare has a row, every row names a declared error,
and every code is one the API documents. Add the row in the same change that adds the error.

:data:`REVERT_MESSAGES` is the sentence a person reads for each of those errors (:func:`describe_revert`),
built from the error's arguments; the chain client's exception and the API's answer both take it from here,
and the same test holds it to the ABIs: every error they declare has a sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from verifier.eth import keccak, to_checksum_address
from verifier.text import counted, iso_time

#: The code of a revert whose error is not in :data:`REVERT_CODES` (or that carries no decodable error).
UNLISTED = "LEDGER_REJECTED"

#: Solidity custom error name -> stable code.
REVERT_CODES: Mapping[str, str] = {
    "CatalogUnknownResource": "RESOURCE_NOT_FOUND",
    "CatalogNotOwner": "NOT_RESOURCE_OWNER",
    "CatalogInvalidMetadata": "INVALID_METADATA",
    "RequestResourceNotShared": "RESOURCE_NOT_SHARED",
    "RequestOwnResource": "OWN_RESOURCE",
    "RequestInvalidPeriod": "INVALID_PERIOD",
    "RequestUnknown": "REQUEST_NOT_FOUND",
    "RequestStatusMismatch": "REQUEST_STATUS_MISMATCH",
    "RequestPurposeRequired": "PURPOSE_REQUIRED",
    "RequestReasonRequired": "REASON_REQUIRED",
    "SharingNotAParty": "NOT_A_PARTY",
    "AgreementTermsMismatch": "TERMS_MISMATCH",
    "AgreementCatalogChanged": "CATALOG_CHANGED",
    "AgreementKeyEpochMismatch": "KEY_EPOCH_MISMATCH",
    "AgreementSuspendedByGovernance": "AGREEMENT_SUSPENDED_BY_GOVERNANCE",
    "AgreementSignatureExpired": "SIGNATURE_EXPIRED",
    "AgreementInvalidSignature": "INVALID_SIGNATURE",
    "AgreementUnknown": "AGREEMENT_NOT_FOUND",
    "AgreementStatusMismatch": "AGREEMENT_NOT_ACTIVE",
    "AgreementOutsideValidity": "AGREEMENT_OUTSIDE_VALIDITY",
    "GrantUnknown": "GRANT_NOT_FOUND",
    "GrantInvalidExpiry": "INVALID_EXPIRY",
    "GrantAlreadyRevoked": "GRANT_REVOKED",
    "GrantExpired": "GRANT_EXPIRED",
    "DeliveryDuplicate": "DUPLICATE_DELIVERY",
    "DeliveryUnknown": "DELIVERY_NOT_FOUND",
    "DeliveryReceiptMismatch": "RECEIPT_MISMATCH",
    "DeliveryAlreadySettled": "DELIVERY_ALREADY_SETTLED",
    "DeliveryInvalidField": "INVALID_FIELD",
    "DeliveryIdNotProviders": "DELIVERY_ID_NOT_PROVIDERS",
    "DeliveryUnknownHashAlgorithm": "UNKNOWN_HASH_ALGORITHM",
    "GovernanceUnauthorized": "NOT_A_GOVERNOR",
    "GovernanceInvalidThreshold": "GOVERNANCE_INVALID_THRESHOLD",
    "GovernanceUnknownProposal": "PROPOSAL_NOT_FOUND",
    "GovernanceProposalExecuted": "PROPOSAL_EXECUTED",
    "GovernanceProposalExpired": "PROPOSAL_EXPIRED",
    "GovernanceAlreadyApproved": "ALREADY_APPROVED",
    "GovernanceRoleManagedByProposals": "FORBIDDEN",
    "GovernanceMembershipUnchanged": "MEMBERSHIP_UNCHANGED",
    "GovernanceUnknownAction": "UNKNOWN_GOVERNANCE_ACTION",
    "GovernanceBelowThreshold": "PROPOSAL_BELOW_THRESHOLD",
    "GovernanceProposalCancelled": "PROPOSAL_CANCELLED",
    "GovernanceNotProposer": "NOT_PROPOSER",
    "DepartmentUnknown": "DEPARTMENT_NOT_FOUND",
    "DepartmentAlreadyRegistered": "DEPARTMENT_ALREADY_REGISTERED",
    "DepartmentInvalidField": "INVALID_FIELD",
    "DepartmentUnauthorized": "FORBIDDEN",
    "DepartmentNotActive": "DEPARTMENT_NOT_ACTIVE",
    "DepartmentStatusUnchanged": "DEPARTMENT_STATUS_UNCHANGED",
    "AccessControlBadConfirmation": "FORBIDDEN",
    "AccessControlUnauthorizedAccount": "FORBIDDEN",
    "InvalidShortString": "INVALID_FIELD",
    "StringTooLong": "INVALID_FIELD",
    "ReceiptAlreadyDisputed": "RECEIPT_ALREADY_DISPUTED",
    "ReceiptBatchAlreadySettled": "RECEIPT_BATCH_SETTLED",
    "ReceiptBatchOutOfSequence": "RECEIPT_BATCH_OUT_OF_SEQUENCE",
    "ReceiptBatchUnknown": "RECEIPT_BATCH_NOT_FOUND",
    "ReceiptInvalidField": "INVALID_FIELD",
    "ReceiptProofInvalid": "RECEIPT_PROOF_INVALID",
    "PracticeUnknownDemand": "DEMAND_NOT_FOUND",
    "PracticeDemandAnswered": "DEMAND_ALREADY_ANSWERED",
    "PracticeNotAddressee": "NOT_A_PARTY",
    "PracticeOpenDemandDeclined": "DECLINE_NEEDS_ADDRESSEE",
    "PracticeNotPublisher": "NOT_A_PARTY",
    "PracticeNotRejectable": "ANSWER_NOT_REJECTABLE",
    "PracticeUnknownRejectionCode": "UNKNOWN_REJECTION_CODE",
    "PracticeAnswererRejected": "ANSWERER_REJECTED",
    "PracticeDemandWithdrawn": "DEMAND_WITHDRAWN",
    "PracticeInvalidField": "INVALID_FIELD",
    "PracticeUnknownDeclineCode": "UNKNOWN_DECLINE_CODE",
    "PracticeResourceUnfit": "RESOURCE_UNFIT",
    "PracticeScoreOutOfRange": "SCORE_OUT_OF_RANGE",
    "PracticeNoDelivery": "NO_DELIVERY_UNDER_AGREEMENT",
    "PracticeNoReceiptBatch": "NO_DELIVERY_UNDER_AGREEMENT",
    "PracticeStaleEvidence": "EVIDENCE_TOO_OLD",
    "PracticeAlreadyScored": "ALREADY_SCORED",
    "PracticeNotAuditor": "FORBIDDEN",
    "PracticeNotInspectionAuditor": "FORBIDDEN",
    "PracticeInvalidInspection": "INVALID_INSPECTION",
    "PracticeUnknownInspection": "INSPECTION_NOT_FOUND",
    "PracticeInspectionStatus": "INSPECTION_STATUS_MISMATCH",
    "PracticeSeedUnavailable": "SEED_UNAVAILABLE",
    "PracticeInvalidOutcome": "INVALID_OUTCOME",
}


def error_code(error_name: str | None) -> str:
    """The stable code of the contract error ``error_name`` (:data:`UNLISTED` if it has no row)."""
    return REVERT_CODES.get(error_name or "", UNLISTED)


def department_code(value: Any) -> str:
    """A department code as the contract stores it (``bytes32``: ASCII, zero-padded) as its text: ``PSB``,
    never ``0x5053…``."""
    raw = value
    if isinstance(value, str) and value.startswith("0x"):
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            return value
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).rstrip(b"\x00").decode("ascii", errors="replace")
    return str(raw)


def account(value: Any) -> str:
    """An address in its EIP-55 spelling, whether the decoder gave it as text (any case) or 20 bytes."""
    raw = bytes(value) if isinstance(value, bytearray) else value
    if not isinstance(raw, str | bytes):
        return str(raw)
    try:
        return to_checksum_address(raw)
    except ValueError:
        return str(raw)


def show_arg(name: str, value: Any) -> str:
    """An error argument as a person reads it: bytes as ``0x``-hex, times (``…At``, validity) as ISO 8601."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, int) and (name.endswith("At") or name in ("validFrom", "validUntil", "deadline")):
        return iso_time(value)
    return str(value)


# Enum arguments by their Solidity order (contracts/src/types/Practice.sol), as a sentence names them.
_DEMAND_ANSWERS = ("not answered", "with a new resource", "with an existing resource", "declined")
_SCORED_SIDES = ("provider", "consumer")
_INSPECTION_STATUSES = (
    "not opened",
    "open, its sample not drawn yet",
    "drawn",
    "expired (its seed block is out of reach)",
)
_OUTCOMES = ("none", "passed", "failed", "not presented")
# contracts/src/types/Ledger.sol and Receipts.sol.
_REQUEST_STATUSES = ("not made", "pending", "approved", "rejected", "concluded", "withdrawn")
_AGREEMENT_STATUSES = ("not concluded", "active", "suspended", "revoked")
_DELIVERY_STATUSES = ("not recorded", "recorded", "acknowledged", "disputed")
_BATCH_STATUSES = ("not anchored", "anchored", "acknowledged")
#: The roles of ``DepartmentRegistry`` (OpenZeppelin AccessControl) by their ``bytes32`` id.
_ROLES = {
    bytes(32): "administrator",
    **{keccak(f"dxl.role.{name}".encode()): name for name in ("governor", "department", "auditor")},
}

#: What makes a field unusable, by the name a ``…InvalidField`` error carries.
_FIELDS = {
    # DeliveryLedger
    "records": "a batch of deliveries must hold at least one delivery",
    "deliveryId": "the delivery id must not be zero",
    "commitment": "the commitment must not be zero",
    "consumerCommitment": "the consumer's commitment must not be zero",
    # DepartmentRegistry
    "code": "the department code must not be empty",
    "name": "the department name must not be empty",
    "signer": "the department's signing address must not be zero",
    "encryptionKey": "the department's encryption key must not be zero",
    # ReceiptAnchors
    "root": "a batch's root must not be zero",
    "leafCount": "a batch holds at least one receipt, and numbers its receipts within 64 bits",
    "index": "the receipt's index is outside its batch",
    "receipt.grantId": "the receipt names another grant than its batch's",
}

#: What makes an inspection's field unusable, as ``openInspection`` checks it.
_PRACTICE_FIELDS = {
    "dueBy": "the due date must be at least 7 days after the time of the block the demand is mined in, so "
    "that its addressee has time to answer",
}
_INSPECTION_FIELDS = {
    "periodFrom": "the inspected period must start before it ends",
    "periodTo": "the inspected period must have ended (its end at or before the chain's latest block time)",
    "sampleSize": "the sample size must be at least 1",
    "seedBlock": "the seed block must be a block not mined yet",
    "presentBy": "the presentation deadline must be in the future",
}


def _named(names: tuple[str, ...], value: Any) -> str:
    return names[value] if isinstance(value, int) and 0 <= value < len(names) else str(value)


def _field(a: Mapping[str, Any]) -> str:
    field = str(a["field"])
    return f"{_FIELDS[field]} ({field})" if field in _FIELDS else f"{field} is not valid here"


def _role(value: Any) -> str:
    raw = bytes(value) if isinstance(value, bytes | bytearray) else b""
    return f"the {_ROLES[raw]} role" if raw in _ROLES else f"role {show_arg('', value)}"


#: Solidity custom error name -> the sentence for its arguments (by ABI parameter name): every error of the
#: compiled ABIs has one (``tests/api/test_error_table.py``), its arguments as a person reads them (department
#: codes as text, ids as numbers, addresses checksummed, times ISO 8601). An error no ABI declares reads
#: ``ErrorName(arg=value, ...)``.
REVERT_MESSAGES: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "GrantExpired": lambda a: f"grant {a['grantId']} expired at {iso_time(a['expiredAt'])}",
    "GrantUnknown": lambda a: f"grant {a['grantId']} does not exist",
    "GrantAlreadyRevoked": lambda a: f"grant {a['grantId']} was revoked",
    "DeliveryDuplicate": lambda a: f"delivery {show_arg('', a['deliveryId'])} was already recorded",
    "DeliveryUnknown": lambda a: f"delivery {show_arg('', a['deliveryId'])} was never recorded",
    "DepartmentUnauthorized": lambda a: (
        f"{account(a['account'])} is not the signer of an admitted department"
    ),
    "SharingNotAParty": lambda a: (
        f"department {a['departmentId']} is not a party here "
        f"(expected department {a['expectedDepartmentId']})"
    ),
    "AgreementStatusMismatch": lambda a: (
        f"agreement {a['agreementId']} is {_named(_AGREEMENT_STATUSES, a['status'])}, which this step does "
        "not allow"
    ),
    "RequestResourceNotShared": lambda a: f"resource {a['resourceId']} is classified as not shared",
    "AgreementInvalidSignature": lambda a: (
        f"signature of department {a['departmentId']} does not match its current signer"
    ),
    "DepartmentNotActive": lambda a: f"department {a['departmentId']} is suspended",
    "DepartmentUnknown": lambda a: f"department {a['departmentId']} was never admitted",
    "GovernanceUnauthorized": lambda a: f"{account(a['account'])} is not a governor",
    # The catalog.
    "CatalogUnknownResource": lambda a: f"resource {a['resourceId']} was never registered in the catalog",
    "CatalogNotOwner": lambda a: (
        f"department {a['departmentId']} does not own resource {a['resourceId']}: only its owner changes it"
    ),
    "CatalogInvalidMetadata": lambda a: "the resource's metadata hash must not be zero",
    # Requests, agreements and grants.
    "RequestOwnResource": lambda a: (
        f"resource {a['resourceId']} is the requesting department's own: a department does not request it"
    ),
    "RequestInvalidPeriod": lambda a: (
        f"the requested validity, from {iso_time(a['validFrom'])} until {iso_time(a['validUntil'])}, is "
        "empty or already over"
    ),
    "RequestUnknown": lambda a: f"request {a['requestId']} was never made",
    "RequestStatusMismatch": lambda a: (
        f"request {a['requestId']} is {_named(_REQUEST_STATUSES, a['status'])}; this step needs it "
        f"{_named(_REQUEST_STATUSES, a['expected'])}"
    ),
    "RequestPurposeRequired": lambda a: "a request must state its purpose",
    "RequestReasonRequired": lambda a: "a rejection must give its reason code",
    "AgreementTermsMismatch": lambda a: (
        f"the signed terms differ from those request {a['requestId']} approved"
    ),
    "AgreementCatalogChanged": lambda a: (
        f"resource {a['resourceId']}'s catalog entry changed after the terms were signed: sign the current "
        "terms again"
    ),
    "AgreementKeyEpochMismatch": lambda a: (
        f"the terms name key epoch {a['signedEpoch']} of department {a['departmentId']}, whose current key "
        f"epoch is {a['currentEpoch']} (it was re-keyed since): sign the current terms again"
    ),
    "AgreementSuspendedByGovernance": lambda a: (
        f"agreement {a['agreementId']} was suspended by governance: only a governance proposal reinstates it"
    ),
    "AgreementSignatureExpired": lambda a: f"the signatures' deadline, {iso_time(a['deadline'])}, has passed",
    "AgreementUnknown": lambda a: f"agreement {a['agreementId']} was never concluded",
    "AgreementOutsideValidity": lambda a: (
        f"agreement {a['agreementId']} is valid from {iso_time(a['validFrom'])} until "
        f"{iso_time(a['validUntil'])}, and the chain's time is outside that window"
    ),
    "GrantInvalidExpiry": lambda a: (
        f"a grant's expiry ({iso_time(a['expiresAt'])}) must be in the future and no later than the end of "
        f"its agreement's validity ({iso_time(a['agreementValidUntil'])})"
    ),
    # Deliveries.
    "DeliveryReceiptMismatch": lambda a: (
        f"the receipt given for delivery {show_arg('', a['deliveryId'])} differs from the one recorded"
    ),
    "DeliveryAlreadySettled": lambda a: (
        f"delivery {show_arg('', a['deliveryId'])} was {_named(_DELIVERY_STATUSES, a['status'])} already"
    ),
    "DeliveryInvalidField": _field,
    "DeliveryIdNotProviders": lambda a: (
        f"delivery id {show_arg('', a['deliveryId'])} is not department {a['provider']}'s: a delivery id "
        "starts with its provider's department id"
    ),
    "DeliveryUnknownHashAlgorithm": lambda a: (
        f"hash algorithm {a['hashAlgorithm']} is not one the ledger knows (1 for SHA-256, 2 for SM3)"
    ),
    # Governance and departments.
    "GovernanceInvalidThreshold": lambda a: (
        f"an approval threshold of {a['threshold']} cannot work with "
        f"{counted(a['governorCount'], 'governor')}: it must be at least 1 and at most the number of "
        "governors"
    ),
    "GovernanceUnknownProposal": lambda a: f"proposal {a['proposalId']} was never made",
    "GovernanceProposalExecuted": lambda a: f"proposal {a['proposalId']} has already taken effect",
    "GovernanceProposalExpired": lambda a: (
        f"proposal {a['proposalId']}'s approval window closed at {iso_time(a['expiredAt'])}"
    ),
    "GovernanceAlreadyApproved": lambda a: (
        f"governor {account(a['governor'])} has already approved proposal {a['proposalId']}"
    ),
    "GovernanceRoleManagedByProposals": lambda a: (
        "roles change only by governance proposals, never by granting, revoking or renouncing them directly"
    ),
    "GovernanceMembershipUnchanged": lambda a: (
        f"{account(a['account'])} already holds the role the proposal would give, or does not hold the one "
        "it would take away"
    ),
    "GovernanceUnknownAction": lambda a: f"proposal action {a['action']} is not one this ledger knows",
    "GovernanceBelowThreshold": lambda a: (
        f"proposal {a['proposalId']} has {a['approvals']} of the {counted(a['threshold'], 'approval')} it "
        "needs"
    ),
    "GovernanceProposalCancelled": lambda a: f"proposal {a['proposalId']} was cancelled",
    "GovernanceNotProposer": lambda a: (
        f"{account(a['account'])} cannot cancel proposal {a['proposalId']}: only its proposer can, while "
        "still a governor"
    ),
    "DepartmentAlreadyRegistered": lambda a: (
        f"a department with code {department_code(a['code'])} or signing address {account(a['signer'])} is "
        "already registered"
    ),
    "DepartmentInvalidField": _field,
    "DepartmentStatusUnchanged": lambda a: (
        f"department {a['departmentId']} already has that status: only an active department is suspended, "
        "only a suspended one reinstated"
    ),
    "AccessControlBadConfirmation": lambda a: "an account renounces only a role of its own",
    "AccessControlUnauthorizedAccount": lambda a: (
        f"{account(a['account'])} does not hold {_role(a['neededRole'])}"
    ),
    "InvalidShortString": lambda a: "a text is longer than the 31 bytes the ledger stores in place",
    "StringTooLong": lambda a: (
        f"the text {a['str']!r} is longer than the 31 bytes the ledger stores in place"
    ),
    # Receipt anchors.
    "ReceiptAlreadyDisputed": lambda a: (
        f"receipt {a['sequence']} of grant {a['grantId']} was disputed already"
    ),
    "ReceiptBatchAlreadySettled": lambda a: (
        f"the batch of grant {a['grantId']} starting at receipt {a['firstSequence']} is "
        f"{_named(_BATCH_STATUSES, a['status'])}: the consumer settled it already"
    ),
    "ReceiptBatchOutOfSequence": lambda a: (
        f"the next batch of grant {a['grantId']} must start at receipt {a['expectedSequence']}; this one "
        f"starts at {a['firstSequence']} (anchored already, or leaving a gap)"
    ),
    "ReceiptBatchUnknown": lambda a: (
        f"no batch of grant {a['grantId']} starting at receipt {a['firstSequence']} is anchored"
    ),
    "ReceiptInvalidField": _field,
    "ReceiptProofInvalid": lambda a: (
        f"the inclusion proof of receipt {a['sequence']} of grant {a['grantId']} does not lead to its "
        "batch's anchored root"
    ),
    # The sharing practice.
    "PracticeUnknownDemand": lambda a: f"demand {a['demandId']} was never published",
    "PracticeDemandAnswered": lambda a: (
        f"demand {a['demandId']} was answered already ({_named(_DEMAND_ANSWERS, a['answer'])})"
    ),
    "PracticeNotAddressee": lambda a: (
        f"department {a['departmentId']} cannot answer demand {a['demandId']}: it is addressed to another "
        "department, or is the department's own"
    ),
    "PracticeOpenDemandDeclined": lambda a: (
        f"department {a['departmentId']} cannot decline demand {a['demandId']}: it is addressed to no "
        "department, so it waits for a department holding the data to answer it with a resource; only a "
        "department a demand is addressed to declines it"
    ),
    "PracticeNotPublisher": lambda a: (
        f"department {a['departmentId']} cannot reject an answer to demand {a['demandId']} or withdraw it: "
        "only its publisher can"
    ),
    "PracticeNotRejectable": lambda a: (
        f"demand {a['demandId']} has no resource answer to reject (it is "
        f"{_named(_DEMAND_ANSWERS, a['answer'])}): only an answer with a resource is rejected, a decline "
        "claims none"
    ),
    "PracticeUnknownRejectionCode": lambda a: (
        f"rejection reason code {a['code']} is not one of the declared codes"
    ),
    "PracticeAnswererRejected": lambda a: (
        f"department {a['departmentId']} cannot answer demand {a['demandId']} again: its publisher rejected "
        "the department's answer to it, and it is addressed to no department, so others may answer it"
    ),
    "PracticeDemandWithdrawn": lambda a: (
        f"demand {a['demandId']} was withdrawn by its publisher: it takes no answer, rejection or withdrawal"
    ),
    "PracticeInvalidField": lambda a: (
        f"{_PRACTICE_FIELDS[a['field']]} ({a['field']})"
        if a["field"] in _PRACTICE_FIELDS
        else f"{a['field']} is not valid here"
    ),
    "PracticeUnknownDeclineCode": lambda a: (
        f"decline reason code {a['code']} is not one of the declared codes"
    ),
    "PracticeResourceUnfit": lambda a: (
        f"resource {a['resourceId']} cannot answer demand {a['demandId']}: it must be the answering "
        "department's own, shared, and new (for a new resource) or existing (for an existing one) when the "
        "demand was published"
    ),
    "PracticeScoreOutOfRange": lambda a: f"score {a['score']} is outside 1 to 5",
    "PracticeNoDelivery": lambda a: (
        f"delivery {show_arg('', a['deliveryId'])} was not made under agreement {a['agreementId']}"
    ),
    "PracticeNoReceiptBatch": lambda a: (
        f"no receipt batch starting at receipt {a['firstSequence']} of grant {a['grantId']} was anchored "
        f"under agreement {a['agreementId']}"
    ),
    "PracticeStaleEvidence": lambda a: (
        f"the delivery offered as evidence for agreement {a['agreementId']} was made at "
        f"{iso_time(int(a['deliveredAt']))}, more than one evaluation period ago (not before "
        f"{iso_time(int(a['notBefore']))}): a score is about a recent delivery"
    ),
    "PracticeAlreadyScored": lambda a: (
        f"the {_named(_SCORED_SIDES, a['side'])} of agreement {a['agreementId']} was already evaluated in "
        f"this evaluation period (period {a['period']}); each side of an agreement is evaluated once a period"
    ),
    "PracticeNotAuditor": lambda a: f"{account(a['account'])} is not an auditor of the ledger",
    "PracticeNotInspectionAuditor": lambda a: (
        f"only {account(a['auditor'])}, who opened inspection {a['inspectionId']} and is an auditor still, "
        f"records its outcomes, not {account(a['account'])}"
    ),
    "PracticeInvalidInspection": lambda a: (
        f"{_INSPECTION_FIELDS[a['field']]} ({a['field']})"
        if a["field"] in _INSPECTION_FIELDS
        else f"{a['field']} is not valid here"
    ),
    "PracticeUnknownInspection": lambda a: f"inspection {a['inspectionId']} was never opened",
    "PracticeInspectionStatus": lambda a: (
        f"inspection {a['inspectionId']} is {_named(_INSPECTION_STATUSES, a['status'])}, "
        "which this step does not allow"
    ),
    # Never for an inspection past the 256 blocks whose hash the chain keeps: drawSample calls that expired.
    "PracticeSeedUnavailable": lambda a: (
        f"inspection {a['inspectionId']} cannot be drawn before block {a['seedBlock'] + 1}: its seed is the "
        f"hash of block {a['seedBlock']}, which the chain can read only once block {a['seedBlock'] + 1} "
        "is mined"
    ),
    "PracticeInvalidOutcome": lambda a: (
        f"the outcome '{_named(_OUTCOMES, a['outcome'])}' cannot be recorded for delivery "
        f"{show_arg('', a['deliveryId'])} in inspection {a['inspectionId']}: an outcome is recorded once, "
        "and 'not presented' only after the presentation deadline"
    ),
}


def describe_revert(error_name: str | None, args: Any) -> str | None:
    """The sentence for the contract error ``error_name`` with ``args`` (by ABI parameter name), or ``None``
    when it has no row in :data:`REVERT_MESSAGES` or the arguments are not those of its declaration."""
    template = REVERT_MESSAGES.get(error_name or "")
    if template is None or not isinstance(args, Mapping):
        return None
    try:
        return template(args)
    except (KeyError, TypeError):
        return None
