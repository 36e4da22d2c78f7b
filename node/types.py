"""Domain types of the ledger, mirroring ``contracts/src/types/Ledger.sol``.

Enum values are the Solidity enums' ordinals, so a value read from the chain converts with ``ShareType(raw)``
and a Python value is passed to a contract call as is (IntEnum is an int). :class:`SharingTerms` produces the
EIP-712 typed data that both in-service signing and a department signing on its own machine use, so there is
one definition of what a department signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple, NewType, Protocol, Self

# eth_abi and eth_utils are imported in the few functions that use them: the `dxl` commands that only call the
# API (demand, evaluation, inspection, catalog) import this module for its types and constants, and those two
# imports were a fifth of such a command's start, some 0.08 s of CPU of 0.4.
from node.errors import DxlError

# Delivery ids live in their provider's namespace; the scheme is the commitment layer's, whose manifests name
# the delivery.
from verifier.delivery_ids import delivery_id_provider as delivery_id_provider
from verifier.delivery_ids import new_delivery_id as new_delivery_id

# A department is admitted only under a code a manifest can name it by.
from verifier.departments import DEPARTMENT_CODE_RULE, is_department_code

# The commitment scheme owns the algorithm ids; the ledger records them (0 is refused by the contract).
from verifier.hashing import HashAlgorithm as HashAlgorithm

DepartmentId = NewType("DepartmentId", int)  # uint32, from 1
ResourceId = NewType("ResourceId", int)  # uint64, from 1
RequestId = NewType("RequestId", int)  # uint64, from 1
AgreementId = NewType("AgreementId", int)  # uint64, from 1
GrantId = NewType("GrantId", int)  # uint64, from 1
ProposalId = NewType("ProposalId", int)  # uint256, from 1
DeliveryId = NewType("DeliveryId", bytes)  # bytes32, chosen by the provider; first 4 bytes its department id
Address = NewType("Address", str)  # checksummed 0x address
Bytes32 = NewType("Bytes32", bytes)


class ChainPosition(NamedTuple):
    """Where a log sits in the chain: its block, then its index in that block. Tuples of positions compare in
    chain order across contracts (a block's log indexes count every contract's logs), which block times, whole
    seconds shared by several blocks, cannot tell."""

    block_number: int
    log_index: int


class DepartmentStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


class ShareType(IntEnum):
    UNCONDITIONAL = 0
    CONDITIONAL = 1
    NOT_SHARED = 2


class RequestStatus(IntEnum):
    NONE = 0
    PENDING = 1
    APPROVED = 2
    REJECTED = 3
    CONCLUDED = 4
    WITHDRAWN = 5


class AgreementStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3


class DeliveryStatus(IntEnum):
    NONE = 0
    RECORDED = 1
    ACKNOWLEDGED = 2
    DISPUTED = 3


class GovernanceAction(IntEnum):
    ADMIT_DEPARTMENT = 0
    SUSPEND_DEPARTMENT = 1
    REINSTATE_DEPARTMENT = 2
    REKEY_DEPARTMENT = 3
    GRANT_AUDITOR = 4
    REVOKE_AUDITOR = 5
    ADD_GOVERNOR = 6
    REMOVE_GOVERNOR = 7
    SET_THRESHOLD = 8
    SUSPEND_AGREEMENT = 9
    REVOKE_AGREEMENT = 10
    REINSTATE_AGREEMENT = 11


class DemandAnswer(IntEnum):
    """How a demand was answered (``contracts/src/types/Practice.sol``)."""

    NONE = 0
    NEW_RESOURCE = 1
    EXISTING_RESOURCE = 2
    DECLINED = 3


#: The least time, in seconds, a demand's addressee has to answer: its due date is at least this long after
#: the block the demand is published in (``SharingPractice``'s ``DEMAND_NOTICE``, which a test holds equal).
#: The due date marks a late addressee overdue on its card: the publisher may not leave it no time to answer.
DEMAND_NOTICE_S = 7 * 86400
#: The least time, in seconds, a sampled provider has to present, from the draw that tells it its sample: an
#: inspection drawn later than this before its presentation deadline is never recorded not presented, and
#: none of its deliveries is overdue (``SharingPractice``'s ``PRESENTATION_NOTICE``: a test holds them equal).
PRESENTATION_NOTICE_S = 3 * 86400
#: The least ``present_within`` the service opens an inspection with: the notice plus a day. The sample is
#: drawn ``seed_delay_blocks`` (up to 200) after the opening is mined, 40 minutes at 12 s blocks, and only
#: when someone calls the draw, which the service's drawer does once the seed block is mined but which waits
#: on a node or a drawer that is down, or an auditor drawing by hand. A deadline the notice alone away from
#: the opening is already too close once the draw is a block late; the day's margin covers the seed delay and
#: a draw made within the working day. Shorter, no sampled delivery could ever be recorded not presented: an
#: inspection without teeth. The contract does not check it (it cannot know when the draw will come).
MIN_PRESENT_WITHIN_S = PRESENTATION_NOTICE_S + 86400


class DeclineReason(IntEnum):
    """The reason codes a department declines a demand with: declared here once. The contract accepts
    1..``declineCodeMax()``, which a test holds equal to the largest code here."""

    NOT_HELD = 1  # the department does not hold or collect such data
    HELD_ELSEWHERE = 2  # another department is the authoritative source
    LEGALLY_RESTRICTED = 3  # a law or regulation forbids sharing it
    INSUFFICIENT_LEGAL_BASIS = 4  # the demand's legal basis does not cover it
    PURPOSE_NOT_JUSTIFIED = 5  # the stated purpose does not need this data


class RejectionReason(IntEnum):
    """The reason codes a demand's publisher rejects a resource answer with, as not meeting the demand:
    declared here once. The contract accepts 1..``rejectionCodeMax()``, which a test holds equal to the
    largest code here."""

    NOT_THE_DATA_ASKED = 1  # the resource holds other data than the demand asks for
    INCOMPLETE = 2  # it lacks fields or coverage the demand needs
    NOT_CURRENT = 3  # it is not updated as often as the demand needs
    CONDITIONS_UNMEETABLE = 4  # its sharing conditions exclude the demand's purpose


class ScoredSide(IntEnum):
    PROVIDER = 0
    CONSUMER = 1


class InspectionStatus(IntEnum):
    NONE = 0
    OPEN = 1
    DRAWN = 2
    #: Read only (the contract's view): not drawn while its seed block's hash was known; never drawable.
    EXPIRED = 3


class InspectionOutcome(IntEnum):
    NONE = 0
    PASSED = 1
    FAILED = 2
    NOT_PRESENTED = 3


class InvalidCodeError(DxlError, ValueError):
    """Thrown when a department code does not fit the on-chain ``bytes32`` (ASCII, 1..32 bytes) or, to be
    admitted, is not a department code (``rule``)."""

    code = "INVALID_DEPARTMENT_CODE"

    def __init__(self, value: str, *, rule: str = "1..32 ASCII characters") -> None:
        super().__init__(f"department code must be {rule}, got {value!r}")


def encode_code(code: str) -> bytes:
    """A department code as the contract stores it: ASCII, right-padded with zeros to 32 bytes.

    Raises:
        InvalidCodeError: empty, non-ASCII or longer than 32 bytes.
    """
    if not code or not code.isascii() or len(code) > 32 or "\x00" in code:
        raise InvalidCodeError(code)
    return code.encode("ascii").ljust(32, b"\x00")


def decode_code(raw: bytes) -> str:
    """Inverse of :func:`encode_code`."""
    return bytes(raw).rstrip(b"\x00").decode("ascii", errors="replace")


#: Domain name and version of the ledger's EIP-712 domain (must equal the contract's EIP712 constructor args).
EIP712_NAME = "dxl Data Exchange Ledger"
EIP712_VERSION = "1"
#: Exactly the type string of ``contracts/src/libraries/SharingTermsHash.sol``.
SHARING_TERMS_TYPE = (
    "SharingTerms(uint64 requestId,uint64 resourceId,uint32 provider,uint32 consumer,bytes32 purposeHash,"
    "bytes32 scopeHash,bytes32 termsHash,bytes32 metadataHash,bytes32 schemaHash,uint8 sensitivity,"
    "uint64 validFrom,uint64 validUntil,uint32 providerKeyEpoch,uint32 consumerKeyEpoch,uint64 deadline)"
)
_SHARING_TERMS_FIELDS = [
    {"name": "requestId", "type": "uint64"},
    {"name": "resourceId", "type": "uint64"},
    {"name": "provider", "type": "uint32"},
    {"name": "consumer", "type": "uint32"},
    {"name": "purposeHash", "type": "bytes32"},
    {"name": "scopeHash", "type": "bytes32"},
    {"name": "termsHash", "type": "bytes32"},
    {"name": "metadataHash", "type": "bytes32"},
    {"name": "schemaHash", "type": "bytes32"},
    {"name": "sensitivity", "type": "uint8"},
    {"name": "validFrom", "type": "uint64"},
    {"name": "validUntil", "type": "uint64"},
    {"name": "providerKeyEpoch", "type": "uint32"},
    {"name": "consumerKeyEpoch", "type": "uint32"},
    {"name": "deadline", "type": "uint64"},
]


def admission_data(
    code: str, name: str, signer: str, encryption_key: bytes, *, contract_signer: bool = False
) -> bytes:
    """The ``data`` of an ``AdmitDepartment`` proposal. ``contract_signer`` lets the signer be an ERC-1271
    contract whose ``isValidSignature`` decides alone what the department signed; leave it off for a key.

    Raises:
        InvalidCodeError: ``code`` is not a department code (:mod:`verifier.departments`): the contract would
            store any ``bytes32``, but no manifest could name the department.
    """
    if not is_department_code(code):
        raise InvalidCodeError(code, rule=DEPARTMENT_CODE_RULE)
    from eth_abi.abi import encode as abi_encode

    return abi_encode(
        ["bytes32", "string", "address", "bytes32", "bool"],
        [encode_code(code), name, signer, encryption_key, contract_signer],
    )


def purpose_hash(purpose: str) -> bytes:
    """The terms' ``purposeHash`` of a stated purpose: keccak256 of its UTF-8 bytes, as on chain."""
    from eth_utils.crypto import keccak

    return keccak(text=purpose)


