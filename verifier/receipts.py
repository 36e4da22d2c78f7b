"""Receipt batches: delivery receipts as leaves of an RFC 6962-shaped tree whose root is anchored on chain.

A receipt is the six fields of a delivery (id, grant, commitment, hash algorithm id, byte size, record count).
Its leaf is ``SHA-256(0x00 || abi.encode(receipt))`` and inner nodes are ``SHA-256(0x01 || left || right)``:
the tree of :mod:`verifier.tree` with an empty salt, so one proof format serves payloads and receipts, and
exactly what the ``ReceiptAnchors`` contract recomputes on chain (``ReceiptTrees.sol``).

A grant's receipts are numbered 0, 1, 2, ... in the order they are anchored; a batch holds the receipts
``first_sequence .. first_sequence + leaf_count - 1`` of one grant, and receipt ``sequence`` is leaf
``sequence - first_sequence`` of its batch.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from verifier.delivery_ids import delivery_id_provider
from verifier.errors import InvalidProofError
from verifier.hashing import HashAlgorithm
from verifier.text import counted
from verifier.tree import verify_inclusion

#: Bytes of one encoded receipt: six ABI words.
RECEIPT_SIZE = 6 * 32
_UINT64_MAX = (1 << 64) - 1
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
#: ``abi.encode`` of the six fields in one ``struct`` call: bytes32, uint64 (24 zero bytes, 8 big-endian),
#: bytes32, uint8 (31 zero bytes, 1), uint64, uint64. ``pack`` refuses an integer out of its type's range;
#: the byte fields' lengths are checked apart (``32s`` would pad or cut them silently).
_ENCODED = struct.Struct(">32s24xQ32s31xB24xQ24xQ")
#: The same behind the leaf prefix (a zero byte): a leaf's hash input in one call.
_LEAF_INPUT = struct.Struct(">x32s24xQ32s31xB24xQ24xQ")


class Receipt(NamedTuple):
    """One delivery receipt, as ``DeliveryRecord`` in the contracts. A named tuple, not a frozen dataclass:
    the service builds one for every receipt ``POST /receipts`` brings, on its hot path, at less than half
    the cost (immutable all the same)."""

    delivery_id: bytes
    grant_id: int
    commitment: bytes
    hash_algorithm: int
    byte_size: int
    record_count: int

    def encode(self) -> bytes:
        """``abi.encode(receipt)``: six 32-byte words, the integers big-endian and right-aligned."""
        return encode_receipt(
            self.delivery_id,
            self.grant_id,
            self.commitment,
            self.hash_algorithm,
            self.byte_size,
            self.record_count,
        )

    def leaf_hash(self) -> bytes:
        return hashlib.sha256(_LEAF_PREFIX + self.encode()).digest()

    def as_tuple(self) -> tuple[bytes, int, bytes, int, int, int]:
        """The ``DeliveryRecord`` struct as web3 takes it."""
        return (self.delivery_id, self.grant_id, self.commitment, self.hash_algorithm, self.byte_size,
                self.record_count)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": "0x" + self.delivery_id.hex(),
            "grant_id": self.grant_id,
            "commitment": "0x" + self.commitment.hex(),
            "hash_algorithm": self.hash_algorithm,
            "byte_size": self.byte_size,
            "record_count": self.record_count,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Receipt:
        """Parse :meth:`to_json`'s shape.

        Raises:
            InvalidProofError: a field is missing or malformed.
        """
        try:
            return cls(
                delivery_id=_hex32(raw["delivery_id"]),
                grant_id=_uint(raw["grant_id"]),
                commitment=_hex32(raw["commitment"]),
                hash_algorithm=_uint(raw["hash_algorithm"]),
                byte_size=_uint(raw["byte_size"]),
                record_count=_uint(raw["record_count"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, InvalidProofError):
                raise
            raise InvalidProofError(f"receipt lacks or mangles {e}") from None


#: The hash algorithm ids the ledger accepts for a delivery (``recordDelivery``; ``LAST_HASH_ALGORITHM`` in
#: the contracts' ``types/Ledger.sol``).
LEDGER_HASH_ALGORITHMS = frozenset(int(a) for a in HashAlgorithm)


def undeliverable_fields(receipt: Receipt, provider: int) -> tuple[str, ...]:
    """The fields for which the ledger's ``recordDelivery`` refuses ``receipt`` as a single delivery of
    department ``provider``, in the order it checks them: ``commitment`` (zero), ``hash_algorithm`` (not one
    the ledger accepts), ``delivery_id`` (not in the provider's namespace; a zero id is in none, department
    ids start at 1). Empty for a receipt a delivery could be; byte size and record count are any uint64 there.

    A receipt with such a field is no receipt: the ``ReceiptAnchors`` contract never sees the leaves it
    anchors, so a provider anchoring past the service may anchor one and its batch's root holds, and
    ``receiptIncluded`` denies it (``disputeReceipt`` reverts with the ledger's error for the first field).
    """
    fields = []
    if receipt.commitment == bytes(32):
        fields.append("commitment")
    if receipt.hash_algorithm not in LEDGER_HASH_ALGORITHMS:
        fields.append("hash_algorithm")
    if delivery_id_provider(receipt.delivery_id) != provider:
        fields.append("delivery_id")
    return tuple(fields)


def encode_receipt(
    delivery_id: bytes,
    grant_id: int,
    commitment: bytes,
    hash_algorithm: int,
    byte_size: int,
    record_count: int,
) -> bytes:
    """``abi.encode`` of a receipt's fields without a general ABI encoder (this runs once per receipt).

    Raises:
        InvalidProofError: a field does not fit its Solidity type (bytes32, uint64, uint8).
    """
    fields = (delivery_id, grant_id, commitment, hash_algorithm, byte_size, record_count)
    return _pack(_ENCODED, fields)


def _pack(layout: struct.Struct, fields: tuple[bytes, int, bytes, int, int, int]) -> bytes:
    if len(fields[0]) != 32 or len(fields[2]) != 32:
        raise InvalidProofError("delivery id and commitment must be 32 bytes each")
    try:
        return layout.pack(*fields)
    except struct.error:
        pass
    if isinstance(fields[3], int) and not 0 <= fields[3] <= 255:
        raise InvalidProofError("hash algorithm id must fit 8 bits")
    raise InvalidProofError("grant id, byte size and record count must fit 64 bits")


def leaf_hash(encoded_receipt: bytes) -> bytes:
    """SHA-256(0x00 || encoded receipt)."""
    return hashlib.sha256(_LEAF_PREFIX + encoded_receipt).digest()


def leaf_hashes(receipts: Sequence[tuple[bytes, int, bytes, int, int, int]]) -> list[bytes]:
    """The leaf hash of each receipt given as its six fields in :class:`Receipt`'s order (a
    :class:`Receipt`, or a plain tuple): ``leaf_hash(encode_receipt(*fields))`` in one ``struct`` call and
    one hash each, for the thousands of receipts a request brings.

    Raises:
        InvalidProofError: a field does not fit its Solidity type, as :func:`encode_receipt`.
    """
    sha256, pack = hashlib.sha256, _LEAF_INPUT.pack
    try:
        out = [sha256(pack(*f)).digest() for f in receipts if len(f[0]) == 32 and len(f[2]) == 32]
    except struct.error:
        out = []
    if len(out) == len(receipts):
        return out
    # Some field does not fit: the checked path raises, naming it.
    return [hashlib.sha256(_pack(_LEAF_INPUT, f)).digest() for f in receipts]


class BatchTree:
    """All levels of one batch's tree, so that every leaf's audit path is read off in O(log n).

    Built bottom-up: each level pairs its nodes left to right and carries a last, unpaired node up unchanged.
    That is the RFC 6962 tree (split at the largest power of two below n), computed without recursion; the
    equivalence is checked against :func:`verifier.tree.inclusion_proof` by the tests.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        if not leaf_hashes:
            raise InvalidProofError("a receipt batch has at least one receipt")
        sha256 = hashlib.sha256
        level = list(leaf_hashes)
        levels = [level]
        while len(level) > 1:
            paired = [
                sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
            ]
            if len(level) & 1:
                paired.append(level[-1])
            level = paired
            levels.append(level)
        self._levels = levels

    @property
    def size(self) -> int:
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index`` (0-based; the caller keeps it inside the batch)."""
        return self._levels[0][index]

    def proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index``, from its sibling up (RFC 6962 section 2.1.1).

        Raises:
            InvalidProofError: ``index`` is outside the batch.
        """
        if not 0 <= index < self.size:
            raise InvalidProofError(f"index {index} is outside a batch of {counted(self.size, 'receipt')}")
        path: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path


