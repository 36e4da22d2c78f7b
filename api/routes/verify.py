"""``POST /verify``: check a delivered payload, or only a commitment, against its manifest and the ledger.

The route is a thin shell over :mod:`verifier.onchain` (the same proof code ``dxl verify`` runs): it reads
the chain through the deployment this service is connected to and answers the verdict JSON of
:meth:`verifier.verify.Verdict.to_dict`, with the block it was read at: the node's head as the request
began, to which the request's views of the service's shared readers are pinned
(:func:`node.endpoint.pin_to_head`), so that a state change mined during the check is not half in the
verdict. A verdict is a result, not an error: MISMATCH, NOT_RECORDED, ACK_DIFFERS, UNTRUSTED and PENDING
all answer 200 with ``status`` saying which. A delivery posted as a
receipt (``POST /receipts``) is found in the receipt journal and checked by its inclusion proof against its
anchored batch, or answered PENDING while it is accepted and not anchored yet (:mod:`api.verdicts`), whether
the payload, a commitment or the manifest alone is sent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import Principal, Role
from api.deps import ExchangeReader, LedgerDep, StateDep
from api.errors import ApiError, base64_field
from api.limits import check_payload_leaves
from api.models import ManifestDocument, VerdictPublic

if TYPE_CHECKING:
    from api.verdicts import Offline
    from verifier.manifest import Manifest
    from verifier.onchain import RecordedDelivery
    from verifier.verify import Verdict

router = APIRouter(prefix="/verify", tags=["verify"])

_HEX32 = r"^0x[0-9a-fA-F]{64}$"


class VerifyRequest(BaseModel):
    """A manifest and at most one of: the payload (base64) or the commitment the client computed itself.

    With neither, the manifest alone is checked against the chain (signer, receipt, dispute).
    """

    manifest: ManifestDocument = Field(
        description="The delivery manifest (`dxl.manifest/1`) as a JSON object."
    )
    payload_base64: str | None = Field(
        default=None, description="The payload, base64; bounded by the API's request size limit."
    )
    commitment: str | None = Field(
        default=None, pattern=_HEX32, description="A root the client computed from the payload itself."
    )
    delivery_id: str | None = Field(
        default=None, pattern=_HEX32, description="The delivery the manifest must be for."
    )


def _reader(state: StateDep, ledger: LedgerDep) -> Any:
    """One read-only ledger reader per app (:meth:`api.ledger.core.LedgerCore.chain_reader`): made again when
    the service's client moved to another node (a failover), or a check would read the node it left, stalled
    or gone, and judge at its old head (a presentation's deadline by that head's time)."""
    from verifier.onchain import LedgerReader

    reader = state.extra.get("verify_reader")
    if not isinstance(reader, LedgerReader) or reader.rpc_url != ledger.client.rpc_url:
        reader = ledger.chain_reader()
        state.extra["verify_reader"] = reader
    return reader


class PinnedCheck:
    """One request's check of the chain at one block: views of the service's shared ledger and receipt anchors
    readers (each request pins its own, :meth:`verifier.onchain.LedgerReader.view`), pinned to the node's head
    as read when the check is made (:func:`node.endpoint.pin_to_head`), so that a state change mined during
    the check is not half in its verdict. ``POST /verify`` checks so, and so does a presentation to an
    inspection (:class:`api.practice.inspections.PresentationJudge`).

    Raises (constructor):
        NodeError: the node does not answer its head (503 NODE_UNAVAILABLE).
        ApiError: NODE_UNAVAILABLE when the ledger reader cannot be made.
    """

    def __init__(self, state: Any, ledger: Any) -> None:
        from node.endpoint import pin_to_head

        self._state, self._ledger = state, ledger
        self.reader = _reader(state, ledger).view()
        self.head = pin_to_head(self.reader.rpc)

    def anchors(self) -> Any:
        """The receipt anchors' reader, pinned where the ledger's is (asked only for a receipt)."""
        view = _anchors_reader(self._state, self._ledger).view()
        view.rpc.pin(self.head.number)
        return view

    def check(
        self,
        manifest: Manifest,
        *,
        payload_base64: str | None = None,
        commitment: bytes | None = None,
        expected: bytes | None = None,
        principal: Principal | None = None,
    ) -> Verdict:
        """The verdict on ``manifest`` and the payload (base64) or the commitment sent with it, or on the
        manifest alone, every read of the chain made at :attr:`head`: the receipt journal consulted
        (:func:`api.verdicts.delivery_verdict`), the manifest held to the delivery ``expected`` when given,
        as ``principal`` may read (None: the service itself, which reads every delivery and receipt).

        Raises:
            ApiError: VALIDATION_ERROR (``payload_base64``) for a payload that is not base64 or cannot be cut
                into records, PAYLOAD_TOO_MANY_LEAVES, NODE_UNAVAILABLE.
        """
        from api.verdicts import delivery_verdict
        from verifier.errors import PayloadFormatError
        from verifier.onchain import ChainCheckError

        payload = None if payload_base64 is None else base64_field(payload_base64, "payload_base64")
        if payload is not None:
            check_payload_leaves(payload, manifest.chunking)  # counted before a leaf is hashed
        # One id names one delivery: a receipt (POST /receipts) is not also a ledger delivery.
        receipt = _journaled_receipt(self._state, self._ledger, principal, manifest.delivery_id)
        visible = None if principal is None else _parties_only(principal, self._ledger)
        try:
            with _offline(manifest, payload, commitment, expected) as offline:
                return delivery_verdict(
                    manifest, offline, self.reader, receipt, self.anchors,
                    expected_delivery_id=expected, visible=visible,
                )  # fmt: skip
        except PayloadFormatError as e:
            raise ApiError("VALIDATION_ERROR", e.message, field="payload_base64") from None
        except ChainCheckError as e:
            raise ApiError("NODE_UNAVAILABLE", e.message) from None

    def verdict(self, manifest_json: dict[str, Any], payload_base64: str, drawn: bytes) -> dict[str, Any]:
        """The verdict on a payload and its manifest presented to an inspection for ``drawn``, a delivery id
        or a receipt's slot (``verifier.sampling.receipt_slot``), judged at :attr:`head` (``block``, also for
        a manifest found altered: the presentation was taken there): :meth:`check`, the check ``POST /verify``
        makes, with the presented delivery held to the one drawn: the manifest must be for the drawn
        delivery, or for a receipt whose inclusion proof leads to the drawn grant and sequence (else
        ``MISMATCH``, ``NOT_THE_DRAWN_RECEIPT``).

        Raises:
            ApiError: VALIDATION_ERROR for an unusable manifest or payload, NODE_UNAVAILABLE.
        """
        from verifier.codes import FindingCode, VerdictStatus
        from verifier.sampling import slot_of
        from verifier.verify import Finding, Verdict

        manifest = _manifest(manifest_json)
        if isinstance(manifest, Verdict):
            return {**manifest.to_dict(), "block": self.head.number}
        slot = slot_of(drawn)
        expected = None if slot is not None else drawn
        verdict = self.check(manifest, payload_base64=payload_base64, expected=expected)
        if slot is not None and verdict.anchor is not None:
            d = verdict.anchor.details
            held = (d.get("grant_id"), d.get("sequence")) if d.get("recorded_as") == "receipt" else None
            if not verdict.anchor.recorded or held != slot:
                what = "not a receipt anchored on chain" if held is None or not verdict.anchor.recorded else (
                    f"the receipt at sequence {held[1]} of grant {held[0]}")  # fmt: skip
                finding = Finding(
                    FindingCode.NOT_THE_DRAWN_RECEIPT,
                    f"the inspection drew the receipt at sequence {slot[1]} of grant {slot[0]}; the "
                    f"manifest's delivery 0x{manifest.delivery_id.hex()} is {what}",
                )
                verdict = verdict.with_anchor(verdict.anchor, VerdictStatus.MISMATCH, finding)
        return {**verdict.to_dict(), "block": self.head.number}


def _manifest(document: dict[str, Any]) -> Manifest | Verdict:
    """The manifest ``document`` holds, or the verdict on it when it is well formed but altered (its fields
    contradict each other): a verdict, like a bad signature, not an error.

    Raises:
        ApiError: VALIDATION_ERROR (``manifest``) for a malformed field or an unknown algorithm: the manifest
            is unusable either way.
    """
    from verifier.errors import ManifestInconsistentError, VerifierError
    from verifier.manifest import parse_manifest
    from verifier.verify import altered

    try:
        return parse_manifest(document)
    except ManifestInconsistentError as e:
        return altered(e)
    except VerifierError as e:
        raise ApiError("VALIDATION_ERROR", e.message, field="manifest") from None


@contextmanager
def _offline(
    manifest: Manifest, payload: bytes | None, commitment: bytes | None, expected: bytes | None
) -> Iterator[Offline]:
    """The offline half of a check (:data:`api.verdicts.Offline`): of ``payload`` when one is sent, else of
    ``commitment`` or the manifest alone; usable while the context is open (the payload's is read then)."""
    from verifier.onchain import commitment_check, payload_check

    if payload is None:
        yield commitment_check(manifest, commitment=commitment, expected_delivery_id=expected)
        return
    # The verifier streams from a file; the upload is small (bounded by the body limit).
    with tempfile.TemporaryDirectory(prefix="dxl-verify-") as tmp:
        path = os.path.join(tmp, "payload")
        with open(path, "wb") as f:
            f.write(payload)
        yield payload_check(path, manifest, expected_delivery_id=expected)


def _parties_only(principal: Principal, ledger: Any) -> Callable[[RecordedDelivery], bool] | None:
    """For a department, which recorded deliveries its verdicts may show: those it is party to. Another
    department's delivery is answered as one not recorded, exactly as an unknown delivery id (README, the
    authorization matrix); auditors see every delivery (None)."""
    if principal.role is Role.AUDITOR:
        return None
    me = ledger.department_id_of(principal)
    return lambda rec: me in (rec.provider, rec.consumer)


def _journaled_receipt(state: Any, ledger: Any, principal: Principal | None, delivery_id: bytes) -> Any:
    """The receipt ``delivery_id`` names in this service's receipt journal, in any state, when the caller
    may read it as ``GET /receipts/{id}`` answers (parties and auditors; None: the service itself); None
    otherwise, so that another department's receipt is answered as a delivery not recorded."""
    from api.receipts import ReceiptService

    service = state.extra.get("receipts")
    if not isinstance(service, ReceiptService):  # no ReceiptAnchors deployed: no receipts to find
        return None
    reader = (
        None if principal is None or principal.role is Role.AUDITOR else ledger.department_id_of(principal)
    )
    found = service.reader.lookup([delivery_id], reader=reader)
    return found[0] if found else None


def _anchors_reader(state: Any, ledger: Any) -> Any:
    """One read-only reader of the receipt anchors per app, on the node the service uses (as :func:`_reader`,
    made again after a failover)."""
    from verifier.receipt_check import AnchorsReader

    address = state.extra["receipts"].anchors_address
    reader = state.extra.get("verify_anchors")
    if reader is None or reader.address.lower() != address.lower() or reader.rpc.url != ledger.client.rpc_url:
        reader = AnchorsReader(
            ledger.client.rpc_url, address, chain_id=ledger.chain_id, timeout=ledger.client.request_timeout
        )
        state.extra["verify_anchors"] = reader
    return reader


@router.post("", response_model=VerdictPublic)
def verify(
    body: VerifyRequest, principal: ExchangeReader, state: StateDep, ledger: LedgerDep
) -> dict[str, Any]:
    """The verdict for a payload (or a commitment, or the manifest alone) against manifest and ledger, a
    single delivery or a receipt alike (:func:`api.verdicts.delivery_verdict`: a receipt anchored in a batch
    by its inclusion proof, one accepted and not anchored yet PENDING); a department's verdict on a delivery
    it is not party to is that of a delivery not recorded. Every read of the chain is made at the head read
    as the check begins, the ``block`` answered.

    Raises:
        NodeError: the node does not answer its head (503 NODE_UNAVAILABLE).
    """
    from verifier.verify import Verdict

    if body.payload_base64 is not None and body.commitment is not None:
        raise ApiError("VALIDATION_ERROR", "send the payload or a commitment, not both", field="commitment")
    manifest = _manifest(body.manifest)
    if isinstance(manifest, Verdict):  # judged without the chain: read at no block
        return {**manifest.to_dict(), "block": None}
    # The app's reader serves every request; this one's view of it is pinned, and the anchors' view with it.
    at = PinnedCheck(state, ledger)
    verdict = at.check(
        manifest,
        payload_base64=body.payload_base64,
        commitment=bytes.fromhex(body.commitment[2:]) if body.commitment else None,
        expected=bytes.fromhex(body.delivery_id[2:]) if body.delivery_id else None,
        principal=principal,
    )
    from api.verdicts import without_node

    answer: dict[str, Any] = {**verdict.to_dict(), "block": at.head.number}
    return answer if principal.role is Role.AUDITOR else without_node(answer, ledger.client.rpc_url)