@dataclass(frozen=True)
class SharingTerms:
    """The terms both departments sign (field order of the Solidity struct): the request's fields, the catalog
    entry as it is when signed, and both departments' key epochs (a re-key voids earlier signatures)."""

    request_id: int
    resource_id: int
    provider: int
    consumer: int
    purpose_hash: bytes
    scope_hash: bytes
    terms_hash: bytes
    metadata_hash: bytes
    schema_hash: bytes
    sensitivity: int
    valid_from: int
    valid_until: int
    provider_key_epoch: int
    consumer_key_epoch: int
    deadline: int

    @classmethod
    def from_ledger(
        cls,
        request: AccessRequest,
        resource: Resource,
        provider: Department,
        consumer: Department,
        *,
        deadline: int,
    ) -> SharingTerms:
        """The terms of a request: its fields, its resource's catalog entry and both departments' key epochs
        as the ledger holds them now (what the ledger checks the signatures against)."""
        return cls(
            request_id=request.id, resource_id=request.resource_id, provider=request.provider,
            consumer=request.consumer, purpose_hash=request.purpose_hash, scope_hash=request.scope_hash,
            terms_hash=request.terms_hash, metadata_hash=resource.metadata_hash,
            schema_hash=resource.schema_hash, sensitivity=resource.sensitivity, valid_from=request.valid_from,
            valid_until=request.valid_until, provider_key_epoch=provider.key_epoch,
            consumer_key_epoch=consumer.key_epoch, deadline=deadline,
        )  # fmt: skip

    @classmethod
    def read(cls, client: ViewCaller, request_id: int, *, deadline: int) -> SharingTerms:
        """The terms of request ``request_id`` read from the ledger (:meth:`from_ledger`).

        Raises:
            LedgerRevertError: RequestUnknown for an id never created.
        """
        request = AccessRequest.read(client, request_id)
        return cls.from_ledger(
            request,
            Resource.read(client, request.resource_id),
            Department.read(client, request.provider),
            Department.read(client, request.consumer),
            deadline=deadline,
        )

    def as_tuple(self) -> tuple[Any, ...]:
        """The struct as a contract call argument."""
        return astuple(self)

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` (camelCase names of the Solidity struct)."""
        return {f["name"]: value for f, value in zip(_SHARING_TERMS_FIELDS, astuple(self), strict=True)}

    def typed_data(self, *, chain_id: int, verifying_contract: str) -> dict[str, Any]:
        """Complete EIP-712 typed data, ready for ``eth_signTypedData_v4`` or ``Account.sign_typed_data``."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "SharingTerms": list(_SHARING_TERMS_FIELDS),
            },
            "primaryType": "SharingTerms",
            "domain": {
                "name": EIP712_NAME,
                "version": EIP712_VERSION,
                "chainId": chain_id,
                "verifyingContract": verifying_contract,
            },
            "message": self.message(),
        }


@dataclass(frozen=True)
class DeliveryReceipt:
    """Everything recorded about one delivery, in the order of the Solidity struct."""

    grant_id: int
    provider: int
    consumer: int
    commitment: bytes
    hash_algorithm: int
    byte_size: int
    record_count: int
    recorded_at: int

    def as_tuple(self) -> tuple[Any, ...]:
        return astuple(self)

    @classmethod
    def from_event_args(cls, grant_id: int, args: dict[str, Any]) -> DeliveryReceipt:
        """Rebuild a receipt from a ``DeliveryRecorded`` event's decoded args."""
        return cls(
            grant_id=grant_id,
            provider=args["provider"],
            consumer=args["consumer"],
            commitment=bytes(args["commitment"]),
            hash_algorithm=args["hashAlgorithm"],
            byte_size=args["byteSize"],
            record_count=args["recordCount"],
            recorded_at=args["recordedAt"],
        )


# --- records the ledger's views return ----------------------------------------------------------------------
#
# Each view answers a struct as a tuple in the Solidity field order; ``decode`` is the one place that order is
# known. Everything above the client reads fields by name and statuses as enums, never ``record[3] == 1``.


class ViewCaller(Protocol):
    """What reading a record needs of a client (:class:`node.chain.LedgerClient` is one)."""

    def call(self, fn: str, *args: Any, block: str | int = ..., sender: str | None = ...) -> Any: ...


class ViewBatchCaller(Protocol):
    """What reading many records at once needs of a client (:class:`node.chain.LedgerClient` is one)."""

    def call_many(self, fn: str, calls: Sequence[Sequence[Any]], *, block: str | int = ...) -> list[Any]: ...


class _Record:
    #: The ledger's view function that answers this record by id.
    VIEW: ClassVar[str]

    @classmethod
    def decode(cls, ident: int, raw: Sequence[Any]) -> Self:
        raise NotImplementedError

    @classmethod
    def read(cls, client: ViewCaller, ident: int, *, block: str | int = "latest") -> Self:
        """The record ``ident`` as the ledger holds it at ``block``.

        Raises:
            LedgerRevertError: the view reverted (an unknown id: ``RequestUnknown``, ``GrantUnknown``, …).
            NodeError: the node is unreachable.
        """
        return cls.decode(ident, client.call(cls.VIEW, ident, block=block))

    @classmethod
    def read_many(
        cls, client: ViewBatchCaller, idents: Sequence[int], *, block: str | int = "latest"
    ) -> list[Self]:
        """The records ``idents`` as :meth:`read` answers each, read in JSON-RPC batches: a reader of many
        records pays one round trip, not one per record.

        Raises:
            LedgerRevertError: a view reverted (the first in order).
            NodeError: the node is unreachable.
        """
        answers = client.call_many(cls.VIEW, [(i,) for i in idents], block=block)
        return [cls.decode(i, raw) for i, raw in zip(idents, answers, strict=True)]


@dataclass(frozen=True)
class Department(_Record):
    """``department(id)``: ``Department`` of ``contracts/src/types/Ledger.sol``."""

    VIEW: ClassVar[str] = "department"

    id: int
    signer: str  # checksummed
    status: DepartmentStatus
    code: str
    encryption_key: bytes
    name: str
    key_epoch: int
    contract_signer: bool

    @classmethod
    def decode(cls, ident: int, raw: Sequence[Any]) -> Department:
        from verifier.eth import to_checksum_address

        signer, status, code, encryption_key, name, key_epoch, contract_signer = raw
        return cls(
            id=ident, signer=to_checksum_address(signer), status=DepartmentStatus(status),
            code=decode_code(code), encryption_key=bytes(encryption_key), name=str(name),
            key_epoch=int(key_epoch), contract_signer=bool(contract_signer),
        )  # fmt: skip


@dataclass(frozen=True)
class Resource(_Record):
    """``resource(id)``: a catalog entry (``Resource``)."""

    VIEW: ClassVar[str] = "resource"

    id: int
    owner: int
    share_type: ShareType
    sensitivity: int
    metadata_hash: bytes
    schema_hash: bytes

    @classmethod
    def decode(cls, ident: int, raw: Sequence[Any]) -> Resource:
        owner, share_type, sensitivity, metadata_hash, schema_hash = raw
        return cls(
            id=ident, owner=int(owner), share_type=ShareType(share_type), sensitivity=int(sensitivity),
            metadata_hash=bytes(metadata_hash), schema_hash=bytes(schema_hash),
        )  # fmt: skip


@dataclass(frozen=True)
class AccessRequest(_Record):
    """``request(id)``: ``AccessRequest``."""

    VIEW: ClassVar[str] = "request"

    id: int
    resource_id: int
    consumer: int
    provider: int
    status: RequestStatus
    requested_at: int
    decided_at: int
    reason_code: int
    valid_from: int
    valid_until: int
    purpose_hash: bytes
    scope_hash: bytes
    terms_hash: bytes

    @classmethod
    def decode(cls, ident: int, raw: Sequence[Any]) -> AccessRequest:
        (resource_id, consumer, provider, status, requested_at, decided_at, reason_code, valid_from,
         valid_until, purpose_hash, scope_hash, terms_hash) = raw  # fmt: skip
        return cls(
            id=ident, resource_id=int(resource_id), consumer=int(consumer), provider=int(provider),
            status=RequestStatus(status), requested_at=int(requested_at), decided_at=int(decided_at),
            reason_code=int(reason_code), valid_from=int(valid_from), valid_until=int(valid_until),
            purpose_hash=bytes(purpose_hash), scope_hash=bytes(scope_hash), terms_hash=bytes(terms_hash),
        )  # fmt: skip


@dataclass(frozen=True)
class Agreement(_Record):
    """``agreement(id)``: ``Agreement``."""

    VIEW: ClassVar[str] = "agreement"

    id: int
    request_id: int
    resource_id: int
    provider: int
    consumer: int
    status: AgreementStatus
    valid_from: int
    valid_until: int
    terms_digest: bytes

    @classmethod
    def decode(cls, ident: int, raw: Sequence[Any]) -> Agreement:
        request_id, resource_id, provider, consumer, status, valid_from, valid_until, terms_digest = raw
        return cls(
            id=ident, request_id=int(request_id), resource_id=int(resource_id), provider=int(provider),
            consumer=int(consumer), status=AgreementStatus(status), valid_from=int(valid_from),
            valid_until=int(valid_until), terms_digest=bytes(terms_digest),
        )  # fmt: skip


@dataclass(frozen=True)
class Grant(_Record):
    """``grant(id)``: ``Grant``."""

    VIEW: ClassVar[str] = "grant"

    id: int
    agreement_id: int
    provider: int
    consumer: int
    expires_at: int
    revoked: bool

    @classmethod
    def decode(cls, ident: int, raw: Sequence[Any]) -> Grant:
        agreement_id, provider, consumer, expires_at, revoked = raw
        return cls(
            id=ident, agreement_id=int(agreement_id), provider=int(provider), consumer=int(consumer),
            expires_at=int(expires_at), revoked=bool(revoked),
        )  # fmt: skip


@dataclass(frozen=True)
class Proposal(_Record):
    """``proposal(id)``: a governance proposal as the view answers it (the count of approvals that stand, not
    the approvers). ``data`` is the action's ABI-encoded arguments."""

    VIEW: ClassVar[str] = "proposal"

    id: int
    action: GovernanceAction
    proposer: str  # checksummed
    approvals: int
    executed: bool
    expires_at: int
    data: bytes
    cancelled: bool

    @classmethod
    def decode(cls, ident: int, raw: Sequence[Any]) -> Proposal:
        from verifier.eth import to_checksum_address

        action, proposer, approvals, executed, expires_at, data = raw[:6]
        return cls(
            id=ident, action=GovernanceAction(action), proposer=to_checksum_address(proposer),
            approvals=int(approvals), executed=bool(executed), expires_at=int(expires_at), data=bytes(data),
            # A ledger whose proposals can be cancelled says so in a seventh field.
            cancelled=bool(raw[6]) if len(raw) > 6 else False,
        )  # fmt: skip
