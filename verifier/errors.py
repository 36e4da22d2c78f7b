"""The one exception root of dxl, and the errors of the verifier (payloads, commitments, proofs, manifests).

:class:`DxlError` lives here, at the bottom of the stack, so that the proof code imports nothing of the rest
of dxl while every layer above (chain client, audit trail, API, command line) still shares one root. Each
layer subclasses it, mixing in the built-in it resembles so callers can catch either (``except ValueError``
still works for bad input). Messages are built by the class from the values that explain the failure, never
by the raiser, so the same failure always reads the same way.
"""

from __future__ import annotations

from typing import Any

from verifier.codes import FindingCode


class DxlError(Exception):
    """Root of every error dxl raises on purpose.

    ``code`` is a stable machine-readable name (the API's JSON errors and the CLI's ``--json`` output use it).
    """

    code: str = "DXL_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class VerifierError(DxlError):
    """Root of the verifier's errors."""

    code = "VERIFIER_ERROR"


class UnsupportedAlgorithmError(VerifierError, ValueError):
    """Thrown when a hash algorithm name or id is not one dxl commits with (SHA-256 = 1, SM3 = 2)."""

    code = "ALGORITHM_UNSUPPORTED"

    def __init__(self, value: object) -> None:
        super().__init__(f"unsupported hash algorithm {value!r}; expected sha256 (id 1) or sm3 (id 2)")
        self.value = value


class JsonNestingError(VerifierError, ValueError):
    """Thrown when JSON text nests arrays and objects deeper than any dxl document (the standard library's
    parser recurses once per level, and past its bound a process ends in a traceback or a crash): refused as
    malformed JSON is."""

    code = "JSON_TOO_DEEP"

    def __init__(self, limit: int) -> None:
        super().__init__(f"arrays and objects nested more than {limit} levels deep")
        self.limit = limit


class JsonDuplicateKeyError(VerifierError, ValueError):
    """Thrown when a JSON object of a document names one key twice: parsers disagree on which value counts
    (the standard library's, and so every check here, takes the last; a reader may show the first), so a
    forged value put before the true one was shown to a person while the check passed on the other. No dxl
    document holds one: refused as malformed JSON is."""

    code = "JSON_DUPLICATE_KEY"

    def __init__(self, key: str) -> None:
        super().__init__(f"an object names the key {key!r} twice")
        self.key = key


class PayloadReadError(VerifierError, OSError):
    """Thrown when a payload file cannot be opened or read to the end (missing, a directory, no
    permission)."""

    code = "PAYLOAD_UNREADABLE"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read payload {path}: {reason}")
        self.path = path
        self.reason = reason


class PayloadFormatError(VerifierError, ValueError):
    """Thrown when a payload cannot be cut into records of its declared format (e.g. malformed CSV
    quoting)."""

    code = "PAYLOAD_FORMAT_INVALID"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"payload {path} is not valid for its format: {reason}")
        self.path = path
        self.reason = reason
        self.reason = reason


class ProofError(VerifierError, ValueError):
    """Root of the inclusion-proof failures."""

    code = "PROOF_INVALID"


class InvalidProofError(ProofError):
    """Thrown when a proof cannot apply at all: index out of range, wrong path length, wrong hash sizes."""

    code = "PROOF_MALFORMED"

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed inclusion proof: {reason}")
        self.reason = reason


class RootMismatchError(ProofError):
    """Thrown when a proof is well formed but leads to a root other than the expected one."""

    code = FindingCode.ROOT_MISMATCH

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            f"calculated root 0x{calculated.hex()} does not match expected root 0x{expected.hex()}"
        )
        self.expected = expected
        self.calculated = calculated


class ManifestError(VerifierError, ValueError):
    """Thrown when a manifest is missing, not JSON, or has a missing or malformed field."""

    code = "MANIFEST_INVALID"

    def __init__(self, reason: str, field: str | None = None) -> None:
        where = f"field {field!r}: " if field else ""
        super().__init__(f"invalid manifest: {where}{reason}")
        self.field = field
        self.reason = reason


class ManifestInconsistentError(ManifestError):
    """Thrown when every field of a manifest is well formed but they contradict each other: leaf hashes
    that do not hash up to ``root`` or do not number ``leaf_count``, counts that do not fit the chunking or
    the byte size. No writer emits such a manifest: it was altered, which is a verdict (UNTRUSTED), not a
    usage error.

    ``manifest`` is the document as parsed, so the verdict can still name its delivery and signer.
    """

    # The code of the verdict's finding too: the verdict on an altered manifest names this error.
    code = FindingCode.MANIFEST_INCONSISTENT

    def __init__(self, reason: str, field: str, manifest: Any) -> None:
        super().__init__(reason, field=field)
        self.manifest = manifest


class ManifestSignatureError(VerifierError, ValueError):
    """Thrown when a manifest is unsigned, signed by someone other than the expected signer, or for another
    delivery than the one expected."""

    code = FindingCode.MANIFEST_SIGNATURE_INVALID

    def __init__(self, reason: str) -> None:
        super().__init__(f"manifest signature not accepted: {reason}")
        self.reason = reason
