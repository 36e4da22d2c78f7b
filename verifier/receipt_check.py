"""The on-chain check of an anchored receipt: is its inclusion proof backed by a batch the chain holds?

Runs against any node by RPC URL with plain JSON-RPC and the few ``ReceiptAnchors`` entries below — no
service, no database: the proof (as ``GET /receipts/{id}`` answers it) carries the receipt, its batch and
audit path, and the chain is the trusted anchor. Checks, in order (:func:`check_receipt`):

1. the proof itself (:func:`verifier.receipts.verify_receipt_proof`): it must lead to the root it names, else
   ``MISMATCH``;
2. ``batch(grant, firstSequence)`` on chain: none -> ``NOT_ANCHORED``; another root or leaf count ->
   ``MISMATCH`` (the proof is for a batch the chain does not hold); a receipt no single delivery of the
   batch's provider could be (:func:`verifier.receipts.undeliverable_fields`: a zero commitment, a hash
   algorithm the ledger does not accept, a delivery id outside the provider's namespace) -> ``MISMATCH``, as
   the contract's ``receiptIncluded`` says (the contract never sees the leaves it anchors);
3. ``receiptDisputed(grant, sequence)`` -> ``DISPUTED``; an acknowledged batch -> ``ACKNOWLEDGED``; else
   ``ANCHORED``.

The contract's own ``receiptIncluded`` runs the same algorithm on chain (``ReceiptTrees.sol``); the tests hold
the two to the same answers.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from verifier import abi as abi_codec
from verifier.codes import FindingCode, ReceiptVerdictStatus, VerdictStatus
from verifier.errors import ManifestSignatureError, ProofError
from verifier.eth import is_address, to_checksum_address
from verifier.manifest import Manifest, verify_manifest_signature
from verifier.onchain import (
    ChainCheckError,
    LedgerReader,
    RecordedDelivery,
    chain_findings,
    commitment_check,
    contract_chain_id,
    payload_check,
)
from verifier.receipts import (
    Receipt,
    ReceiptProof,
    same_stated,
    undeliverable_fields,
    verify_receipt_proof,
)
from verifier.rpc import DEFAULT_TIMEOUT_S, SET_ONCE, JsonRpc, RpcError, data
from verifier.text import counted
from verifier.verify import Anchor, Finding, Verdict, untrusted

#: ``BatchStatus`` of the contract, by value.
_ACKNOWLEDGED = 2


#: The ``ReceiptAnchors`` views and events this check reads, shipped as package data (``anchors-abi.json``,
#: written from the build artifact by ``scripts/verifier-abi.py``) so an installed verifier needs no
#: ``contracts/``.
ANCHORS_ABI_NAMES = (
    "batch",
    "ledger",
    "receiptDisputed",
    "ReceiptBatchAnchored",
    "ReceiptBatchAcknowledged",
    "ReceiptDisputed",
)
ANCHORS_ABI_FILE = Path(__file__).resolve().parent / "anchors-abi.json"


def load_anchors_abi(path: Path = ANCHORS_ABI_FILE) -> list[dict[str, Any]]:
    """Raises: ChainCheckError when the file is missing or unreadable."""
    try:
        return list(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise ChainCheckError(f"cannot read the receipt anchors ABI from {path}: {e}") from None


@cache
def _functions() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in load_anchors_abi() if e["type"] == "function"}


@cache
def _topics() -> dict[str, str]:
    return {
        e["name"]: "0x" + abi_codec.event_topic(e).hex() for e in load_anchors_abi() if e["type"] == "event"
    }


#: Block span of one ``eth_getLogs`` call when locating a batch's anchoring (Besu caps ranges at 5,000).
_LOG_RANGE = 5000


@dataclass(frozen=True)
class ReceiptVerdict:
    status: ReceiptVerdictStatus
    detail: str
    delivery_id: str
    grant_id: int
    sequence: int
    chain: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "detail": self.detail, "delivery_id": self.delivery_id,
                "grant_id": self.grant_id, "sequence": self.sequence, "chain": self.chain}  # fmt: skip


class AnchorsReader:
    """Read-only calls into one ``ReceiptAnchors`` contract: at ``block`` when one is given (or once ``rpc``
    is pinned: :meth:`verifier.rpc.JsonRpc.pin`), else at the node's head of each read.

    Raises (constructor):
        ChainCheckError: the node is unreachable, serves another chain id, or has no code at ``address``.
    """

    def __init__(
        self,
        rpc_url: str,
        address: str,
        *,
        chain_id: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        block: int | None = None,
    ) -> None:
        if not is_address(address):
            raise ChainCheckError(f"{address!r} is not a contract address")
        self.rpc = JsonRpc(rpc_url, timeout=timeout, block=block)
        self.address = to_checksum_address(address)
        self.chain_id = contract_chain_id(self.rpc, rpc_url, self.address, chain_id)

    def view(self) -> AnchorsReader:
        """This reader on a client of its own, to pin without pinning this one, as
        :meth:`verifier.onchain.LedgerReader.view`."""
        view = copy.copy(self)
        view.rpc = self.rpc.view()
        return view

    def ledger(self) -> str:
        """The ledger these anchors serve (set at deployment): the one whose grants and departments their
        batches name."""
        return to_checksum_address(str(self.call("ledger", block=SET_ONCE)))

    def call(self, fn: str, *args: Any, block: str = "latest") -> Any:
        """The single return value of the view function ``fn(args)`` at ``block`` (a tag)."""
        entry = _functions()[fn]
        try:
            calldata = abi_codec.selector(entry) + abi_codec.encode(entry["inputs"], args)
            result = data(
                self.rpc.call("eth_call", {"to": self.address, "data": "0x" + calldata.hex()}, block)
            )
            (value,) = abi_codec.decode(entry["outputs"], result)
        except (RpcError, ValueError) as e:
            raise ChainCheckError(f"eth_call {fn} failed ({type(e).__name__}: {e})") from None
        return value

    def anchoring(self, grant_id: int, first_sequence: int, *, from_block: int = 0) -> dict[str, Any] | None:
        """Where the batch of ``grant_id`` starting at ``first_sequence`` was anchored (transaction, block,
        block hash, log index), from its ``ReceiptBatchAnchored`` log; None if there is none.

        Raises:
            ChainCheckError: the node fails.
        """
        return self._first_log("ReceiptBatchAnchored", grant_id, first_sequence, from_block=from_block)

    def settlement(
        self, grant_id: int, first_sequence: int, sequence: int, *, disputed: bool, from_block: int = 0
    ) -> dict[str, Any] | None:
        """Where the consumer settled the receipt at ``sequence`` of the batch at ``first_sequence``: its
        ``ReceiptDisputed`` log if ``disputed``, else its batch's ``ReceiptBatchAcknowledged`` log (the same
        location fields as :meth:`anchoring`); None if there is none.

        Raises:
            ChainCheckError: the node fails.
        """
        if disputed:
            return self._first_log("ReceiptDisputed", grant_id, sequence, from_block=from_block)
        return self._first_log("ReceiptBatchAcknowledged", grant_id, first_sequence, from_block=from_block)

    def _first_log(self, event: str, *indexed: int, from_block: int) -> dict[str, Any] | None:
        """Where the first ``event`` log of this contract whose first indexed values are ``indexed`` is.

        Raises:
            ChainCheckError: the node fails.
        """
        topics = [_topics()[event], *("0x" + value.to_bytes(32, "big").hex() for value in indexed)]
        try:
            latest = int(self.rpc.call("eth_blockNumber"), 16)
            for start in range(max(0, from_block), latest + 1, _LOG_RANGE):
                end = min(start + _LOG_RANGE - 1, latest)
                where = {
                    "address": self.address,
                    "topics": topics,
                    "fromBlock": hex(start),
                    "toBlock": hex(end),
                }
                logs = self.rpc.call("eth_getLogs", where)
                if logs:
                    log = logs[0]
                    return {"tx_hash": str(log["transactionHash"]).lower(),
                            "block_number": int(log["blockNumber"], 16),
                            "block_hash": str(log["blockHash"]).lower(),
                            "log_index": int(log["logIndex"], 16)}  # fmt: skip
        except (RpcError, ValueError, TypeError, KeyError) as e:
            raise ChainCheckError(f"eth_getLogs failed ({type(e).__name__}: {e})") from None
        return None


def check_receipt(proof: ReceiptProof, reader: AnchorsReader) -> ReceiptVerdict:
    """The verdict on ``proof`` against the anchors ``reader`` reads.

    Raises:
        ChainCheckError: the node fails to answer a call.
    """
    r = proof.receipt
    try:
        verify_receipt_proof(proof)
    except ProofError as e:
        return _verdict(proof, {}, ReceiptVerdictStatus.MISMATCH, f"the proof does not hold: {e}")
    root, leaf_count, anchored_at, provider, consumer, status = reader.call(
        "batch", r.grant_id, proof.first_sequence
    )
    chain = {"chain_id": reader.chain_id, "anchors": reader.address, "root": "0x" + bytes(root).hex(),
             "leaf_count": leaf_count, "anchored_at": anchored_at, "provider": provider,
             "consumer": consumer}  # fmt: skip
    if int(status) == 0:
        detail = f"no batch of grant {r.grant_id} starting at sequence {proof.first_sequence} is anchored"
        return _verdict(proof, chain, ReceiptVerdictStatus.NOT_ANCHORED, detail)
    if bytes(root) != proof.root or int(leaf_count) != proof.leaf_count:
        anchored, named = counted(int(leaf_count), "receipt"), counted(proof.leaf_count, "receipt")
        detail = (f"the anchored batch has root {chain['root']} and {anchored}; the proof names "
                  f"root 0x{proof.root.hex()} and {named}")  # fmt: skip
        return _verdict(proof, chain, ReceiptVerdictStatus.MISMATCH, detail)
    refused = undeliverable_fields(r, int(provider))
    if refused:
        return _verdict(proof, chain, ReceiptVerdictStatus.MISMATCH, _undeliverable(r, refused[0], provider))
    contradicted = _stated_otherwise(proof, chain, reader)
    if contradicted is not None:
        return _verdict(proof, chain, ReceiptVerdictStatus.MISMATCH, contradicted)
    if reader.call("receiptDisputed", r.grant_id, proof.sequence):
        return _verdict(
            proof, chain, ReceiptVerdictStatus.DISPUTED, "the consumer disputed this receipt on chain"
        )
    if int(status) == _ACKNOWLEDGED:
        detail = "anchored, and the consumer acknowledged its batch"
        return _verdict(proof, chain, ReceiptVerdictStatus.ACKNOWLEDGED, detail)
    return _verdict(
        proof, chain, ReceiptVerdictStatus.ANCHORED, "anchored: the proof leads to the batch's root"
    )


def _stated_otherwise(proof: ReceiptProof, chain: dict[str, Any], reader: AnchorsReader) -> str | None:
    """What the answer the proof came with states of its batch otherwise than the chain: its parties (the
    anchored batch's) and where it was anchored (its ``ReceiptBatchAnchored`` log); None if nothing. An answer
    naming another consumer, or another transaction and block, was ANCHORED: the proof proves the receipt,
    not what is said beside it.

    Raises:
        ChainCheckError: the node fails.
    """
    stated = proof.stated
    if stated is None:
        return None
    on_chain: list[tuple[str, Any, Any]] = [
        ("provider", stated.provider, int(chain["provider"])),
        ("consumer", stated.consumer, int(chain["consumer"])),
    ]
    if stated.tx_hash is not None or stated.block_number is not None:
        where = reader.anchoring(proof.receipt.grant_id, proof.first_sequence) or {}
        on_chain += [
            ("batch tx_hash", stated.tx_hash, where.get("tx_hash")),
            ("batch block_number", stated.block_number, where.get("block_number")),
        ]
    for name, said, holds in on_chain:
        if said is not None and not same_stated(said, holds):
            return f"the answer states {name} {said!r}, the chain {holds!r}"
    return None


def _undeliverable(r: Receipt, refused: str, provider: int) -> str:
    """Why no delivery of department ``provider`` could be ``r``, by the first field the ledger refuses."""
    if refused == "commitment":
        why = "its commitment is zero"
    elif refused == "hash_algorithm":
        why = f"its hash algorithm {r.hash_algorithm} is none the ledger accepts (1 SHA-256, 2 SM3)"
    else:
        why = (f"its delivery id 0x{r.delivery_id.hex()} is not in the namespace of the batch's provider, "
               f"department {provider} (its first four bytes are not that id)")  # fmt: skip
    return f"no delivery of the batch's provider could be this receipt, as the ledger checks one: {why}"


def _verdict(
    proof: ReceiptProof, chain: dict[str, Any], status: ReceiptVerdictStatus, detail: str
) -> ReceiptVerdict:
    return ReceiptVerdict(status, detail, "0x" + proof.receipt.delivery_id.hex(), proof.receipt.grant_id,
                          proof.sequence, chain)  # fmt: skip


def verify_payload_receipt(
    path: str | os.PathLike[str],
    manifest: Manifest,
    ledger: LedgerReader,
    anchors: AnchorsReader,
    proof: ReceiptProof,
    *,
    expected_delivery_id: bytes | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Payload against manifest against an anchored receipt (:func:`check_receipt_onchain`).

    Raises:
        ChainCheckError: the chain cannot be consulted.
        PayloadReadError, PayloadFormatError: the payload cannot be read or cut into records.
    """
    offline = payload_check(path, manifest, expected_delivery_id=expected_delivery_id, progress=progress)
    return check_receipt_onchain(
        manifest, ledger, anchors, proof, offline, expected_delivery_id=expected_delivery_id
    )


def verify_commitment_receipt(
    manifest: Manifest,
    ledger: LedgerReader,
    anchors: AnchorsReader,
    proof: ReceiptProof,
    *,
    commitment: bytes | None = None,
    expected_delivery_id: bytes | None = None,
) -> Verdict:
    """Manifest (and a commitment the client computed itself, when given) against an anchored receipt,
    without the payload (:func:`check_receipt_onchain`).

    Raises:
        ChainCheckError: the chain cannot be consulted.
    """
    offline = commitment_check(manifest, commitment=commitment, expected_delivery_id=expected_delivery_id)
    return check_receipt_onchain(
        manifest, ledger, anchors, proof, offline, expected_delivery_id=expected_delivery_id
    )


def check_receipt_onchain(
    manifest: Manifest,
    ledger: LedgerReader,
    anchors: AnchorsReader,
    proof: ReceiptProof,
    offline: Callable[[str | None], Verdict],
    *,
    expected_delivery_id: bytes | None = None,
) -> Verdict:
    """What :func:`verifier.onchain.check_onchain` checks for a single delivery, with the receipt's inclusion
    proof and its batch in place of the ``DeliveryRecorded`` log; ``offline`` as it takes it
    (:func:`verifier.onchain.payload_check`, :func:`verifier.onchain.commitment_check`).

    1. The proof's receipt must be the manifest's delivery, the anchors must serve ``ledger`` (else
       ChainCheckError), and the proof must lead to a batch the chain holds (:func:`check_receipt`) -> else
       NOT_RECORDED, naming why.
    2. The manifest's signature must recover to the batch provider's signer on the ledger -> else UNTRUSTED.
    3. Payload (or commitment) against manifest -> MISMATCH with the differing leaves.
    4. Manifest against the receipt: root, byte size, record count, algorithm id, grant and parties (the
       batch's, on chain) -> MISMATCH.
    5. A receipt the consumer disputed -> ACK_DIFFERS; an acknowledged batch acknowledges the receipt.

    The anchor's details say the delivery is recorded as a receipt (``recorded_as``), in which batch
    (``grant_id``, ``first_sequence``, ``leaf_count``, ``root``), at which leaf (``sequence``), and that its
    inclusion proof was checked against that batch (``proof_checked``).

    Raises:
        ChainCheckError: the chain cannot be consulted.
        PayloadReadError, PayloadFormatError: from ``offline``.
    """
    r = proof.receipt
    source = f"chain {anchors.chain_id} receipt anchors {anchors.address} via {anchors.rpc.url}"
    if r.delivery_id != manifest.delivery_id:
        anchor = Anchor(source, recorded=False, details={"receipt_delivery_id": "0x" + r.delivery_id.hex()})
        mine, theirs = "0x" + r.delivery_id.hex(), "0x" + manifest.delivery_id.hex()
        finding = Finding(
            FindingCode.RECEIPT_OTHER_DELIVERY,
            f"the receipt is for delivery {mine}, the manifest for {theirs}",
        )
        return offline(None).with_anchor(anchor, VerdictStatus.MISMATCH, finding)
    # A batch names grant and department ids of the ledger its anchors serve: read against another ledger
    # (one a department shares a key with, a staging one), its parties were that ledger's namesakes and a
    # receipt it never saw was a MATCH.
    served = anchors.ledger()
    if served.lower() != ledger.address.lower():
        raise ChainCheckError(
            f"the receipt anchors {anchors.address} serve ledger {served}, not {ledger.address}: give the "
            "anchors deployed beside that ledger"
        )
    checked = check_receipt(proof, anchors)
    if checked.status in (ReceiptVerdictStatus.NOT_ANCHORED, ReceiptVerdictStatus.MISMATCH):
        anchor = Anchor(source, recorded=False, details={**checked.chain, "receipt": checked.status.value})
        code = (
            FindingCode.RECEIPT_NOT_ANCHORED
            if checked.status is ReceiptVerdictStatus.NOT_ANCHORED
            else FindingCode.RECEIPT_MISMATCH
        )
        finding = Finding(code, checked.detail)
        return offline(None).with_anchor(anchor, VerdictStatus.NOT_RECORDED, finding)
    chain = checked.chain
    where = anchors.anchoring(r.grant_id, proof.first_sequence, from_block=ledger.from_block)
    if where is None:
        raise ChainCheckError(
            f"the batch of grant {r.grant_id} at sequence {proof.first_sequence} is anchored but its "
            f"ReceiptBatchAnchored log is not found from block {ledger.from_block}"
        )
    rec = RecordedDelivery(
        delivery_id=r.delivery_id, grant_id=r.grant_id, commitment=r.commitment, provider=chain["provider"],
        consumer=chain["consumer"], hash_algorithm=r.hash_algorithm, byte_size=r.byte_size,
        record_count=r.record_count, recorded_at=chain["anchored_at"], **where,
    )  # fmt: skip
    provider, consumer = ledger.department(rec.provider), ledger.department(rec.consumer)
    status = checked.status
    # Where the consumer settled it, as a single delivery's verdict says: the anchoring is not the settlement.
    settled = None
    if status in (ReceiptVerdictStatus.DISPUTED, ReceiptVerdictStatus.ACKNOWLEDGED):
        was_disputed = status is ReceiptVerdictStatus.DISPUTED
        settled = anchors.settlement(r.grant_id, proof.first_sequence, proof.sequence, disputed=was_disputed,
                                     from_block=where["block_number"])  # fmt: skip
        if settled is None:
            event = "ReceiptDisputed" if was_disputed else "ReceiptBatchAcknowledged"
            raise ChainCheckError(
                f"receipt {proof.sequence} of grant {r.grant_id} is {status.value} but its {event} log is "
                f"not found from block {where['block_number']}"
            )
    details: dict[str, Any] = {
        "recorded_as": "receipt", "proof_checked": True,
        **chain, "ledger": ledger.address, "status": status.value, **where, "grant_id": r.grant_id,
        "sequence": proof.sequence, "first_sequence": proof.first_sequence, "provider": provider["code"],
        "consumer": consumer["code"], "provider_signer": provider["signer"],
        "hash_algorithm": r.hash_algorithm, "byte_size": r.byte_size, "record_count": r.record_count,
        "recorded_at": rec.recorded_at, "settled": settled,
    }  # fmt: skip
    anchor = Anchor(
        source,
        recorded=True,
        recorded_root=r.commitment,
        acknowledged_root=r.commitment if status is ReceiptVerdictStatus.ACKNOWLEDGED else None,
        details=details,
    )
    if not manifest.signed:
        return untrusted(manifest, "the manifest is not signed").with_anchor(anchor)
    try:
        verify_manifest_signature(manifest, provider["signer"], expected_delivery_id=expected_delivery_id)
    except ManifestSignatureError as e:
        reason = f"{e.reason} (the provider {provider['code']}'s signer on chain is {provider['signer']})"
        return untrusted(manifest, reason).with_anchor(anchor)
    verdict = offline(provider["signer"])
    parties = {"provider": provider["code"], "consumer": consumer["code"]}
    findings = chain_findings(manifest, rec, parties, ledger)
    if findings:
        return verdict.with_anchor(anchor, VerdictStatus.MISMATCH, *findings)
    if status is ReceiptVerdictStatus.DISPUTED:
        disputed = Finding(
            FindingCode.ACK_DIFFERS, f"consumer {consumer['code']} disputed this receipt on chain"
        )
        return verdict.with_anchor(anchor, VerdictStatus.ACK_DIFFERS, disputed)
    return verdict.with_anchor(anchor)
