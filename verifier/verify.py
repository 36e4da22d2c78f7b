"""Checking a payload against its manifest, and the verdict that reports the result.

``verify_payload`` recomputes the commitment with the manifest's salt, algorithm and chunking and compares
root, byte size, leaf and record counts. When the manifest carries leaf hashes it also names the leaves that
differ: changed leaves by index, and the index ranges missing (payload truncated) or extra (payload extended).

A MATCH here means "this payload is the one this manifest describes". Whether the manifest's root is the one
recorded on chain, and acknowledged by the consumer, is a separate check (``verifier.onchain``) that refines
the verdict into NOT_RECORDED or ACK_DIFFERS through :meth:`Verdict.with_anchor` (and a service that holds
the receipt journal into PENDING, for a receipt accepted and not anchored yet).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from verifier.codes import FindingCode, VerdictStatus
from verifier.commitment import Commitment, commit_payload
from verifier.errors import ManifestInconsistentError, ManifestSignatureError
from verifier.manifest import Manifest, verify_manifest_signature
from verifier.text import counted

# Beyond this many changed leaves the verdict lists the first ones and the total count.
MAX_LISTED_LEAVES = 1000


@dataclass(frozen=True)
class Finding:
    """One reason behind a verdict: a stable ``code`` plus a sentence for people."""

    code: FindingCode
    message: str


@dataclass(frozen=True)
class Anchor:
    """What the trusted anchor (the on-chain receipt) said about the delivery; set by the on-chain check.

    ``recorded_root`` is the root in the provider's receipt, ``acknowledged_root`` the root the consumer
    acknowledged (``None`` when not acknowledged yet); ``source`` names the chain and contract consulted.
    """

    source: str
    recorded: bool
    recorded_root: bytes | None = None
    acknowledged_root: bytes | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "recorded": self.recorded,
            "recorded_root": "0x" + self.recorded_root.hex() if self.recorded_root is not None else None,
            "acknowledged_root": (
                "0x" + self.acknowledged_root.hex() if self.acknowledged_root is not None else None
            ),
            "details": self.details,
        }


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one payload against its manifest (and later against the chain)."""

    status: VerdictStatus
    delivery_id: bytes | None
    findings: tuple[Finding, ...] = ()
    expected: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    differing_leaves: tuple[int, ...] = ()
    """0-based indexes of the first :data:`MAX_LISTED_LEAVES` leaves that differ, ascending."""
    differing_count: int = 0
    missing_leaves: tuple[int, int] | None = None
    """Half-open 0-based index range [start, end) of leaves the manifest has and the payload lacks."""
    extra_leaves: tuple[int, int] | None = None
    """Half-open 0-based index range [start, end) of leaves the payload has beyond the manifest's."""
    signer: str | None = None
    anchor: Anchor | None = None

    @property
    def ok(self) -> bool:
        return self.status.ok

    def with_anchor(self, anchor: Anchor, status: VerdictStatus | None = None, *findings: Finding) -> Verdict:
        """This verdict refined by the on-chain check; a negative ``status`` overrides MATCH only."""
        new_status = self.status
        if status is not None and status is not VerdictStatus.MATCH:
            new_status = status if self.status is VerdictStatus.MATCH else self.status
        return replace(self, anchor=anchor, status=new_status, findings=self.findings + tuple(findings))

    def to_dict(self) -> dict[str, Any]:
        """The verdict as JSON. ``differing_leaves``, ``missing_leaves`` and ``extra_leaves`` share one form:
        a list of ``[start, end]`` pairs, each a half-open range of 0-based leaf indexes (``[[3, 4]]`` is
        leaf 3 alone), ascending and disjoint, ``[]`` when there are none. ``differing_count`` is the total
        number of differing leaves; ``differing_truncated`` says the ranges cover only the first
        :data:`MAX_LISTED_LEAVES` of them."""
        return {
            "status": self.status.value,
            "delivery_id": "0x" + self.delivery_id.hex() if self.delivery_id is not None else None,
            "findings": [{"code": f.code.value, "message": f.message} for f in self.findings],
            "expected": self.expected,
            "observed": self.observed,
            "differing_leaves": index_ranges(self.differing_leaves),
            "differing_count": self.differing_count,
            "differing_truncated": self.differing_count > len(self.differing_leaves),
            "missing_leaves": [list(self.missing_leaves)] if self.missing_leaves else [],
            "extra_leaves": [list(self.extra_leaves)] if self.extra_leaves else [],
            "signer": self.signer,
            "anchor": self.anchor.to_dict() if self.anchor is not None else None,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def index_ranges(indexes: Iterable[int]) -> list[list[int]]:
    """Ascending 0-based indexes as half-open ``[start, end]`` ranges: ``(1, 2, 3, 7)`` gives
    ``[[1, 4], [7, 8]]``."""
    ranges: list[list[int]] = []
    for i in indexes:
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    return ranges


def altered(error: ManifestInconsistentError) -> Verdict:
    """The verdict for a manifest whose fields contradict each other: it was altered, so nothing it says is
    worth comparing a payload or the chain with."""
    manifest: Manifest = error.manifest
    return Verdict(
        status=VerdictStatus.UNTRUSTED,
        delivery_id=manifest.delivery_id,
        findings=(
            Finding(
                FindingCode.MANIFEST_INCONSISTENT, f"the manifest was altered: {error.field}: {error.reason}"
            ),
        ),
        expected=summary(manifest),
        signer=manifest.signer,
    )


def untrusted(manifest: Manifest, reason: str) -> Verdict:
    """The verdict for a manifest whose signature was refused; the payload is not worth comparing."""
    return Verdict(
        status=VerdictStatus.UNTRUSTED,
        delivery_id=manifest.delivery_id,
        findings=(Finding(FindingCode.MANIFEST_SIGNATURE_INVALID, reason),),
        signer=manifest.signer,
    )


def summary(c: Commitment | Manifest) -> dict[str, Any]:
    """The root, byte size, leaf and record counts of a commitment or manifest, as a verdict reports them."""
    return {"root": "0x" + c.root.hex(), "byte_size": c.byte_size, "leaf_count": c.leaf_count,
            "record_count": c.record_count}  # fmt: skip


def verify_payload(
    path: str | os.PathLike[str],
    manifest: Manifest,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Verdict:
    """Recompute the payload's commitment with the manifest's parameters and compare.

    The manifest's signature is not checked here (see :func:`verifier.manifest.verify_manifest_signature`);
    a MATCH against an unauthenticated manifest only says the two files agree with each other.

    Raises:
        PayloadReadError: if the payload cannot be opened or read.
        PayloadFormatError: if the payload cannot be cut into records of the manifest's format.
    """
    expected_leaves = manifest.leaf_hashes
    differing: list[int] = []
    count = 0

    def on_batch(start: int, leaves: list[bytes]) -> None:
        nonlocal count
        if expected_leaves is None or start >= len(expected_leaves):
            return
        want = expected_leaves[start : start + len(leaves)]
        if list(want) == leaves[: len(want)]:
            return
        for offset, (w, got) in enumerate(zip(want, leaves, strict=False)):
            if w != got:
                count += 1
                if len(differing) < MAX_LISTED_LEAVES:
                    differing.append(start + offset)

    c = commit_payload(
        path,
        alg=manifest.alg,
        salt=manifest.salt,
        chunking=manifest.chunking,
        on_batch=on_batch,
        progress=progress,
        workers=workers,
    )
    findings: list[Finding] = []
    if c.byte_size != manifest.byte_size:
        findings.append(
            Finding(
                FindingCode.SIZE_MISMATCH,
                f"payload is {counted(c.byte_size, 'byte')}, the manifest says {manifest.byte_size}",
            )
        )
    if c.leaf_count != manifest.leaf_count:
        unit = "records/rows" if manifest.chunking.format.value != "bytes" else "chunks"
        findings.append(
            Finding(
                FindingCode.LEAF_COUNT_MISMATCH,
                f"payload has {counted(c.leaf_count, 'leaf', 'leaves')} ({unit}), the manifest says "
                f"{manifest.leaf_count}",
            )
        )
    if c.record_count != manifest.record_count:
        findings.append(
            Finding(
                FindingCode.RECORD_COUNT_MISMATCH,
                f"payload has {counted(c.record_count, 'record')}, the manifest says {manifest.record_count}",
            )
        )
    if c.root != manifest.root:
        findings.append(
            Finding(
                FindingCode.ROOT_MISMATCH,
                f"recomputed root 0x{c.root.hex()} differs from 0x{manifest.root.hex()}",
            )
        )
    missing = extra = None
    if expected_leaves is not None:
        if count:
            listed = ", ".join(map(str, differing[:10])) + (" ..." if count > 10 else "")
            findings.append(
                Finding(
                    FindingCode.LEAVES_DIFFER,
                    f"{count} {'leaf differs' if count == 1 else 'leaves differ'}, "
                    f"at 0-based index{'' if count == 1 else 'es'} {listed}",
                )
            )
        if c.leaf_count < manifest.leaf_count:
            missing = (c.leaf_count, manifest.leaf_count)
            findings.append(
                Finding(
                    FindingCode.LEAVES_MISSING,
                    f"leaves {missing[0]}..{missing[1] - 1} (0-based, inclusive) are missing from the "
                    "payload",
                )
            )
        elif c.leaf_count > manifest.leaf_count:
            extra = (manifest.leaf_count, c.leaf_count)
            findings.append(
                Finding(
                    FindingCode.LEAVES_EXTRA,
                    f"leaves {extra[0]}..{extra[1] - 1} (0-based, inclusive) are not in the manifest",
                )
            )
    # Any single difference is a mismatch; the root check alone already guarantees no false MATCH.
    status = VerdictStatus.MISMATCH if findings else VerdictStatus.MATCH
    return Verdict(
        status=status,
        delivery_id=manifest.delivery_id,
        findings=tuple(findings),
        expected=summary(manifest),
        observed=summary(c),
        differing_leaves=tuple(differing),
        differing_count=count,
        missing_leaves=missing,
        extra_leaves=extra,
        signer=manifest.signer,
    )


def check_delivery(
    path: str | os.PathLike[str],
    manifest: Manifest,
    *,
    expected_signer: str | None = None,
    expected_delivery_id: bytes | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Authenticate the manifest (when it is signed or a signer is expected), then verify the payload.

    A signed manifest must verify against its own ``signer`` even when no ``expected_signer`` is given, so a
    manifest edited after signing is never used. An unsigned manifest is accepted only when no signer is
    expected. The on-chain check (``verifier.onchain``) refines the returned verdict with :meth:`with_anchor`.

    Raises:
        PayloadReadError: if the payload cannot be opened or read.
        PayloadFormatError: if the payload cannot be cut into records of the manifest's format.
    """
    if manifest.signed or expected_signer is not None:
        try:
            verify_manifest_signature(manifest, expected_signer, expected_delivery_id=expected_delivery_id)
        except ManifestSignatureError as e:
            return untrusted(manifest, e.reason)
    elif expected_delivery_id is not None and expected_delivery_id != manifest.delivery_id:
        # Only a delivery id was expected: compare it without demanding a signature.
        return untrusted(
            manifest,
            f"manifest is for delivery 0x{manifest.delivery_id.hex()}, "
            f"expected 0x{expected_delivery_id.hex()}",
        )
    return verify_payload(path, manifest, progress=progress)
