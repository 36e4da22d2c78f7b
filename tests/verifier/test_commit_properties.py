"""Property tests: the streaming tree equals RFC 6962's definition, changes are located, proofs hold."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.verifier.reference import Refused, reference_csv_leaves, reference_jsonl_leaves, reference_root
from verifier.codes import VerdictStatus
from verifier.commitment import commit_payload
from verifier.errors import InvalidProofError, PayloadFormatError, ProofError, RootMismatchError
from verifier.hashing import HashAlgorithm, TreeHasher
from verifier.leaves import Chunking, PayloadFormat, leaf_count_bound
from verifier.manifest import build_manifest
from verifier.tree import inclusion_proof, root_of, verify_inclusion
from verifier.verify import verify_payload

SALT = bytes(range(32))
ALGS = st.sampled_from([HashAlgorithm.SHA256, HashAlgorithm.SM3])


@given(alg=ALGS, n=st.integers(0, 70))
def test_streaming_root_equals_recursive_definition(alg: HashAlgorithm, n: int) -> None:
    h = TreeHasher(alg, SALT)
    leaves = [h.leaf(i.to_bytes(4, "big")) for i in range(n)]
    assert root_of(h, leaves) == reference_root(h, leaves)


@given(alg=ALGS, n=st.integers(1, 40), data=st.data())
def test_inclusion_proofs_verify_for_every_index_and_fail_when_wrong(
    alg: HashAlgorithm, n: int, data: st.DataObject
) -> None:
    h = TreeHasher(alg, SALT)
    leaves = [h.leaf(i.to_bytes(4, "big")) for i in range(n)]
    root = root_of(h, leaves)
    for i in range(n):
        verify_inclusion(alg, i, n, leaves[i], inclusion_proof(alg, leaves, i), root)
    i = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(alg, leaves, i)
    with pytest.raises(RootMismatchError):
        verify_inclusion(alg, i, n, h.leaf(b"not a leaf"), proof, root)
    with pytest.raises(RootMismatchError):
        verify_inclusion(alg, i, n, leaves[i], proof, h.leaf(b"not the root"))
    if n > 1:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        # Another index either changes the path shape (malformed) or the computed root: never a pass.
        with pytest.raises(ProofError):
            verify_inclusion(alg, j, n, leaves[i], proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(alg, i, n, leaves[j], proof, root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(alg, n, n, leaves[i], proof, root)


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(min_size=1, max_size=3000),
    chunk=st.integers(1, 300),
    data=st.data(),
)
def test_any_single_byte_change_is_detected_and_located(
    payload: bytes, chunk: int, data: st.DataObject
) -> None:
    pos = data.draw(st.integers(0, len(payload) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != payload[pos]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.bin"
        path.write_bytes(payload)
        c = commit_payload(
            path, salt=SALT, chunking=Chunking(PayloadFormat.BYTES, chunk), keep_leaf_hashes=True
        )
        manifest = build_manifest(c, delivery_id=b"\x01" * 32)
        assert verify_payload(path, manifest).status is VerdictStatus.MATCH
        changed = bytearray(payload)
        changed[pos] = new
        path.write_bytes(bytes(changed))
        verdict = verify_payload(path, manifest)
    assert verdict.status is VerdictStatus.MISMATCH
    assert verdict.differing_leaves == (pos // chunk,)


RECORD = st.binary(min_size=0, max_size=40).filter(lambda b: b"\n" not in b)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(RECORD, min_size=1, max_size=30), data=st.data())
def test_changed_jsonl_record_is_located(records: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(records) - 1))
    replacement = data.draw(RECORD.filter(lambda r: r != records[i]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.jsonl"
        path.write_bytes(b"".join(r + b"\n" for r in records))
        c = commit_payload(path, salt=SALT, chunking=Chunking(PayloadFormat.JSONL), keep_leaf_hashes=True)
        manifest = build_manifest(c, delivery_id=b"\x01" * 32)
        changed = list(records)
        changed[i] = replacement
        path.write_bytes(b"".join(r + b"\n" for r in changed))
        verdict = verify_payload(path, manifest)
    assert verdict.status is VerdictStatus.MISMATCH
    assert verdict.differing_leaves == (i,)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.binary(max_size=400) | st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b"\r", b"x\n"]),
                                              max_size=60).map(b"".join),
    chunking=st.sampled_from([Chunking(PayloadFormat.BYTES, 1), Chunking(PayloadFormat.BYTES, 7),
                              Chunking(PayloadFormat.JSONL), Chunking(PayloadFormat.CSV)]),
)  # fmt: skip
def test_leaf_count_bound_is_exact_for_bytes_and_lines_and_never_below_csv_rows(
    payload: bytes, chunking: Chunking
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload"
        path.write_bytes(payload)
        try:
            leaves = commit_payload(path, salt=SALT, chunking=chunking).leaf_count
        except PayloadFormatError:  # malformed CSV quoting: no leaves to count
            return
    bound = leaf_count_bound(payload, chunking)
    assert bound == leaves if chunking.format is not PayloadFormat.CSV else bound >= leaves


CSV_BYTES = st.sampled_from([b"a", b" ", b",", b'"', b'""', b"\n", b"\r", b"\r\n", b"\x00", b"\xe4\xb8\xad"])


@settings(max_examples=200, deadline=None)
@given(
    payload=st.lists(CSV_BYTES, max_size=40).map(b"".join),
    fmt=st.sampled_from([PayloadFormat.CSV, PayloadFormat.JSONL]),
)
def test_leaves_are_those_manifest_md_describes(payload: bytes, fmt: PayloadFormat) -> None:
    """An implementation written from verifier/MANIFEST.md alone (tests/verifier/reference.py) cuts every
    payload into the leaves dxl commits to, with the record count the document gives, and refuses exactly the
    CSV payloads dxl refuses."""
    reference = reference_csv_leaves if fmt is PayloadFormat.CSV else reference_jsonl_leaves
    try:
        want: list[bytes] | None = reference(payload)
    except Refused:
        want = None
    h = TreeHasher(HashAlgorithm.SHA256, SALT)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload"
        path.write_bytes(payload)
        try:
            c = commit_payload(path, salt=SALT, chunking=Chunking(fmt), keep_leaf_hashes=True)
        except PayloadFormatError:
            assert want is None, f"dxl refused what the document accepts: {payload!r} -> {want!r}"
            return
    assert want is not None, f"dxl accepted what the document refuses: {payload!r}"
    assert c.leaf_hashes == tuple(h.leaf(leaf) for leaf in want), (payload, want)
    assert c.root == reference_root(h, [h.leaf(leaf) for leaf in want])
    records = len(want) if fmt is PayloadFormat.JSONL else max(len(want) - 1, 0)
    assert (c.leaf_count, c.record_count, c.byte_size) == (len(want), records, len(payload))
