"""The on-chain check of an anchored receipt: is its inclusion proof backed by a batch the chain holds?

Runs against any node by RPC URL with plain JSON-RPC and the few ``ReceiptAnchors`` entries below — no
service, no database: the proof (as ``GET /receipts/{id}`` answers it) carries the receipt, its batch and
audit path, and the chain is the trusted anchor. Checks, in order (:func:`check_receipt`):

1. the proof itself (:func:`verifier.receipts.verify_receipt_proof`): it must lead to the root it names, else
   ``MISMATCH``;
2. ``batch(grant, firstSequence)`` on chain: none -> ``NOT_ANCHORED``; another root or leaf count ->
   ``MISMATCH`` (the proof is for a batch the chain does not hold);
3. ``receiptDisputed(grant, sequence)`` -> ``DISPUTED``; an acknowledged batch -> ``ACKNOWLEDGED``; else
   ``ANCHORED``.

The contract's own ``receiptIncluded`` runs the same algorithm on chain (``ReceiptTrees.sol``); the tests hold
the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from verifier import abi as abi_codec
from verifier.errors import ProofError
from verifier.eth import is_address, to_checksum_address
from verifier.onchain import ChainCheckError, contract_chain_id
from verifier.receipts import ReceiptProof, verify_receipt_proof
from verifier.rpc import JsonRpc, RpcError, data

#: ``BatchStatus`` of the contract, by value.
_ACKNOWLEDGED = 2


def _p(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "internalType": kind}


#: The ``ReceiptAnchors`` views this check calls, as in the contract's ABI (a test compares them with the
#: build artifact, which an installed verifier does not carry).
ANCHORS_ABI: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "name": "batch",
        "stateMutability": "view",
        "inputs": [_p("grantId", "uint64"), _p("firstSequence", "uint64")],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "internalType": "struct ReceiptBatch",
                "components": [
                    _p("root", "bytes32"),
                    _p("leafCount", "uint64"),
                    _p("anchoredAt", "uint64"),
                    _p("provider", "uint32"),
                    _p("consumer", "uint32"),
                    {"name": "status", "type": "uint8", "internalType": "enum BatchStatus"},
                ],
            }
        ],
    },
    {
        "type": "function",
        "name": "receiptDisputed",
        "stateMutability": "view",
        "inputs": [_p("grantId", "uint64"), _p("sequence", "uint64")],
        "outputs": [_p("", "bool")],
    },
)
_FUNCTIONS = {e["name"]: e for e in ANCHORS_ABI}


class ReceiptVerdictStatus(StrEnum):
    ANCHORED = "ANCHORED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    DISPUTED = "DISPUTED"
    NOT_ANCHORED = "NOT_ANCHORED"
    MISMATCH = "MISMATCH"

    @property
    def ok(self) -> bool:
        return self in (ReceiptVerdictStatus.ANCHORED, ReceiptVerdictStatus.ACKNOWLEDGED)


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
    """Read-only calls into one ``ReceiptAnchors`` contract.

    Raises (constructor):
        ChainCheckError: the node is unreachable, serves another chain id, or has no code at ``address``.
    """

    def __init__(
        self, rpc_url: str, address: str, *, chain_id: int | None = None, timeout: float = 30.0
    ) -> None:
        if not is_address(address):
            raise ChainCheckError(f"{address!r} is not a contract address")
        self.rpc = JsonRpc(rpc_url, timeout=timeout)
        self.address = to_checksum_address(address)
        self.chain_id = contract_chain_id(self.rpc, rpc_url, self.address, chain_id)

    def call(self, fn: str, *args: Any) -> Any:
        entry = _FUNCTIONS[fn]
        try:
            calldata = abi_codec.selector(entry) + abi_codec.encode(entry["inputs"], args)
            result = data(
                self.rpc.call("eth_call", {"to": self.address, "data": "0x" + calldata.hex()}, "latest")
            )
            (value,) = abi_codec.decode(entry["outputs"], result)
        except (RpcError, ValueError) as e:
            raise ChainCheckError(f"eth_call {fn} failed ({type(e).__name__}: {e})") from None
        return value


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
        detail = (f"the anchored batch has root {chain['root']} and {leaf_count} receipts; the proof names "
                  f"root 0x{proof.root.hex()} and {proof.leaf_count} receipts")  # fmt: skip
        return _verdict(proof, chain, ReceiptVerdictStatus.MISMATCH, detail)
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


def _verdict(
    proof: ReceiptProof, chain: dict[str, Any], status: ReceiptVerdictStatus, detail: str
) -> ReceiptVerdict:
    return ReceiptVerdict(status, detail, "0x" + proof.receipt.delivery_id.hex(), proof.receipt.grant_id,
                          proof.sequence, chain)  # fmt: skip
