"""Sampling inspections: which deliveries an inspection draws, recomputable by anyone from the chain alone.

An auditor opens an inspection of a closed period on the ``SharingPractice`` contract and commits to a block
number still in the future; once that block exists, its hash is fixed on chain as the inspection's seed
(``drawSample``). Nobody can choose the sample: the population was closed before the seed existed, and the
seed is a block hash no one knew at opening. The derivation (version 1), which callers MUST follow exactly:

1. **population**: the ``deliveryId`` of every ``DeliveryRecorded`` log of the ledger whose ``recordedAt`` is
   in ``[periodFrom, periodTo)``, sorted ascending as 32-byte strings (a delivery id is recorded once).
   Receipts anchored in batches (``ReceiptAnchors``) are not deliveries of the ledger and are not drawn.
2. ``n = len(population)``, ``k = min(sampleSize, n)``.
3. for ``i`` in ``0 .. k-1``: ``r = SHA-256("dxl.inspection.sample/1" || seed || uint64be(inspectionId) ||
   uint64be(i))`` read as a big-endian integer, ``j = i + r mod (n - i)``; swap ``population[i]`` and
   ``population[j]`` (a partial Fisher-Yates shuffle; the modulo bias of a 256-bit ``r`` is negligible).
4. the sample is ``population[0:k]``, in draw order.

:func:`draw_sample` is that derivation as a pure function; :func:`derive_sample` reads the inspection and the
population from a node by JSON-RPC (no service, no signing) and also checks that the stored seed is the hash
of the committed block, so an auditor can recompute a sample with nothing but a node's URL.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier import abi as abi_codec
from verifier.onchain import ChainCheckError, LedgerReader, contract_chain_id
from verifier.rpc import JsonRpc, RpcError, data

DOMAIN = b"dxl.inspection.sample/1"
#: The practice contract's entries the derivation reads (``verifier/practice-abi.json``, written from the
#: build artifact by ``scripts/verifier-abi.py``).
PRACTICE_ABI_NAMES = ("inspection", "outcome", "InspectionOutcomeRecorded")
PRACTICE_ABI_FILE = Path(__file__).resolve().parent / "practice-abi.json"
#: How many blocks back the EVM's BLOCKHASH reaches: an inspection undrawn when the head is this many blocks
#: past its seed block can never be drawn (the contract's view reads it ``Expired`` from that block on).
BLOCKHASH_WINDOW = 256
#: ``InspectionStatus`` of the contract, by value.
INSPECTION_STATUS = ("NONE", "OPEN", "DRAWN", "EXPIRED")


def draw_sample(seed: bytes, inspection_id: int, population: Sequence[bytes], size: int) -> list[bytes]:
    """The sample of step 3-4 of the module's derivation.

    Preconditions: ``seed`` is 32 bytes; ``population`` is sorted ascending and has no duplicates (step 1);
    ``size >= 0``. Callers MUST check ``seed`` against the chain (the hash of the inspection's seed block).

    Raises:
        ValueError: a precondition does not hold.
    """
    if len(seed) != 32:
        raise ValueError(f"the seed is 32 bytes, got {len(seed)}")
    if size < 0:
        raise ValueError("the sample size is not negative")
    pool = list(population)
    if any(a >= b for a, b in itertools.pairwise(pool)):
        raise ValueError("the population must be sorted ascending, without duplicates")
    k = min(size, len(pool))
    prefix = DOMAIN + seed + int(inspection_id).to_bytes(8, "big")
    for i in range(k):
        r = int.from_bytes(hashlib.sha256(prefix + i.to_bytes(8, "big")).digest(), "big")
        j = i + r % (len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


@dataclass(frozen=True)
class InspectionState:
    """An inspection as the practice contract holds it."""

    inspection_id: int
    auditor: str
    status: str
    sample_size: int
    period_from: int
    period_to: int
    seed_block: int
    present_by: int
    seed: bytes


@dataclass(frozen=True)
class DerivedSample:
    """A sample recomputed from the chain: the population it was drawn from and the drawn deliveries."""

    inspection: InspectionState
    population_size: int
    sample: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        i = self.inspection
        return {
            "inspection_id": i.inspection_id, "status": i.status, "period_from": i.period_from,
            "period_to": i.period_to, "sample_size": i.sample_size, "seed_block": i.seed_block,
            "seed": "0x" + i.seed.hex(), "population_size": self.population_size,
            "sample": ["0x" + d.hex() for d in self.sample],
        }  # fmt: skip


def load_practice_abi(path: Path = PRACTICE_ABI_FILE) -> list[dict[str, Any]]:
    """Raises: ChainCheckError when the file is missing or unreadable."""
    try:
        return list(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise ChainCheckError(f"cannot read the practice ABI from {path}: {e}") from None


def read_inspection(
    rpc: JsonRpc, practice: str, inspection_id: int, abi: list[dict[str, Any]] | None = None
) -> InspectionState:
    """Raises: ChainCheckError when the call fails (an unknown inspection reverts)."""
    entry = next(e for e in (abi or load_practice_abi()) if e.get("name") == "inspection")
    try:
        calldata = abi_codec.selector(entry) + abi_codec.encode(entry["inputs"], [inspection_id])
        raw = data(rpc.call("eth_call", {"to": practice, "data": "0x" + calldata.hex()}, "latest"))
        ((auditor, status, size, period_from, period_to, seed_block, present_by, seed),) = abi_codec.decode(
            entry["outputs"], raw
        )
    except (RpcError, ValueError) as e:
        raise ChainCheckError(
            f"inspection {inspection_id} cannot be read ({type(e).__name__}: {e})"
        ) from None
    return InspectionState(
        inspection_id, str(auditor), INSPECTION_STATUS[int(status)], int(size), int(period_from),
        int(period_to), int(seed_block), int(present_by), bytes(seed),
    )  # fmt: skip


def population(reader: LedgerReader, period_from: int, period_to: int) -> list[bytes]:
    """Step 1 of the derivation: the deliveries recorded in ``[period_from, period_to)``, sorted."""
    return sorted(r.delivery_id for r in reader.recorded_between(period_from, period_to))


def _check_covers(reader: LedgerReader, inspection: InspectionState) -> None:
    """Raises ChainCheckError when ``reader`` starts reading after blocks that may hold deliveries of the
    inspection's period: a population read from there would lack them, and the sample would be another."""
    if reader.from_block == 0:
        return
    try:
        before = reader.rpc.call("eth_getBlockByNumber", hex(reader.from_block - 1), False)
    except RpcError as e:
        raise ChainCheckError(f"block {reader.from_block - 1} cannot be read: {e}") from None
    if before is not None and int(before["timestamp"], 16) < inspection.period_from:
        return
    # The period began before ``from_block``; the blocks skipped hold none of its deliveries only if the
    # ledger did not exist in them (a period such as "this month" may begin before it was deployed).
    if before is None or not reader.starts_at_deployment():
        raise ChainCheckError(
            f"reading the ledger from block {reader.from_block} would miss deliveries of inspection "
            f"{inspection.inspection_id}'s period (from {inspection.period_from}): read from the ledger's "
            "deployment block"
        )


def derive_sample(reader: LedgerReader, practice: str, inspection_id: int) -> DerivedSample:
    """Recompute an inspection's sample from the node behind ``reader`` (the ledger) and the practice contract
    at ``practice``.

    Raises:
        ChainCheckError: the node fails, the inspection is unknown, not drawn yet or expired, its stored seed
            is not the hash of its seed block, or ``reader`` starts after the period's first block.
    """
    contract_chain_id(reader.rpc, reader.rpc_url, practice, reader.chain_id)
    inspection = read_inspection(reader.rpc, practice, inspection_id)
    if inspection.status == "EXPIRED":
        raise ChainCheckError(
            f"inspection {inspection_id} expired: it was not drawn while block {inspection.seed_block}'s "
            "hash was known, so it has no sample"
        )
    if inspection.status != "DRAWN":
        raise ChainCheckError(f"inspection {inspection_id} is {inspection.status.lower()}: no seed yet")
    try:
        block = reader.rpc.call("eth_getBlockByNumber", hex(inspection.seed_block), False)
    except RpcError as e:
        raise ChainCheckError(f"block {inspection.seed_block} cannot be read: {e}") from None
    if block is None or data(block["hash"]) != inspection.seed:
        raise ChainCheckError(
            f"inspection {inspection_id}'s seed is not the hash of block {inspection.seed_block} here"
        )
    _check_covers(reader, inspection)
    pool = population(reader, inspection.period_from, inspection.period_to)
    drawn = draw_sample(inspection.seed, inspection_id, pool, inspection.sample_size)
    return DerivedSample(inspection, len(pool), tuple(drawn))
