"""A delivery's verdict where the service's receipt journal is at hand: single deliveries and receipts alike.

One id names one delivery of either kind (``POST /receipts`` refuses a ledger delivery's id and
``POST /deliveries`` a receipt's), so a manifest's delivery id is looked up in the receipt journal first:

* a receipt in a batch the service anchored (``anchored``, ``final``) is checked by its inclusion proof
  against the batch on chain (:func:`verifier.receipt_check.check_receipt_onchain`), the verdict naming the
  batch and that the proof was checked (``recorded_as: "receipt"``, ``proof_checked``);
* a receipt whose batch the contract refused is what the ledger says of the id (``NOT_RECORDED`` unless a
  single delivery holds it), with the refusal and its reason as a finding (``RECEIPT_REFUSED``);
* no receipt: the ledger's single delivery (:func:`verifier.onchain.check_onchain`), and when it has none
  either, a finding that says both were consulted.

Used by ``POST /verify`` (payload, commitment or manifest alone) and by ``dxl verify`` on the machine whose
``DXL_HOME`` holds the service's database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from api.receipts import ReceiptView
from verifier.manifest import Manifest
from verifier.onchain import LedgerReader, RecordedDelivery, check_onchain
from verifier.receipt_check import AnchorsReader, check_receipt_onchain
from verifier.verify import Finding, Verdict

Offline = Callable[[str | None], Verdict]


def _h(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


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
    if receipt is not None and receipt.status in ("anchored", "final") and receipt.proof is not None:
        verdict = check_receipt_onchain(
            manifest, ledger, anchors(), receipt.proof, offline, expected_delivery_id=expected_delivery_id
        )
        if verdict.anchor is None:
            return verdict
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
            "RECEIPT_REFUSED",
            f"delivery {_h(did)} was accepted as a receipt at {_when(receipt.accepted_at)} (POST /receipts), "
            f"but the contract refused its batch, so it was never recorded: {why}",
        )
        return replace(verdict, findings=(*verdict.findings, refused))
    if receipt is not None:
        return verdict
    journal = f"no delivery {_h(did)} is recorded on {ledger.source}, and this service holds no receipt of it"
    findings = tuple(Finding(f.code, journal) if f.code == "NOT_RECORDED" else f for f in verdict.findings)
    return replace(verdict, findings=findings)
