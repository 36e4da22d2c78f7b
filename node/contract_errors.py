"""The one table from the ledger's Solidity errors to dxl's stable error codes.

The chain client names a revert by it (:class:`node.chain.LedgerRevertError` ``.code``, what ``dxl`` prints
with ``--json``) and the API answers with the same code (``api.errors``, which gives each code its HTTP
status), so a caller sees one code for one failure whichever way it came. ``tests/api/test_error_table.py``
holds the table to the compiled ABIs: every error they declare has a row, every row names a declared error,
and every code is one the API documents. Add the row in the same change that adds the error.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    "PracticeInvalidField": "INVALID_FIELD",
    "PracticeUnknownDeclineCode": "UNKNOWN_DECLINE_CODE",
    "PracticeResourceUnfit": "RESOURCE_UNFIT",
    "PracticeScoreOutOfRange": "SCORE_OUT_OF_RANGE",
    "PracticeNoDelivery": "NO_DELIVERY_UNDER_AGREEMENT",
    "PracticeNoReceiptBatch": "NO_DELIVERY_UNDER_AGREEMENT",
    "PracticeAlreadyScored": "ALREADY_SCORED",
    "PracticeNotAuditor": "FORBIDDEN",
    "PracticeInvalidInspection": "INVALID_INSPECTION",
    "PracticeUnknownInspection": "INSPECTION_NOT_FOUND",
    "PracticeInspectionStatus": "INSPECTION_STATUS_MISMATCH",
    "PracticeSeedUnavailable": "SEED_UNAVAILABLE",
    "PracticeInvalidOutcome": "INVALID_OUTCOME",
}


def error_code(error_name: str | None) -> str:
    """The stable code of the contract error ``error_name`` (:data:`UNLISTED` if it has no row)."""
    return REVERT_CODES.get(error_name or "", UNLISTED)
