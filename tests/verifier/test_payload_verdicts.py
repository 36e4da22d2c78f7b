"""Bad inputs against a committed delivery: always the right verdict or a clear error, never a false MATCH."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from verifier.codes import VerdictStatus
from verifier.commitment import commit_payload
from verifier.errors import ManifestError, PayloadFormatError, PayloadReadError
from verifier.hashing import HashAlgorithm
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import Manifest, build_manifest, parse_manifest, sign_manifest
from verifier.verify import Anchor, check_delivery, verify_payload

SALT = bytes.fromhex("5a" * 32)
DELIVERY = bytes.fromhex("d1" * 32)
PROVIDER = Account.from_key("0x" + "11" * 32)
STRANGER = Account.from_key("0x" + "22" * 32)
RECORDS = [json.dumps({"id": i, "name": f"person {i}"}).encode() for i in range(50)]


def _jsonl(records: list[bytes]) -> bytes:
    return b"".join(r + b"\n" for r in records)


def _commit(path: Path, *, leaves: bool = True, fmt: PayloadFormat = PayloadFormat.JSONL) -> Manifest:
    c = commit_payload(path, salt=SALT, chunking=Chunking(fmt, 64), keep_leaf_hashes=leaves)
    return sign_manifest(build_manifest(c, delivery_id=DELIVERY, include_leaf_hashes=leaves), PROVIDER)


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _swap(records: list[bytes], i: int, j: int) -> list[bytes]:
    out = list(records)
    out[i], out[j] = out[j], out[i]
    return out


OFFSET_OF_RECORD_7 = len(_jsonl(RECORDS[:7])) + 3

# (name, new payload bytes, differing leaves, missing range, extra range)
CHANGES: list[tuple[str, bytes, tuple[int, ...], Any, Any]] = [
    ("truncated by 5 records", _jsonl(RECORDS[:45]), (), (45, 50), None),
    ("truncated mid-record", _jsonl(RECORDS)[:-10], (49,), None, None),
    ("extended by 2 records", _jsonl([*RECORDS, b"{}", b"{}"]), (), None, (50, 52)),
    ("one flipped byte in record 7", _flip(_jsonl(RECORDS), OFFSET_OF_RECORD_7), (7,), None, None),
    ("records 3 and 7 reordered", _jsonl(_swap(RECORDS, 3, 7)), (3, 7), None, None),
    ("final newline removed", _jsonl(RECORDS)[:-1], (), None, None),
    ("emptied", b"", (), (0, 50), None),
]


@pytest.mark.parametrize(
    ("name", "payload", "differing", "missing", "extra"), CHANGES, ids=[c[0] for c in CHANGES]
)
def test_changed_payload_is_a_located_mismatch(
    tmp_path: Path, name: str, payload: bytes, differing: tuple[int, ...], missing: Any, extra: Any
) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(_jsonl(RECORDS))
    manifest = _commit(path)
    assert check_delivery(path, manifest, expected_signer=PROVIDER.address).status is VerdictStatus.MATCH
    path.write_bytes(payload)
    verdict = check_delivery(path, manifest, expected_signer=PROVIDER.address)
    assert verdict.status is VerdictStatus.MISMATCH
    assert verdict.findings
    assert verdict.differing_leaves == differing
    assert verdict.missing_leaves == missing
    assert verdict.extra_leaves == extra
    json.loads(verdict.to_json())


def _resign(manifest: Manifest, **fields: Any) -> Manifest:
    return sign_manifest(manifest._replace(**fields), PROVIDER)


MANIFEST_CHANGES: list[tuple[str, Callable[[Manifest], Manifest], dict[str, Any], VerdictStatus]] = [
    # The provider's own mistakes, genuinely signed: the signature holds, the payload does not match.
    ("wrong salt", lambda m: _resign(m, salt=b"\x00" * 32), {}, VerdictStatus.MISMATCH),
    ("wrong algorithm", lambda m: _resign(m, alg=HashAlgorithm.SM3), {}, VerdictStatus.MISMATCH),
    (
        "wrong chunking",
        lambda m: _resign(m, chunking=Chunking(PayloadFormat.BYTES, 64)),
        {},
        VerdictStatus.MISMATCH,
    ),
    ("signed by another key", lambda m: sign_manifest(m, STRANGER), {}, VerdictStatus.UNTRUSTED),
    (
        "unsigned when a signer is expected",
        lambda m: m._replace(signer=None, signature=None),
        {},
        VerdictStatus.UNTRUSTED,
    ),
    ("edited after signing", lambda m: m._replace(agreement_id=99), {}, VerdictStatus.UNTRUSTED),
    (
        "genuine manifest of another delivery",
        lambda m: sign_manifest(m._replace(delivery_id=b"\xee" * 32), PROVIDER),
        {"expected_delivery_id": DELIVERY},
        VerdictStatus.UNTRUSTED,
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "kwargs", "want"), MANIFEST_CHANGES, ids=[c[0] for c in MANIFEST_CHANGES]
)
def test_untrustworthy_or_wrong_manifest_never_matches(
    tmp_path: Path,
    name: str,
    change: Callable[[Manifest], Manifest],
    kwargs: dict[str, Any],
    want: VerdictStatus,
) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(_jsonl(RECORDS))
    manifest = change(_commit(path))
    verdict = check_delivery(path, manifest, expected_signer=PROVIDER.address, **kwargs)
    assert verdict.status is want
    assert not verdict.ok


def test_wrong_salt_without_leaf_hashes_is_a_root_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"x" * 1000)
    manifest = _commit(path, leaves=False, fmt=PayloadFormat.BYTES)._replace(salt=b"\x00" * 32)
    verdict = verify_payload(path, manifest)
    assert verdict.status is VerdictStatus.MISMATCH
    assert [f.code for f in verdict.findings] == ["ROOT_MISMATCH"]


def test_empty_payload_commits_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    manifest = _commit(path, fmt=PayloadFormat.CSV)
    assert (manifest.leaf_count, manifest.record_count, manifest.byte_size) == (0, 0, 0)
    assert verify_payload(path, manifest).status is VerdictStatus.MATCH
    path.write_bytes(b"id\n")
    assert verify_payload(path, manifest).status is VerdictStatus.MISMATCH


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo"])
def test_unreadable_payload_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(_jsonl(RECORDS))
    manifest = _commit(path)
    path.unlink()
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # must be refused, not block waiting for a writer
    with pytest.raises(PayloadReadError, match=r"people\.jsonl"):
        verify_payload(path, manifest)


def test_payload_no_longer_valid_csv_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,note\n1,ok\n")
    manifest = _commit(path, fmt=PayloadFormat.CSV)
    path.write_bytes(b'id,note\n1,"unterminated\n')
    with pytest.raises(PayloadFormatError):
        verify_payload(path, manifest)


def test_anchor_refines_match_but_never_rescues_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(_jsonl(RECORDS))
    manifest = _commit(path)
    match = verify_payload(path, manifest)
    anchor = Anchor(source="test", recorded=False)
    assert match.with_anchor(anchor, VerdictStatus.NOT_RECORDED).status is VerdictStatus.NOT_RECORDED
    assert match.with_anchor(anchor).status is VerdictStatus.MATCH
    path.write_bytes(b"tampered\n")
    mismatch = verify_payload(path, manifest)
    assert mismatch.with_anchor(anchor, VerdictStatus.MATCH).status is VerdictStatus.MISMATCH
    assert json.loads(match.with_anchor(anchor).to_json())["anchor"]["recorded"] is False


def test_manifest_with_inconsistent_leaf_hashes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(_jsonl(RECORDS))
    d = _commit(path).to_dict()
    d["leaf_hashes"][3] = "0x" + "00" * 32
    with pytest.raises(ManifestError, match="leaf_hashes"):
        parse_manifest(d)


@pytest.mark.parametrize(
    ("fmt", "original", "swapped"),
    [
        (PayloadFormat.JSONL, b"a\r\nb\n", b"a\nb\r\n"),
        (PayloadFormat.CSV, b"id\r\n1\n2\r\n", b"id\n1\r\n2\r\n"),
        (PayloadFormat.JSONL, b"a\nb\n", b"a\nb\r"),
    ],
    ids=["jsonl CR moved", "csv CRLF moved", "jsonl final LF vs CR"],
)
def test_same_size_line_ending_changes_are_mismatches(
    tmp_path: Path, fmt: PayloadFormat, original: bytes, swapped: bytes
) -> None:
    assert len(original) == len(swapped)
    path = tmp_path / "p"
    path.write_bytes(original)
    manifest = _commit(path, leaves=False, fmt=fmt)
    path.write_bytes(swapped)
    assert verify_payload(path, manifest).status is VerdictStatus.MISMATCH


_UNSIGNED: Callable[[Manifest], Manifest] = lambda m: m._replace(signer=None, signature=None)  # noqa: E731

# (name, manifest change, check_delivery keyword arguments, verdict, finding codes)
AUTHENTICATION: list[tuple[str, Callable[[Manifest], Manifest], dict[str, Any], VerdictStatus, list[str]]] = [
    ("signed, nothing expected", lambda m: m, {}, VerdictStatus.MATCH, []),
    ("signed, right delivery", lambda m: m, {"expected_delivery_id": DELIVERY}, VerdictStatus.MATCH, []),
    ("unsigned, nothing expected", _UNSIGNED, {}, VerdictStatus.MATCH, []),
    ("unsigned, right delivery", _UNSIGNED, {"expected_delivery_id": DELIVERY}, VerdictStatus.MATCH, []),
    (
        "unsigned, another delivery",
        _UNSIGNED,
        {"expected_delivery_id": b"\xee" * 32},
        VerdictStatus.UNTRUSTED,
        ["MANIFEST_SIGNATURE_INVALID"],
    ),
    (
        "signed by a stranger, nothing expected",
        lambda m: m._replace(signature=sign_manifest(m, STRANGER).signature),
        {},
        VerdictStatus.UNTRUSTED,
        ["MANIFEST_SIGNATURE_INVALID"],
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "kwargs", "want", "codes"), AUTHENTICATION, ids=[c[0] for c in AUTHENTICATION]
)
def test_check_delivery_authenticates_before_comparing(
    tmp_path: Path,
    name: str,
    change: Callable[[Manifest], Manifest],
    kwargs: dict[str, Any],
    want: VerdictStatus,
    codes: list[str],
) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(_jsonl(RECORDS))
    verdict = check_delivery(path, change(_commit(path)), **kwargs)
    assert verdict.status is want
    assert [f.code for f in verdict.findings] == codes


def test_mismatch_findings_count_in_agreement(tmp_path: Path) -> None:
    """A payload of one record, checked against a manifest of two, is "1 byte", "1 leaf", "1 record" in its
    findings (they read "1 bytes", "1 leaves", "1 records")."""
    path = tmp_path / "people.jsonl"
    path.write_bytes(_jsonl(RECORDS[:2]))
    manifest = _commit(path)
    path.write_bytes(b"1")
    said = {f.code.value: f.message for f in verify_payload(path, manifest).findings}
    size = manifest.byte_size
    assert said["SIZE_MISMATCH"] == f"payload is 1 byte, the manifest says {size}", said
    assert said["LEAF_COUNT_MISMATCH"] == "payload has 1 leaf (records/rows), the manifest says 2", said
    assert said["RECORD_COUNT_MISMATCH"] == "payload has 1 record, the manifest says 2", said
