"""Known-answer vectors (vectors/*.json): hash standards, RFC 6962 and salted trees, proofs, leaf cutting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verifier import errors
from verifier.commitment import commit_payload
from verifier.hashing import HashAlgorithm, TreeHasher, digest
from verifier.leaves import Chunking, PayloadFormat, hash_leaves
from verifier.tree import inclusion_proof, root_of, verify_inclusion

VECTORS = Path(__file__).parent / "vectors"


def _load(name: str) -> list[Any]:
    cases = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return [pytest.param(c, id=c["desc"]) for c in cases]


@pytest.mark.parametrize("case", _load("hash_vectors.json"))
def test_hash_standard_vectors(case: dict[str, Any]) -> None:
    alg = HashAlgorithm.parse(case["alg"])
    assert digest(alg, bytes.fromhex(case["message_hex"])).hex() == case["want"]


@pytest.mark.parametrize("case", _load("tree_vectors.json"))
def test_tree_root_vectors(case: dict[str, Any]) -> None:
    hasher = TreeHasher(HashAlgorithm.parse(case["alg"]), bytes.fromhex(case["salt"]))
    leaves = [hasher.leaf(bytes.fromhex(x)) for x in case["leaves"]]
    assert root_of(hasher, leaves).hex() == case["want_root"]
    if "want_not_root" in case:  # a root another convention would give, which dxl's must not be
        assert case["want_not_root"] != case["want_root"]


@pytest.mark.parametrize("case", _load("inclusion_vectors.json"))
def test_inclusion_vectors(case: dict[str, Any]) -> None:
    alg = HashAlgorithm.parse(case["alg"])
    leaf_hash = TreeHasher(alg, b"").leaf(bytes.fromhex(case["leaf"]))
    proof = [bytes.fromhex(p) for p in case["proof"]]
    root = bytes.fromhex(case["root"])
    if case["want_err"] is None:
        verify_inclusion(alg, case["index"], case["size"], leaf_hash, proof, root)
    else:
        with pytest.raises(getattr(errors, case["want_err"])):
            verify_inclusion(alg, case["index"], case["size"], leaf_hash, proof, root)


def test_inclusion_proof_generation_matches_reference_paths() -> None:
    vectors = json.loads((VECTORS / "inclusion_vectors.json").read_text())
    hasher = TreeHasher(HashAlgorithm.SHA256, b"")
    rfc_leaves = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    leaves = [hasher.leaf(bytes.fromhex(x)) for x in rfc_leaves]
    for case in vectors:
        if case["want_err"] is None and case["size"] == 8:
            assert [p.hex() for p in inclusion_proof(HashAlgorithm.SHA256, leaves, case["index"])] == case[
                "proof"
            ]


@pytest.mark.parametrize("case", _load("payload_vectors.json"))
def test_payload_leaf_vectors(case: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "payload"
    path.write_bytes(bytes.fromhex(case["content_hex"]))
    chunking = Chunking(PayloadFormat(case["format"]), case["chunk_size"])
    alg, salt = HashAlgorithm.parse(case["alg"]), bytes.fromhex(case["salt"])
    if "want_err" in case:
        with pytest.raises(getattr(errors, case["want_err"])):
            commit_payload(path, alg=alg, salt=salt, chunking=chunking)
        return
    hasher = TreeHasher(alg, salt)
    want_leaves = [hasher.leaf(bytes.fromhex(x)) for x in case["want_leaves_hex"]]
    assert list(hash_leaves(path, chunking, hasher)) == want_leaves
    c = commit_payload(path, alg=alg, salt=salt, chunking=chunking, keep_leaf_hashes=True)
    assert c.root.hex() == case["want_root"]
    assert c.leaf_count == len(want_leaves)
    assert c.record_count == case["want_record_count"]
    assert c.byte_size == len(bytes.fromhex(case["content_hex"]))


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (1, HashAlgorithm.SHA256),
        (2, HashAlgorithm.SM3),
        ("sha256", HashAlgorithm.SHA256),
        ("SHA-256", HashAlgorithm.SHA256),
        ("sm3", HashAlgorithm.SM3),
        (0, errors.UnsupportedAlgorithmError),
        (3, errors.UnsupportedAlgorithmError),
        (True, errors.UnsupportedAlgorithmError),
        ("md5", errors.UnsupportedAlgorithmError),
        (None, errors.UnsupportedAlgorithmError),
    ],
)
def test_algorithm_ids_are_the_on_chain_ones(value: object, want: object) -> None:
    if isinstance(want, type) and issubclass(want, Exception):
        with pytest.raises(want):
            HashAlgorithm.parse(value)
    else:
        assert HashAlgorithm.parse(value) is want


def test_sm3_fallback_through_cryptography_agrees_with_hashlib() -> None:
    from verifier.hashing import _CryptographySM3

    h = _CryptographySM3()
    h.update(b"ab")
    copy = h.copy()
    h.update(b"c")
    copy.update(b"c")
    assert h.digest() == copy.digest() == digest(HashAlgorithm.SM3, b"abc")


@pytest.mark.parametrize(
    "tail", [b"\nz\n", b"\nz", b"\n", b""], ids=["more records", "no final LF", "final LF", "EOF"]
)
def test_jsonl_line_longer_than_a_read_block_is_one_leaf(tmp_path: Path, tail: bytes) -> None:
    long_line = bytes(range(1, 256)).replace(b"\n", b"") * (3 * 4200)  # ~3 MiB, several read blocks
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"a\n" + long_line + tail)
    hasher = TreeHasher(HashAlgorithm.SHA256, b"\x01" * 32)
    want = [hasher.leaf(b"a"), hasher.leaf(long_line)] + ([hasher.leaf(b"z")] if b"z" in tail else [])
    assert list(hash_leaves(path, Chunking(PayloadFormat.JSONL), hasher)) == want


def test_csv_row_boundaries_on_a_larger_file(tmp_path: Path) -> None:
    rows = [b"id,text"] + [b'%d,"multi\nline %d, with ""quotes"""' % (i, i) for i in range(30000)]
    path = tmp_path / "big.csv"
    path.write_bytes(b"\r\n".join(rows) + b"\r\n")
    hasher = TreeHasher(HashAlgorithm.SM3, b"\x02" * 32)
    c = commit_payload(path, alg=HashAlgorithm.SM3, salt=b"\x02" * 32, chunking=Chunking(PayloadFormat.CSV))
    assert c.record_count == 30000
    assert c.root == root_of(hasher, hasher.leaves([r + b"\r" for r in rows]))


