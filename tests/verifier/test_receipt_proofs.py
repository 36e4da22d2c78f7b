"""Receipt batch trees: the same tree as the payload tree (empty salt), proofs that verify and that fail."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode

from verifier.errors import InvalidProofError, RootMismatchError
from verifier.hashing import HashAlgorithm, TreeHasher
from verifier.receipts import BatchTree, Receipt, ReceiptProof, verify_receipt_proof
from verifier.tree import inclusion_proof, root_from_inclusion, root_of


def receipts(n: int, grant_id: int = 7) -> list[Receipt]:
    return [Receipt(os.urandom(32), grant_id, os.urandom(32), 1 + i % 2, 10 * i, i) for i in range(n)]


def test_encode_isTheAbiEncodingOfDeliveryRecord() -> None:
    r = Receipt(os.urandom(32), 2**64 - 1, os.urandom(32), 255, 123_456, 0)
    expected = abi_encode(
        ["(bytes32,uint64,bytes32,uint8,uint64,uint64)"],
        [(r.delivery_id, r.grant_id, r.commitment, r.hash_algorithm, r.byte_size, r.record_count)],
    )
    assert r.encode() == expected
    assert r.leaf_hash() == TreeHasher(HashAlgorithm.SHA256, b"").leaf(expected)


@pytest.mark.parametrize(
    "receipt",
    [
        Receipt(b"\1" * 31, 1, b"\1" * 32, 1, 1, 1),
        Receipt(b"\1" * 32, 2**64, b"\1" * 32, 1, 1, 1),
        Receipt(b"\1" * 32, 1, b"\1" * 32, 256, 1, 1),
        Receipt(b"\1" * 32, 1, b"\1" * 32, 1, -1, 1),
    ],
)
def test_encode_fieldOutOfRange_raises(receipt: Receipt) -> None:
    with pytest.raises(InvalidProofError):
        receipt.encode()


@pytest.mark.parametrize("n", [*range(1, 18), 31, 32, 33, 100])
def test_batchTree_isTheRfc6962TreeOfTheVerifier(n: int) -> None:
    leaves = [r.leaf_hash() for r in receipts(n)]
    tree = BatchTree(leaves)
    assert tree.root == root_of(TreeHasher(HashAlgorithm.SHA256, b""), leaves)
    for index in range(n):
        assert tree.proof(index) == inclusion_proof(HashAlgorithm.SHA256, leaves, index)


def test_batchTree_empty_or_outside_raises() -> None:
    with pytest.raises(InvalidProofError):
        BatchTree([])
    with pytest.raises(InvalidProofError):
        BatchTree([b"\0" * 32]).proof(1)


def proof_of(batch: list[Receipt], index: int, first_sequence: int = 40) -> ReceiptProof:
    tree = BatchTree([r.leaf_hash() for r in batch])
    return ReceiptProof(batch[index], first_sequence, index, len(batch), tree.root, tuple(tree.proof(index)))


def test_verifyReceiptProof_roundTripsThroughJson() -> None:
    batch = receipts(11)
    for index in (0, 5, 10):
        proof = proof_of(batch, index)
        again = ReceiptProof.from_json(proof.to_json())
        assert again == proof and again.sequence == 40 + index
        verify_receipt_proof(again)


def test_verifyReceiptProof_tamperedReceipt_raisesRootMismatch() -> None:
    batch = receipts(6)
    proof = proof_of(batch, 2)
    r = proof.receipt
    for changed in (
        Receipt(r.delivery_id, r.grant_id, r.commitment, r.hash_algorithm, r.byte_size + 1, r.record_count),
        Receipt(os.urandom(32), r.grant_id, r.commitment, r.hash_algorithm, r.byte_size, r.record_count),
    ):
        raw = proof.to_json() | {"receipt": changed.to_json()}
        with pytest.raises(RootMismatchError):
            verify_receipt_proof(ReceiptProof.from_json(raw))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda p: p | {"index": 3, "sequence": p["batch"]["first_sequence"] + 3}, RootMismatchError),
        (lambda p: p | {"index": 6, "sequence": p["batch"]["first_sequence"] + 6}, InvalidProofError),
        (lambda p: p | {"proof": p["proof"][:-1]}, InvalidProofError),
        (lambda p: p | {"batch": p["batch"] | {"leaf_count": 9}}, InvalidProofError),
    ],
)
def test_verifyReceiptProof_wrongPosition_raises(
    change: Callable[[dict[str, Any]], dict[str, Any]], error: type[Exception]
) -> None:
    proof = proof_of(receipts(6), 2).to_json()
    with pytest.raises(error):
        verify_receipt_proof(ReceiptProof.from_json(change(proof)))


@pytest.mark.parametrize(
    "change",
    [
        lambda p: {k: v for k, v in p.items() if k != "proof"},
        lambda p: p | {"index": -1},
        lambda p: p | {"index": True},
        lambda p: p | {"proof": ["0x12"]},
        lambda p: p | {"proof": [7]},
        lambda p: p | {"batch": p["batch"] | {"grant_id": 8}},
        lambda p: p | {"sequence": p["sequence"] + 1},
        lambda p: p | {"receipt": p["receipt"] | {"commitment": "0xzz"}},
    ],
)
def test_receiptProof_fromJson_malformed_raisesInvalidProof(
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    raw = change(proof_of(receipts(3), 1).to_json())
    with pytest.raises(InvalidProofError):
        ReceiptProof.from_json(raw)


ANCHORS = "0x857373f3CDB5098961Cf5a2Bb4fF0Ef45ab2AFf8"


def answer_of(proof: ReceiptProof) -> dict[str, Any]:
    """A ``GET /receipts/{id}`` answer as the service writes it: the receipt, its sequence and batch, its
    proof and the anchors, with the fields the proof does not carry (parties, status, times)."""
    r, raw = proof.receipt, proof.to_json()
    return {**raw["receipt"], "provider": 1, "consumer": 2,
            "hash_algorithm": HashAlgorithm(r.hash_algorithm).label, "status": "final", "accepted_at": 1.5,
            "sequence": proof.sequence,
            "batch": {**raw["batch"], "tx_hash": "0x" + "ee" * 32, "block_number": 9}, "proof": raw,
            "anchors": ANCHORS, "error": None}  # fmt: skip


def test_receiptProof_fromAnswer_readsTheProofOfTheAnswersReceipt() -> None:
    proof = proof_of(receipts(5), 3)
    assert ReceiptProof.from_answer(answer_of(proof), anchors=ANCHORS.lower()) == proof
    assert ReceiptProof.from_answer(answer_of(proof)["proof"], anchors=ANCHORS) == proof  # the bare proof


@pytest.mark.parametrize(
    "field",
    ["delivery_id", "grant_id", "commitment", "hash_algorithm", "byte_size", "record_count", "sequence",
     "batch grant_id", "batch first_sequence", "batch leaf_count", "batch root"],
)  # fmt: skip
def test_receiptProof_fromAnswer_statingAFieldOtherwiseThanItsProof_raisesInvalidProof(field: str) -> None:
    """Each field a ``GET /receipts/{id}`` answer states beside its proof, changed: the proof alone was read,
    and ``dxl verify-receipt`` answered ANCHORED for the receipt with another commitment, size, position or
    batch than its answer said."""
    answer = answer_of(proof_of(receipts(5), 3))
    *inside, key = field.split()
    holder = answer[inside[0]] if inside else answer
    holder[key] = other(holder[key])
    with pytest.raises(InvalidProofError) as refused:
        ReceiptProof.from_answer(answer, anchors=ANCHORS)
    assert refused.value.reason.startswith(f"the answer states {field} {holder[key]!r}, its proof "), (
        refused.value.reason
    )


def test_receiptProof_fromAnswer_carryingAnotherReceiptsProof_raisesInvalidProof() -> None:
    """The answer for one receipt carrying the proof of another of its batch, which holds on chain: the
    check answered for the other receipt, and exit 0 was taken for the one the answer names."""
    batch = receipts(5)
    answer = answer_of(proof_of(batch, 3)) | {"proof": proof_of(batch, 0).to_json()}
    with pytest.raises(InvalidProofError) as refused:
        ReceiptProof.from_answer(answer)
    assert refused.value.reason == (
        f"the answer states delivery_id '0x{batch[3].delivery_id.hex()}', its proof "
        f"'0x{batch[0].delivery_id.hex()}': the proof is not of the receipt the answer states"
    )


def test_receiptProof_fromAnswer_ofOtherAnchors_raisesInvalidProof() -> None:
    answer = answer_of(proof_of(receipts(5), 3))
    theirs = "0x" + "12" * 20
    with pytest.raises(InvalidProofError) as refused:
        ReceiptProof.from_answer(answer, anchors=theirs)
    assert refused.value.reason == (
        f"the answer names the receipt anchors {ANCHORS!r}, the proof is checked against {theirs}: the "
        "answer is of another contract's receipt"
    )


def test_receiptProof_fromAnswer_aNumberStatedAsABoolean_raisesInvalidProof() -> None:
    proof = proof_of(receipts(2), 1, first_sequence=0)  # sequence 1, which True equals in Python
    with pytest.raises(InvalidProofError):
        ReceiptProof.from_answer(answer_of(proof) | {"sequence": True})


def other(value: Any) -> Any:
    """A different value of the same JSON type (hex stays hex)."""
    if isinstance(value, int):
        return value + 1
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_anchorsAbi_shippedWithTheVerifier_isGeneratedFromTheBuildArtifacts() -> None:
    """The receipt check reads the anchors' ABI from the file scripts/verifier-abi.py writes (and make lint
    checks), as the ledger and practice checks do: no entry of it is written by hand."""
    import importlib.util
    import json
    from pathlib import Path

    from verifier.receipt_check import ANCHORS_ABI_FILE, ANCHORS_ABI_NAMES, load_anchors_abi

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("verifier_abi", root / "scripts" / "verifier-abi.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.FILES[ANCHORS_ABI_FILE] == ("ReceiptAnchors", ANCHORS_ABI_NAMES)
    artifact = root / "contracts" / "artifacts" / "ReceiptAnchors.json"
    built = {
        e["name"]: e
        for e in json.loads(artifact.read_text())["abi"]
        if e.get("type") in ("function", "event")
    }
    shipped = load_anchors_abi()
    assert sorted(e["name"] for e in shipped) == sorted(ANCHORS_ABI_NAMES)
    for entry in shipped:
        assert entry == built[entry["name"]]


@pytest.mark.parametrize(
    ("refused", "message"),
    [
        (lambda leaf: BatchTree([leaf]).proof(1), "index 1 is outside a batch of 1 receipt"),
        (lambda leaf: BatchTree([leaf, leaf]).proof(2), "index 2 is outside a batch of 2 receipts"),
        (
            lambda leaf: inclusion_proof(HashAlgorithm.SHA256, [leaf], 1),
            "index 1 is outside a tree of 1 leaf",
        ),
        (
            lambda leaf: root_from_inclusion(HashAlgorithm.SHA256, 0, 1, leaf, [leaf]),
            "path has 1 hash, more than a tree of 1 leaf needs",
        ),
        (
            lambda leaf: root_from_inclusion(HashAlgorithm.SHA256, 0, 3, leaf, [leaf]),
            "path has 1 hash, fewer than a tree of 3 leaves needs",
        ),
        (
            lambda leaf: root_from_inclusion(HashAlgorithm.SHA256, 0, 2, b"\1", []),
            "leaf hash is 1 byte, expected 32",
        ),
    ],
    ids=["batch-of-1", "batch-of-2", "tree-of-1", "path-too-long", "path-too-short", "one-byte-hash"],
)
def test_proof_errors_count_in_agreement(refused: Callable[[bytes], Any], message: str) -> None:
    """A count of one reads in the singular ("a batch of 1 receipt", "1 leaf", "1 hash", "1 byte"): these
    read "1 receipts", "1 leaves", "1 hashes", "1 bytes"."""
    with pytest.raises(InvalidProofError) as refusal:
        refused(b"\0" * 32)
    assert refusal.value.reason == message
