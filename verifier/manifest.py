"""The delivery manifest: the provider's signed statement of what it delivered (see MANIFEST.md).

The manifest travels with the payload, never on chain. It carries everything needed to recompute the
commitment (salt, algorithm, chunking) and the commitment itself; the root and counts are what the chain
records. The provider signs it with EIP-191 ``personal_sign`` over the canonical JSON of every field except
``signature`` (keys sorted, no whitespace, UTF-8), so ``signer`` is itself covered by the signature.

Parsing is strict: every field has one spelling (lower-case hex, EIP-55 checksummed signer, UTC timestamp
with a ``Z``), so ``parse_manifest(m.to_json())`` round-trips byte for byte and a signature never depends on
how a reader re-serialises the document.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from verifier import jsontext
from verifier.commitment import Commitment
from verifier.departments import DEPARTMENT_CODE_RULE, is_department_code
from verifier.errors import (
    ManifestError,
    ManifestInconsistentError,
    ManifestSignatureError,
    UnsupportedAlgorithmError,
)
from verifier.eth import address_of_key, is_checksum_address, recover_personal_signer, sign_personal_message
from verifier.eth import to_checksum_address as _to_checksum_address
from verifier.hashing import HashAlgorithm, TreeHasher
from verifier.leaves import Chunking, PayloadFormat
from verifier.text import counted, iso_time
from verifier.tree import root_of

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

SCHEMA = "dxl.manifest/1"
# Held with fullmatch: a pattern's "$" also matches before a final newline ("PSB\n" would pass).
_HEX32 = re.compile(r"0x[0-9a-f]{64}")
_SIG = re.compile(r"0x[0-9a-f]{130}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_REQUIRED = (
    "schema",
    "delivery_id",
    "agreement_id",
    "grant_id",
    "provider",
    "consumer",
    "salt",
    "algorithm",
    "chunking",
    "leaf_count",
    "byte_size",
    "record_count",
    "root",
    "created_at",
)
_OPTIONAL = ("leaf_hashes", "signer", "signature")


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the exact bytes a manifest signature covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Manifest(NamedTuple):
    """A parsed, internally consistent delivery manifest. Build with :func:`build_manifest`, read with
    :func:`parse_manifest` / :func:`load_manifest`; derive a changed copy with ``_replace``.

    A named tuple, not a dataclass, as :class:`~verifier.leaves.Chunking` is: ``dxl commit`` writes one.
    """

    delivery_id: bytes
    agreement_id: int | None
    grant_id: int | None
    provider: str | None
    consumer: str | None
    salt: bytes
    alg: HashAlgorithm
    chunking: Chunking
    leaf_count: int
    byte_size: int
    record_count: int
    root: bytes
    created_at: str
    leaf_hashes: tuple[bytes, ...] | None = None
    signer: str | None = None
    signature: bytes | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def unsigned_dict(self) -> dict[str, Any]:
        """Every field except ``signature``: the document the signature covers."""
        d: dict[str, Any] = {
            "schema": SCHEMA,
            "delivery_id": _hex(self.delivery_id),
            "agreement_id": self.agreement_id,
            "grant_id": self.grant_id,
            "provider": self.provider,
            "consumer": self.consumer,
            "salt": _hex(self.salt),
            "algorithm": {"name": self.alg.label, "id": int(self.alg)},
            "chunking": {"format": self.chunking.format.value, "chunk_size": self.chunking.chunk_size},
            "leaf_count": self.leaf_count,
            "byte_size": self.byte_size,
            "record_count": self.record_count,
            "root": _hex(self.root),
            "created_at": self.created_at,
        }
        if self.leaf_hashes is not None:
            d["leaf_hashes"] = [_hex(h) for h in self.leaf_hashes]
        if self.signer is not None:
            d["signer"] = self.signer
        return d

    def signing_bytes(self) -> bytes:
        return canonical_json(self.unsigned_dict())

    def to_dict(self) -> dict[str, Any]:
        d = self.unsigned_dict()
        if self.signature is not None:
            d["signature"] = _hex(self.signature)
        return d

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False) + "\n"


def build_manifest(
    commitment: Commitment,
    *,
    delivery_id: bytes,
    agreement_id: int | None = None,
    grant_id: int | None = None,
    provider: str | None = None,
    consumer: str | None = None,
    created_at: datetime | None = None,
    include_leaf_hashes: bool = True,
) -> Manifest:
    """An unsigned manifest for ``commitment``.

    Raises:
        ManifestError: if an identifier is malformed (delivery id not 32 bytes, negative ids, bad codes).
    """
    when = iso_time(int((created_at or datetime.now(UTC)).timestamp()))
    leaf_hashes = commitment.leaf_hashes if include_leaf_hashes else None
    if include_leaf_hashes and leaf_hashes is None:
        raise ManifestError("the commitment was computed without keeping leaf hashes", field="leaf_hashes")
    manifest = Manifest(
        delivery_id=bytes(delivery_id),
        agreement_id=agreement_id,
        grant_id=grant_id,
        provider=provider,
        consumer=consumer,
        salt=commitment.salt,
        alg=commitment.alg,
        chunking=commitment.chunking,
        leaf_count=commitment.leaf_count,
        byte_size=commitment.byte_size,
        record_count=commitment.record_count,
        root=commitment.root,
        created_at=when,
        leaf_hashes=leaf_hashes,
    )
    # Validate through the same path readers use, so a writer can never emit what a reader refuses.
    return parse_manifest(manifest.to_dict())


def _private_key(key: LocalAccount | bytes | str) -> bytes:
    """The 32 key bytes of an eth-account ``LocalAccount``, raw bytes or a hex string (``0x`` optional)."""
    raw = getattr(key, "key", key)  # a LocalAccount, without importing eth-account to recognise one
    try:
        return bytes.fromhex(raw.removeprefix("0x")) if isinstance(raw, str) else bytes(raw)
    except (TypeError, ValueError) as e:
        raise ManifestSignatureError(f"not a usable private key ({type(e).__name__})") from None


def sign_manifest(manifest: Manifest, key: LocalAccount | bytes | str) -> Manifest:
    """Return ``manifest`` signed by ``key`` (EIP-191 personal_sign); ``signer`` is set to the key's address.

    Raises:
        ManifestSignatureError: if ``key`` is not a usable secp256k1 private key.
    """
    private_key = _private_key(key)
    try:
        signer = address_of_key(private_key)
    except ValueError as e:
        raise ManifestSignatureError(f"not a usable private key ({e})") from None
    unsigned = manifest._replace(signer=signer, signature=None)
    return unsigned._replace(signature=sign_personal_message(unsigned.signing_bytes(), private_key))


def recover_signer(manifest: Manifest) -> str:
    """The checksummed address that produced ``manifest.signature``.

    Raises:
        ManifestSignatureError: if the manifest is unsigned or the signature is not a valid secp256k1
            signature.
    """
    if manifest.signature is None:
        raise ManifestSignatureError("the manifest is not signed")
    try:
        return recover_personal_signer(manifest.signing_bytes(), manifest.signature)
    except ValueError as e:
        raise ManifestSignatureError(f"signature cannot be recovered ({e})") from None


def verify_manifest_signature(
    manifest: Manifest, expected_signer: str | None = None, *, expected_delivery_id: bytes | None = None
) -> str:
    """Check the manifest's signature and return the signer address.

    The signature must recover to the manifest's own ``signer`` field; when ``expected_signer`` is given (the
    provider department's registered signing address - the only check that says *who* signed) it must also be
    that address. When ``expected_delivery_id`` is given the manifest must be for that delivery, which stops a
    genuine manifest of one delivery being replayed for another.

    Raises:
        ManifestSignatureError: unsigned, unrecoverable, tampered (recovers to another address than
            ``signer``), signed by someone other than ``expected_signer``, or for another delivery.
    """
    recovered = recover_signer(manifest)
    if manifest.signer is None or recovered.lower() != manifest.signer.lower():
        raise ManifestSignatureError(
            f"signature recovers to {recovered}, not the declared signer {manifest.signer} "
            "(the manifest was altered after signing or signed by another key)"
        )
    if expected_signer is not None and recovered.lower() != expected_signer.lower():
        raise ManifestSignatureError(f"signed by {recovered}, expected {expected_signer}")
    if expected_delivery_id is not None and bytes(expected_delivery_id) != manifest.delivery_id:
        raise ManifestSignatureError(
            f"manifest is for delivery {_hex(manifest.delivery_id)}, expected {_hex(expected_delivery_id)}"
        )
    return recovered


# --- parsing ---------------------------------------------------------------------------------------------


def _int(d: dict[str, Any], key: str, *, nullable: bool = False, minimum: int = 0) -> int | None:
    v = d[key]
    if v is None and nullable:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ManifestError(f"expected an integer, got {v!r}", field=key)
    if v < minimum:
        raise ManifestError(f"must be >= {minimum}, got {v}", field=key)
    if v >= 1 << 256:
        raise ManifestError("does not fit in uint256", field=key)
    return v


def _bytes32(v: Any, key: str) -> bytes:
    if not isinstance(v, str) or not _HEX32.fullmatch(v):
        raise ManifestError(f"expected 0x followed by 64 lower-case hex digits, got {v!r}", field=key)
    return bytes.fromhex(v[2:])


def _dept(d: dict[str, Any], key: str) -> str | None:
    v = d[key]
    if v is None:
        return None
    if not is_department_code(v):
        raise ManifestError(f"expected a department code ({DEPARTMENT_CODE_RULE}), got {v!r}", key)
    return v


def parse_manifest(data: str | bytes | dict[str, Any]) -> Manifest:
    """Parse and validate a manifest (JSON text or an already-decoded object).

    Checks every field's type and spelling, then the manifest's internal consistency: algorithm name and id
    agree, record and leaf counts fit the chunking and byte size, and leaf hashes (if present) number
    ``leaf_count`` and hash up to ``root``. It does not check the signature (see
    :func:`verify_manifest_signature`).

    Raises:
        ManifestInconsistentError: every field is well formed but they contradict each other (an altered
            manifest); the exception carries the parsed document.
        ManifestError: naming the first missing, unknown or malformed field.
    """
    if isinstance(data, (str, bytes)):
        try:
            data = jsontext.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise ManifestError(f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"expected a JSON object, got {type(data).__name__}")
    d: dict[str, Any] = data
    for key in _REQUIRED:
        if key not in d:
            raise ManifestError("missing", field=key)
    unknown = sorted(set(d) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ManifestError(f"unknown field(s) {', '.join(unknown)}")
    if d["schema"] != SCHEMA:
        raise ManifestError(f"expected {SCHEMA!r}, got {d['schema']!r}", field="schema")

    algo = d["algorithm"]
    if not isinstance(algo, dict) or set(algo) != {"name", "id"}:
        raise ManifestError('expected {"name": ..., "id": ...}', field="algorithm")
    # The number the chain records, as the JSON Schema says: HashAlgorithm.parse also takes a name, and an id
    # written "sha256" was a second spelling of a signed manifest that its signature (over the canonical form,
    # which writes 1) still covered.
    if isinstance(algo["id"], bool) or not isinstance(algo["id"], int):
        raise ManifestError(f"expected the algorithm's number (1 or 2), got {algo['id']!r}", "algorithm.id")
    try:
        alg = HashAlgorithm.parse(algo["id"])
    except UnsupportedAlgorithmError as e:
        raise ManifestError(e.message, field="algorithm.id") from None
    if algo["name"] != alg.label:
        raise ManifestError(f"name {algo['name']!r} does not match id {int(alg)} ({alg.label})", "algorithm")

    ch = d["chunking"]
    if not isinstance(ch, dict) or set(ch) != {"format", "chunk_size"}:
        raise ManifestError('expected {"format": ..., "chunk_size": ...}', field="chunking")
    try:
        chunking = Chunking(PayloadFormat(ch["format"]), ch["chunk_size"])
    except ValueError as e:
        raise ManifestError(str(e), field="chunking") from None

    leaf_count = _int(d, "leaf_count")
    byte_size = _int(d, "byte_size")
    record_count = _int(d, "record_count")
    assert leaf_count is not None and byte_size is not None and record_count is not None

    created_at = d["created_at"]
    try:
        # The regex pins one spelling; fromisoformat checks the calendar (strptime would too, but loads the
        # locale machinery on every dxl commit and verify).
        if not isinstance(created_at, str) or not _TIME.fullmatch(created_at):
            raise ValueError
        datetime.fromisoformat(created_at.removesuffix("Z"))
    except ValueError:
        raise ManifestError(
            f"expected UTC time like 2026-01-31T12:00:00Z, got {created_at!r}", "created_at"
        ) from None

    salt = _bytes32(d["salt"], "salt")
    root = _bytes32(d["root"], "root")
    leaf_hashes = None
    if "leaf_hashes" in d:
        raw = d["leaf_hashes"]
        if not isinstance(raw, list):
            raise ManifestError("expected a list of hashes", field="leaf_hashes")
        leaf_hashes = tuple(_bytes32(h, f"leaf_hashes[{i}]") for i, h in enumerate(raw))

    signer = d.get("signer")
    signature = None
    if ("signer" in d) != ("signature" in d):
        raise ManifestError("signer and signature must be present together", field="signature")
    # A signer given is an address: null was taken as no signer, and the signature beside it went unread
    # whatever it held (the JSON Schema says a string; writers leave both out of an unsigned manifest).
    if "signer" in d:
        if not isinstance(signer, str) or not is_checksum_address(signer):
            raise ManifestError(f"expected an EIP-55 checksummed address, got {signer!r}", field="signer")
        sig = d["signature"]
        if not isinstance(sig, str) or not _SIG.fullmatch(sig):
            raise ManifestError("expected 0x followed by 130 lower-case hex digits", field="signature")
        signature = bytes.fromhex(sig[2:])

    manifest = Manifest(
        delivery_id=_bytes32(d["delivery_id"], "delivery_id"),
        agreement_id=_int(d, "agreement_id", nullable=True),
        grant_id=_int(d, "grant_id", nullable=True),
        provider=_dept(d, "provider"),
        consumer=_dept(d, "consumer"),
        salt=salt,
        alg=alg,
        chunking=chunking,
        leaf_count=leaf_count,
        byte_size=byte_size,
        record_count=record_count,
        root=root,
        created_at=created_at,
        leaf_hashes=leaf_hashes,
        signer=signer,
        signature=signature,
    )
    _check_consistency(manifest)
    return manifest


def _check_consistency(m: Manifest) -> None:
    """Raise :class:`ManifestInconsistentError` if well-formed fields contradict each other."""

    def refuse(reason: str, field: str) -> None:
        raise ManifestInconsistentError(reason, field, m)

    chunking, leaf_count, byte_size = m.chunking, m.leaf_count, m.byte_size
    leaves = counted(leaf_count, "leaf", "leaves")
    if m.record_count != chunking.records_for(leaf_count):
        refuse(f"{m.record_count} does not fit {leaves} of format {chunking.format.value}",
               "record_count")  # fmt: skip
    if chunking.format is PayloadFormat.BYTES and leaf_count != -(-byte_size // chunking.chunk_size):
        refuse(f"{leaves} cannot hold {counted(byte_size, 'byte')} in chunks of {chunking.chunk_size}",
               "leaf_count")  # fmt: skip
    if chunking.format is not PayloadFormat.BYTES and (leaf_count == 0) != (byte_size == 0):
        fit = "does not fit" if leaf_count == 1 else "do not fit"
        refuse(f"{leaves} {fit} a payload of {counted(byte_size, 'byte')}", "leaf_count")
    if m.leaf_hashes is not None:
        if len(m.leaf_hashes) != leaf_count:
            refuse(f"{counted(len(m.leaf_hashes), 'hash', 'hashes')} for {leaves}", "leaf_hashes")
        if root_of(TreeHasher(m.alg, m.salt), m.leaf_hashes) != m.root:
            refuse("leaf hashes do not hash up to the manifest's root", "leaf_hashes")


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and parse the manifest file at ``path``.

    Raises:
        ManifestError: if the file cannot be read or its content is not a valid manifest.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(256 << 20)
    except OSError as e:
        raise ManifestError(f"cannot read {os.fspath(path)}: {e.strerror or e}") from None
    return parse_manifest(raw)


def write_manifest(path: str | os.PathLike[str], manifest: Manifest) -> None:
    """Write ``manifest`` as indented JSON (the signature covers the canonical form, not this layout).

    Raises:
        OSError: the file cannot be written (the system's error, naming the file: a full disk is not an
            invalid manifest).
    """
    with open(path, "w", encoding="utf-8") as f:
        f.write(manifest.to_json())


def checksum(address: str) -> str:
    """EIP-55 form of ``address`` (used for comparing and printing signers)."""
    return _to_checksum_address(address)