@pytest.mark.parametrize("fmt", [PayloadFormat.JSONL, PayloadFormat.CSV])
def test_process_pool_and_thread_pool_commit_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: PayloadFormat
) -> None:
    import verifier.leaves

    long_line = b"x" * (3 << 20)  # forces the incremental path for JSON Lines
    if fmt is PayloadFormat.JSONL:
        rows = [b'{"id":%d}' % i for i in range(20000)]
        rows[500] = long_line
    else:
        rows = [b"id,v"] + [b'%d,"v\n%d"' % (i, i) for i in range(20000)]
    path = tmp_path / "p"
    path.write_bytes(b"\n".join(rows))
    seen: list[int] = []

    def commit() -> tuple[bytes, int]:
        seen.clear()
        c = commit_payload(path, salt=b"\x03" * 32, chunking=Chunking(fmt), workers=2, progress=seen.append)
        return c.root, c.leaf_count

    on_threads = commit()
    monkeypatch.setattr(verifier.leaves, "PROCESS_POOL_MIN_SIZE", 0)
    on_processes = commit()
    assert on_processes == on_threads
    hasher = TreeHasher(HashAlgorithm.SHA256, b"\x03" * 32)
    if fmt is PayloadFormat.JSONL:
        assert on_threads == (root_of(hasher, hasher.leaves(rows)), len(rows))
        assert sum(seen) == path.stat().st_size
