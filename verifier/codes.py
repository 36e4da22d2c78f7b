"""Every code a verdict speaks in, declared once: its statuses and the codes of its findings.

The verdict JSON (:meth:`verifier.verify.Verdict.to_dict`, ``dxl verify --json``, ``POST /verify``) carries
these strings unchanged; a program that reads it matches on them, so a code is never renamed. Each member
carries its meaning in one line (``.meaning``), the sentence verifier/MANIFEST.md's tables show for it
(``tests/test_documents.py`` holds the two to each other).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class Code(StrEnum):
    """A code whose value is its name, with its meaning in one line."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    @classmethod
    def of(cls, value: int) -> Self:
        """The member at ``value`` in declaration order: a status the contract names by its enum's value.

        Raises:
            ValueError: there is no member at ``value``.
        """
        if not 0 <= value < len(cls):
            raise ValueError(f"{cls.__name__} has no member {value}")
        return list(cls)[value]


class VerdictStatus(Code):
    """The status of a delivery's verdict."""

    MATCH = (
        "MATCH",
        "the payload (or commitment) is the one the manifest commits to, and the chain agrees where checked",
    )
    MISMATCH = "MISMATCH", "the payload, the manifest or the chain's receipt differ where they must agree"
    UNTRUSTED = (
        "UNTRUSTED",
        "the manifest is not signed by the provider's key on chain or not for this delivery, or was altered",
    )
    NOT_RECORDED = "NOT_RECORDED", "the chain holds no receipt of this delivery"
    ACK_DIFFERS = (
        "ACK_DIFFERS",
        "the consumer disputed the delivery: its acknowledged root is not the manifest's",
    )
    PENDING = "PENDING", "accepted by the service as a receipt and not anchored on chain yet"

    @property
    def ok(self) -> bool:
        return self is VerdictStatus.MATCH


class ReceiptVerdictStatus(Code):
    """The status of an anchored receipt's inclusion proof checked against its batch on chain."""

    ANCHORED = "ANCHORED", "the proof leads to the root of a batch anchored on chain"
    ACKNOWLEDGED = "ACKNOWLEDGED", "anchored, and the consumer acknowledged its batch"
    DISPUTED = "DISPUTED", "anchored, and the consumer disputed this receipt on chain"
    NOT_ANCHORED = (
        "NOT_ANCHORED",
        "no batch of the receipt's grant starting at the proof's first sequence is anchored",
    )
    MISMATCH = (
        "MISMATCH",
        "the proof does not hold (its batch would number receipts past 64 bits), leads to another root or "
        "leaf count than the anchored batch's, or the receipt is none a single delivery of the batch's "
        "provider could be (a zero commitment, a hash algorithm the ledger does not accept, a delivery id "
        "outside the provider's namespace)",
    )

    @property
    def ok(self) -> bool:
        return self in (ReceiptVerdictStatus.ANCHORED, ReceiptVerdictStatus.ACKNOWLEDGED)


class RecordStatus(Code):
    """A single delivery's ``DeliveryStatus`` on the ledger, in the contract's order (a verdict's
    ``anchor.details.status``)."""

    NONE = "NONE", "not recorded"
    RECORDED = "RECORDED", "recorded by the provider, not acknowledged yet"
    ACKNOWLEDGED = "ACKNOWLEDGED", "acknowledged by the consumer with the recorded root"
    DISPUTED = "DISPUTED", "disputed by the consumer with another root"


class SampleStatus(Code):
    """An inspection's status on the practice contract, in the contract's order (a derived sample's
    ``status``)."""

    NONE = "NONE", "not opened"
    OPEN = "OPEN", "open, its sample not drawn yet"
    DRAWN = "DRAWN", "its sample drawn from its seed block's hash"
    EXPIRED = "EXPIRED", "not drawn while its seed block's hash was known: it has no sample"


