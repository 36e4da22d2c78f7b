"""A delivery's verdict where the service's receipt journal is at hand: single deliveries and receipts alike.

One id names one delivery of either kind (``POST /receipts`` refuses a ledger delivery's id and
``POST /deliveries`` a receipt's), so a manifest's delivery id is looked up in the receipt journal first:

* a receipt in a batch the service anchored (``anchored``, ``final``) is checked by its inclusion proof
  against the batch on chain (:func:`verifier.receipt_check.check_receipt_onchain`), the verdict naming the
  batch and that the proof was checked (``recorded_as: "receipt"``, ``proof_checked``);
* a receipt accepted and not anchored yet (``pending``, or its anchor sent and not mined) is ``PENDING``: the
  service holds it, the chain does not yet. A check against a node alone (``dxl verify --contract``, an
  auditor without this database) answers ``NOT_RECORDED`` for it, and its finding says why it may;
* a receipt whose batch the contract refused is what the ledger says of the id (``NOT_RECORDED`` unless a
  single delivery holds it), with the refusal and its reason as a finding (``RECEIPT_REFUSED``);
* a receipt whose journal row (or its batch) is not what the service wrote — the API database changed
  outside the service, edited or cut by hand — is what the ledger says of the id, with what is wrong as a
  finding (``RECEIPT_JOURNAL_CORRUPT``): evidence of tampering, never a failure of the check;
* no receipt: the ledger's single delivery (:func:`verifier.onchain.check_onchain`), and when it has none
  either, a finding that says both were consulted.

Used by ``POST /verify`` (payload, commitment or manifest alone) and by ``dxl verify`` on the machine whose
``DXL_HOME`` holds the service's database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from api.receipts.lookups import ReceiptView
from verifier.codes import FindingCode, ReceiptVerdictStatus, VerdictStatus
from verifier.errors import ManifestSignatureError
from verifier.manifest import Manifest, verify_manifest_signature
from verifier.onchain import LedgerReader, RecordedDelivery, check_onchain
from verifier.receipt_check import AnchorsReader, check_receipt_onchain
from verifier.text import iso_time
from verifier.verify import Anchor, Finding, Verdict, untrusted

#: Where a pending receipt is held: named in its verdict, since the chain has nothing to show for it.
JOURNAL_SOURCE = "this service's receipt journal (not on chain yet)"

Offline = Callable[[str | None], Verdict]


def _h(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def delivery_verdict(
    manifest: Manifest,
    offline: Offline,
    ledger: LedgerReader,
    receipt: ReceiptView | None,
    anchors: Callable[[], AnchorsReader],
    *,
    expected_delivery_id: bytes | None = None,
    visible: Callable[[RecordedDelivery], bool] | None = None,
) -> Verdict:
    """The verdict on ``manifest`` (``offline`` its payload's or commitment's half, as
    :func:`verifier.onchain.check_onchain` takes it), given what the receipt journal holds under its delivery
    id: ``receipt``, already limited to what the caller may read (None: no receipt, or one of another
    department's exchanges). ``anchors`` gives the reader of the receipt anchors, asked only for a receipt.

    Raises:
        ChainCheckError: the chain cannot be consulted or is inconsistent.
        PayloadReadError, PayloadFormatError: from ``offline``.
    """
    if receipt is not None and receipt.status == "pending":
        return _pending(manifest, offline, ledger, receipt, expected_delivery_id)
    if receipt is not None and receipt.status in ("anchored", "final") and receipt.proof is not None:
        verdict = check_receipt_onchain(
            manifest, ledger, anchors(), receipt.proof, offline, expected_delivery_id=expected_delivery_id
        )
        if verdict.anchor is None:
            return verdict
        if (
            not verdict.anchor.recorded
            and verdict.anchor.details.get("receipt") == ReceiptVerdictStatus.NOT_ANCHORED
        ):
            # Its batch is closed and its anchor sent, not mined yet: accepted, not on the ledger yet.
            return _pending(manifest, offline, ledger, receipt, expected_delivery_id)
        details = {**verdict.anchor.details, "receipt_status": receipt.status}
        return replace(verdict, anchor=replace(verdict.anchor, details=details))
    verdict = check_onchain(
        manifest, ledger, offline, expected_delivery_id=expected_delivery_id, visible=visible
    )
    if verdict.anchor is None or verdict.anchor.recorded:
        return verdict
    did = manifest.delivery_id
    if receipt is not None and receipt.status == "refused":
        why = receipt.error or "no reason kept"
        refused = Finding(
            FindingCode.RECEIPT_REFUSED,
            f"delivery {_h(did)} was accepted as a receipt at {iso_time(int(receipt.accepted_at))} "
            f"(POST /receipts), but the contract refused its batch, so it was never recorded: {why}",
        )
        return replace(verdict, findings=(*verdict.findings, refused))
    if receipt is not None and receipt.status == "corrupt":
        corrupt = Finding(
            FindingCode.RECEIPT_JOURNAL_CORRUPT,
            f"this service's receipt journal holds delivery {_h(did)} in a state the service never writes "
            f"({receipt.error}): the API database was changed outside the service, and no inclusion proof "
            "can be built from it; what was anchored is in the chain's batches of the grant",
        )
        return replace(verdict, findings=(*verdict.findings, corrupt))
    if receipt is not None:
        return verdict
    journal = f"no delivery {_h(did)} is recorded on {ledger.source}, and this service holds no receipt of it"
    findings = tuple(
        Finding(f.code, journal) if f.code is FindingCode.NOT_RECORDED else f for f in verdict.findings
    )
    return replace(verdict, findings=findings)


def _pending(
    manifest: Manifest,
    offline: Offline,
    ledger: LedgerReader,
    receipt: ReceiptView,
    expected_delivery_id: bytes | None,
) -> Verdict:
    """A receipt accepted and not anchored yet: the manifest against the provider's signer on the ledger and
    against the receipt as accepted, the payload against the manifest; ``PENDING`` where all agree (a
    negative verdict stays what it is)."""
    r = receipt.receipt
    details: dict[str, Any] = {
        "recorded_as": "receipt",
        "receipt_status": receipt.status,
        "accepted_at": receipt.accepted_at,
        "grant_id": r.grant_id,
        "provider_id": receipt.provider,
        "consumer_id": receipt.consumer,
        "commitment": _h(r.commitment),
        "byte_size": r.byte_size,
        "record_count": r.record_count,
        "hash_algorithm": r.hash_algorithm,
        "batch": receipt.batch,
        "proof_checked": False,
    }
    anchor = Anchor(JOURNAL_SOURCE, recorded=False, recorded_root=r.commitment, details=details)
    if not manifest.signed:
        return untrusted(manifest, "the manifest is not signed").with_anchor(anchor)
    signer = str(ledger.department(receipt.provider)["signer"])
    try:
        verify_manifest_signature(manifest, signer, expected_delivery_id=expected_delivery_id)
    except ManifestSignatureError as e:
        return untrusted(manifest, f"{e.reason} (the provider's signer on chain is {signer})").with_anchor(
            anchor
        )
    verdict = offline(signer)
    differ = [
        Finding(code, f"manifest {what} is {mine}, the accepted receipt says {theirs}")
        for code, what, mine, theirs in (
            (FindingCode.RECEIPT_ROOT_MISMATCH, "root", _h(manifest.root), _h(r.commitment)),
            (FindingCode.RECEIPT_SIZE_MISMATCH, "byte size", manifest.byte_size, r.byte_size),
            (
                FindingCode.RECEIPT_RECORD_COUNT_MISMATCH,
                "record count",
                manifest.record_count,
                r.record_count,
            ),
            (FindingCode.RECEIPT_ALGORITHM_MISMATCH, "algorithm id", int(manifest.alg), r.hash_algorithm),
            (FindingCode.RECEIPT_GRANT_MISMATCH, "grant", manifest.grant_id, r.grant_id),
        )
        if mine != theirs and not (what == "grant" and mine is None)
    ]
    if differ:
        return verdict.with_anchor(anchor, VerdictStatus.MISMATCH, *differ)
    where = "its batch is closed and its anchor sent, not mined" if receipt.batch else "in no batch yet"
    pending = Finding(
        FindingCode.RECEIPT_PENDING,
        f"delivery {_h(manifest.delivery_id)} was accepted by this service as a receipt at "
        f"{iso_time(int(receipt.accepted_at))} (POST /receipts) and is not on the ledger yet ({where}); the "
        "chain does not hold it, so a check against a node alone answers NOT_RECORDED until its batch is "
        "anchored",
    )
    return verdict.with_anchor(anchor, VerdictStatus.PENDING, pending)


def without_node(answer: dict[str, Any], rpc_url: str) -> dict[str, Any]:
    """The verdict a department sees (``POST /verify``, a presentation to an inspection): the chain and
    contract consulted, not the address of the service's node (an internal endpoint a department has no use
    for); auditors see it whole."""
    via = f" via {rpc_url}"
    anchor = answer.get("anchor")
    if anchor is not None:
        answer["anchor"] = {**anchor, "source": str(anchor["source"]).replace(via, "")}
    answer["findings"] = [{**f, "message": str(f["message"]).replace(via, "")} for f in answer["findings"]]
    return answer
