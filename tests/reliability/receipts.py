"""Receipts under the same faults: every receipt answered ``202`` is anchored exactly once, counted on the
chain.

The chain holds batches, not receipts: for each grant, the ``ReceiptBatchAnchored`` events give the batches'
roots and leaf counts. A receipt is *confirmed* when the service's inclusion proof checks (the verifier's own
code) against a batch the chain anchored, with the fields the client posted; it is *lost* otherwise. Leaves
the chain counts for a grant beyond the receipts its clients posted are *doubled* (a receipt anchored twice
takes two leaves). Receipts of writes that never got a final answer may be anchored or not: they are allowed
for, never counted as confirmed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from tests.reliability.records import WriteKind, WriteRecord
from verifier.errors import ProofError
from verifier.receipts import ReceiptProof, verify_receipt_proof

ABI_FILE = Path(__file__).resolve().parents[2] / "contracts" / "abi" / "ReceiptAnchors.json"
LOG_RANGE = 2_000
#: The most ids ``POST /receipts/lookup`` takes at once.
LOOKUP_PAGE = 1_000


@dataclass(frozen=True)
class AnchoredBatch:
    grant_id: int
    first_sequence: int
    leaf_count: int
    root: str
    tx_hash: str


def read_batches(rpc_url: str, address: str, from_block: int) -> dict[tuple[int, int], AnchoredBatch]:
    """Every ``ReceiptBatchAnchored`` of the anchors contract, by (grant, first sequence)."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=json.loads(ABI_FILE.read_text())
    )
    event = contract.events.ReceiptBatchAnchored()
    head = w3.eth.block_number
    found: dict[tuple[int, int], AnchoredBatch] = {}
    for start in range(from_block, head + 1, LOG_RANGE):
        for log in event.get_logs(from_block=start, to_block=min(head, start + LOG_RANGE - 1)):
            a = log["args"]
            batch = AnchoredBatch(
                grant_id=int(a["grantId"]),
                first_sequence=int(a["firstSequence"]),
                leaf_count=int(a["leafCount"]),
                root="0x" + bytes(a["root"]).hex(),
                tx_hash="0x" + bytes(log["transactionHash"]).hex(),
            )
            found[(batch.grant_id, batch.first_sequence)] = batch
    return found


def posted(writes: Iterable[WriteRecord]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The receipts of acknowledged writes, and those of writes without a final answer, by delivery id."""
    acknowledged: dict[str, dict[str, Any]] = {}
    undecided: dict[str, dict[str, Any]] = {}
    for write in writes:
        if write.kind is not WriteKind.RECEIPTS or write.body is None:
            continue
        target = acknowledged if write.acknowledged else undecided if not write.settled else None
        if target is not None:
            for receipt in write.body["receipts"]:
                target[str(receipt["delivery_id"]).lower()] = receipt
    return acknowledged, undecided


@dataclass
class ReceiptVerdict:
    accepted: int = 0
    confirmed: int = 0
    lost: int = 0
    doubled: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, text: str) -> None:
        found = self.problems.setdefault(kind, [])
        if len(found) < 25:
            found.append(text)


def judge_receipts(
    acknowledged: dict[str, dict[str, Any]],
    undecided: dict[str, dict[str, Any]],
    answers: dict[str, dict[str, Any]],
    batches: dict[tuple[int, int], AnchoredBatch],
) -> ReceiptVerdict:
    """``answers``: the service's lookup of each acknowledged receipt (missing: it does not know it)."""
    verdict = ReceiptVerdict(accepted=len(acknowledged))
    positions: Counter[tuple[int, int]] = Counter()
    for delivery_id, sent in sorted(acknowledged.items()):
        why = _unproven(sent, answers.get(delivery_id), batches)
        if why is not None:
            verdict.lost += 1
            verdict.note("lost", f"receipt {delivery_id}: {why}")
            continue
        answer = answers[delivery_id]
        positions[(int(answer["grant_id"]), int(answer["sequence"]))] += 1
        verdict.confirmed += 1
    for (grant, sequence), n in positions.items():
        if n > 1:  # two receipts proven at one leaf: the service's answers cannot both be right
            verdict.lost += n - 1
            verdict.note("lost", f"grant {grant} leaf {sequence} claimed by {n} receipts")
    leaves: Counter[int] = Counter()
    for batch in batches.values():
        leaves[batch.grant_id] += batch.leaf_count
    sent_per_grant = Counter(int(r["grant_id"]) for r in acknowledged.values())
    maybe_per_grant = Counter(int(r["grant_id"]) for r in undecided.values())
    for grant, count in sorted(leaves.items()):
        extra = count - sent_per_grant[grant] - maybe_per_grant[grant]
        if extra > 0:
            verdict.doubled += extra
            verdict.note(
                "doubled",
                f"grant {grant}: {count} leaves anchored for {sent_per_grant[grant]} receipts acknowledged "
                f"(+{maybe_per_grant[grant]} unanswered)",
            )
    return verdict


def _unproven(
    sent: dict[str, Any], answer: dict[str, Any] | None, batches: dict[tuple[int, int], AnchoredBatch]
) -> str | None:
    """Why ``answer`` does not prove ``sent`` anchored, or None when it does."""
    if answer is None:
        return "the service does not know it"
    if answer.get("status") != "final" or answer.get("proof") is None:
        return f"status {answer.get('status')} after recovery"
    try:
        proof = ReceiptProof.from_json(answer["proof"])
        verify_receipt_proof(proof)
    except ProofError as exc:
        return f"proof does not check: {exc}"
    r = proof.receipt
    if ("0x" + r.delivery_id.hex(), r.grant_id, "0x" + r.commitment.hex(), r.byte_size, r.record_count) != (
        str(sent["delivery_id"]).lower(), int(sent["grant_id"]), str(sent["commitment"]).lower(),
        int(sent["byte_size"]), int(sent["record_count"]),
    ):  # fmt: skip
        return "the proven receipt's fields differ from the posted ones"
    batch = batches.get((r.grant_id, proof.first_sequence))
    if batch is None:
        return f"no batch of grant {r.grant_id} at sequence {proof.first_sequence} on the chain"
    if (batch.root, batch.leaf_count) != ("0x" + proof.root.hex(), proof.leaf_count):
        return f"the chain's batch has root {batch.root} / {batch.leaf_count} leaves, the proof another"
    return None