def batch_root(leaf_hashes: Sequence[bytes]) -> bytes:
    return BatchTree(leaf_hashes).root


@dataclass(frozen=True)
class StatedAnchoring:
    """What a ``GET /receipts/{id}`` answer states of its receipt's batch beside the proof, which the proof
    does not prove and the chain does: the batch's parties and where it was anchored, each as the answer
    writes it (None where it states nothing). :func:`verifier.receipt_check.check_receipt` holds them to the
    chain."""

    provider: Any = None
    consumer: Any = None
    tx_hash: Any = None
    block_number: Any = None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> StatedAnchoring:
        batch = answer.get("batch")
        batch = batch if isinstance(batch, dict) else {}
        return cls(
            answer.get("provider"), answer.get("consumer"), batch.get("tx_hash"), batch.get("block_number")
        )


@dataclass(frozen=True)
class ReceiptProof:
    """A receipt with what proves it: its batch (grant, first sequence, leaf count, root) and its audit path.

    The root in here is what the prover claims; :func:`verify_receipt_proof` checks consistency only, and
    callers MUST compare ``root`` and ``leaf_count`` with the batch anchored on chain
    (``ReceiptAnchors.batch(grant_id, first_sequence)``), as :mod:`verifier.onchain` does.
    """

    receipt: Receipt
    first_sequence: int
    index: int
    leaf_count: int
    root: bytes
    proof: tuple[bytes, ...]
    #: What the answer the proof was read from states of its batch (:meth:`from_answer`); None for a bare
    #: proof.
    stated: StatedAnchoring | None = field(default=None, compare=False)

    @property
    def sequence(self) -> int:
        return self.first_sequence + self.index

    def to_json(self) -> dict[str, Any]:
        return {
            "receipt": self.receipt.to_json(),
            "sequence": self.sequence,
            "batch": {
                "grant_id": self.receipt.grant_id,
                "first_sequence": self.first_sequence,
                "leaf_count": self.leaf_count,
                "root": "0x" + self.root.hex(),
            },
            "index": self.index,
            "proof": ["0x" + p.hex() for p in self.proof],
        }

    @classmethod
    def from_answer(cls, raw: Any, *, anchors: str | None = None) -> ReceiptProof:
        """The proof in a ``GET /receipts/{id}`` answer (its ``proof`` object), or a bare proof.

        A whole answer states the receipt, its sequence, its batch and the anchors contract beside its proof;
        each one it states must be the proof's (and ``anchors``, the contract the caller checks the proof
        against, when given): a check speaks for the proof's receipt only, and an answer for one receipt
        carrying another's proof, or the right proof beside another commitment, was taken for what it said.

        Raises:
            InvalidProofError: neither, a field is missing or malformed, or the answer states a field of the
                receipt, its batch or its anchors otherwise than its proof (or ``anchors``).
        """
        if isinstance(raw, dict) and "receipt" not in raw and "proof" in raw:
            if raw["proof"] is None:
                raise InvalidProofError("the receipt has no proof yet: its batch is not anchored")
            proof = cls.from_json(raw["proof"])
            proof._hold_answer(raw, anchors)
            return replace(proof, stated=StatedAnchoring.of(raw))
        return cls.from_json(raw)

    def _hold_answer(self, answer: dict[str, Any], anchors: str | None) -> None:
        """Raises InvalidProofError naming the first field ``answer`` states otherwise than this proof, or
        the anchors it names when they are not ``anchors``."""
        r = self.receipt
        label = HashAlgorithm(r.hash_algorithm).label if r.hash_algorithm in LEDGER_HASH_ALGORITHMS else None
        batch = answer.get("batch")
        batch = batch if isinstance(batch, dict) else {}
        proven: list[tuple[str, dict[str, Any], str, Any]] = [
            ("delivery_id", answer, "delivery_id", "0x" + r.delivery_id.hex()),
            ("grant_id", answer, "grant_id", r.grant_id),
            ("commitment", answer, "commitment", "0x" + r.commitment.hex()),
            ("hash_algorithm", answer, "hash_algorithm", label),
            ("byte_size", answer, "byte_size", r.byte_size),
            ("record_count", answer, "record_count", r.record_count),
            ("sequence", answer, "sequence", self.sequence),
            ("batch grant_id", batch, "grant_id", r.grant_id),
            ("batch first_sequence", batch, "first_sequence", self.first_sequence),
            ("batch leaf_count", batch, "leaf_count", self.leaf_count),
            ("batch root", batch, "root", "0x" + self.root.hex()),
        ]
        for name, where, key, value in proven:
            if key in where and not same_stated(where[key], value):
                raise InvalidProofError(
                    f"the answer states {name} {where[key]!r}, its proof {value!r}: the proof is not of the "
                    "receipt the answer states"
                )
        if anchors is not None and "anchors" in answer and not same_stated(answer["anchors"], anchors):
            raise InvalidProofError(
                f"the answer names the receipt anchors {answer['anchors']!r}, the proof is checked against "
                f"{anchors}: the answer is of another contract's receipt"
            )

    @classmethod
    def from_json(cls, raw: Any) -> ReceiptProof:
        """Parse :meth:`to_json`'s shape (also the ``proof`` object of ``GET /receipts/{id}``).

        Raises:
            InvalidProofError: a field is missing or malformed.
        """
        try:
            b = raw["batch"]
            receipt = Receipt.from_json(raw["receipt"])
            if _uint(b["grant_id"]) != receipt.grant_id:
                raise InvalidProofError("the batch's grant is not the receipt's grant")
            first, index = _uint(b["first_sequence"]), _uint(raw["index"])
            # The sequence is derived, not read: one stated otherwise was ignored and the proof checked for
            # the receipt at first_sequence + index, under a file that names another.
            if "sequence" in raw and _uint(raw["sequence"]) != first + index:
                raise InvalidProofError(
                    f"the proof's sequence {raw['sequence']} is not its batch's first sequence {first} plus "
                    f"its index {index}"
                )
            return cls(
                receipt=receipt,
                first_sequence=first,
                index=index,
                leaf_count=_uint(b["leaf_count"]),
                root=_hex32(b["root"]),
                proof=tuple(_hex32(p) for p in raw["proof"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, InvalidProofError):
                raise
            raise InvalidProofError(f"receipt proof lacks or mangles {e}") from None


def same_stated(stated: Any, value: Any) -> bool:
    """A field an answer states against the proof's: hex and addresses in any casing, numbers as numbers
    (``True`` is not 1)."""
    if isinstance(stated, str) and isinstance(value, str):
        return stated.lower() == value.lower()
    return type(stated) is type(value) and stated == value


def _hex32(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidProofError(f"expected a 0x-prefixed 32-byte hex string, got {type(value).__name__}")
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise InvalidProofError(f"expected 32 bytes, got {len(raw)}")
    return raw


def _uint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidProofError(f"expected a non-negative integer, got {value!r}")
    return value


def verify_receipt_proof(proof: ReceiptProof) -> None:
    """Check that ``proof.receipt`` is leaf ``proof.index`` of the batch tree with ``proof.root``.

    The leaf hash is computed here from the receipt's fields, never taken from the prover. Callers MUST check
    the root and leaf count against the anchored batch.

    Raises:
        InvalidProofError: the proof cannot apply (index outside the batch, wrong path length, a batch that
            numbers receipts past 64 bits, which the contract never anchors).
        RootMismatchError: it leads to another root.
    """
    # The contract's sequence numbers are uint64 and a batch ends below 2**64 - 1 (anchorBatch refuses
    # more): such a proof names no batch the chain can hold, and asking the node for it fails the call.
    if proof.first_sequence + proof.leaf_count > _UINT64_MAX:
        raise InvalidProofError(
            f"a batch of {counted(proof.leaf_count, 'receipt')} from sequence {proof.first_sequence} numbers "
            "receipts past 64 bits"
        )
    verify_inclusion(
        HashAlgorithm.SHA256,
        proof.index,
        proof.leaf_count,
        proof.receipt.leaf_hash(),
        proof.proof,
        proof.root,
    )