class FindingCode(Code):
    """The code of one finding of a verdict: a reason behind its status."""

    # The payload against its manifest (verifier.verify).
    ROOT_MISMATCH = (
        "ROOT_MISMATCH",
        "the root of the payload (or the commitment given) differs from the manifest's",
    )
    SIZE_MISMATCH = "SIZE_MISMATCH", "the payload's byte size differs from the manifest's"
    LEAF_COUNT_MISMATCH = (
        "LEAF_COUNT_MISMATCH",
        "the payload has another number of leaves (records or chunks) than the manifest",
    )
    RECORD_COUNT_MISMATCH = "RECORD_COUNT_MISMATCH", "the payload's record count differs from the manifest's"
    LEAVES_DIFFER = (
        "LEAVES_DIFFER",
        "leaves of the payload differ from the manifest's leaf hashes, named by 0-based index",
    )
    LEAVES_MISSING = (
        "LEAVES_MISSING",
        "leaves the manifest lists are missing from the payload (it was cut short)",
    )
    LEAVES_EXTRA = "LEAVES_EXTRA", "the payload has leaves beyond the manifest's (it was extended)"
    PAYLOAD_NOT_CHECKED = (
        "PAYLOAD_NOT_CHECKED",
        "no payload or commitment was given: the manifest and the chain alone were checked",
    )
    # The manifest itself.
    MANIFEST_SIGNATURE_INVALID = (
        "MANIFEST_SIGNATURE_INVALID",
        "the manifest is unsigned, or its signature is not the expected signer's or not for this delivery",
    )
    MANIFEST_INCONSISTENT = (
        "MANIFEST_INCONSISTENT",
        "the manifest's own fields contradict each other: it was altered",
    )
    # The manifest against a single delivery's receipt on the ledger (verifier.onchain).
    NOT_RECORDED = (
        "NOT_RECORDED",
        "the ledger holds no delivery of this id (a receipt is found by its inclusion proof)",
    )
    CHAIN_ROOT_MISMATCH = "CHAIN_ROOT_MISMATCH", "the manifest's root differs from the one recorded on chain"
    CHAIN_SIZE_MISMATCH = (
        "CHAIN_SIZE_MISMATCH",
        "the manifest's byte size differs from the one recorded on chain",
    )
    CHAIN_RECORD_COUNT_MISMATCH = (
        "CHAIN_RECORD_COUNT_MISMATCH",
        "the manifest's record count differs from the one recorded on chain",
    )
    CHAIN_ALGORITHM_MISMATCH = (
        "CHAIN_ALGORITHM_MISMATCH",
        "the manifest's hash algorithm differs from the one recorded on chain",
    )
    CHAIN_GRANT_MISMATCH = (
        "CHAIN_GRANT_MISMATCH",
        "the manifest's grant differs from the one recorded on chain",
    )
    CHAIN_AGREEMENT_MISMATCH = (
        "CHAIN_AGREEMENT_MISMATCH",
        "the manifest's agreement is not the one its grant was issued under on chain",
    )
    CHAIN_PROVIDER_MISMATCH = (
        "CHAIN_PROVIDER_MISMATCH",
        "the manifest's provider is not the department recorded on chain",
    )
    CHAIN_CONSUMER_MISMATCH = (
        "CHAIN_CONSUMER_MISMATCH",
        "the manifest's consumer is not the department recorded on chain",
    )
    ACK_DIFFERS = "ACK_DIFFERS", "the consumer disputed the delivery (or receipt) with another commitment"
    # The manifest against an anchored receipt's inclusion proof (verifier.receipt_check).
    RECEIPT_OTHER_DELIVERY = (
        "RECEIPT_OTHER_DELIVERY",
        "the receipt's proof is for another delivery than the manifest's",
    )
    RECEIPT_NOT_ANCHORED = (
        "RECEIPT_NOT_ANCHORED",
        "the batch the receipt's proof names is not anchored on chain",
    )
    RECEIPT_MISMATCH = (
        "RECEIPT_MISMATCH",
        "the receipt's proof does not hold, leads to another batch than the one on chain, or the receipt is "
        "none a single delivery of its batch's provider could be (zero commitment, unknown hash algorithm, "
        "delivery id outside the provider's namespace)",
    )
    # What a service that holds the receipt journal adds (api.verdicts, POST /verify, presentations).
    RECEIPT_PENDING = (
        "RECEIPT_PENDING",
        "the service accepted the delivery as a receipt and has not anchored its batch yet",
    )
    RECEIPT_REFUSED = (
        "RECEIPT_REFUSED",
        "the service accepted the delivery as a receipt, and the contract refused its batch",
    )
    RECEIPT_JOURNAL_CORRUPT = (
        "RECEIPT_JOURNAL_CORRUPT",
        "the service's receipt journal holds the receipt in a state the service never writes",
    )
    RECEIPT_ROOT_MISMATCH = (
        "RECEIPT_ROOT_MISMATCH",
        "the manifest's root differs from the receipt the service accepted",
    )
    RECEIPT_SIZE_MISMATCH = (
        "RECEIPT_SIZE_MISMATCH",
        "the manifest's byte size differs from the receipt the service accepted",
    )
    RECEIPT_RECORD_COUNT_MISMATCH = (
        "RECEIPT_RECORD_COUNT_MISMATCH",
        "the manifest's record count differs from the receipt the service accepted",
    )
    RECEIPT_ALGORITHM_MISMATCH = (
        "RECEIPT_ALGORITHM_MISMATCH",
        "the manifest's hash algorithm differs from the receipt the service accepted",
    )
    RECEIPT_GRANT_MISMATCH = (
        "RECEIPT_GRANT_MISMATCH",
        "the manifest's grant differs from the receipt the service accepted",
    )
    NOT_THE_DRAWN_RECEIPT = (
        "NOT_THE_DRAWN_RECEIPT",
        "a presentation's manifest is not the receipt the inspection drew",
    )
