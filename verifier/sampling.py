"""Sampling inspections: which deliveries an inspection draws, recomputable by anyone from the chain alone.

An auditor opens an inspection of a closed period on the ``SharingPractice`` contract and commits to a block
number still in the future; once that block exists, its hash is fixed on chain as the inspection's seed
(``drawSample``). Nobody can choose the sample: the population was closed before the seed existed, and the
seed is a block hash no one knew at opening. The derivation, which callers MUST follow exactly, has three
versions; the practice contract says which its inspections follow (``sampleVersion()``; a contract without
that function follows version 1), and a contract naming a version this module does not know is refused:

1. **population**: the ``deliveryId`` of every ``DeliveryRecorded`` log of the ledger whose ``recordedAt`` is
   in ``[periodFrom, periodTo)`` (a delivery id is recorded once). Versions 2 and 3 add every receipt of
   every batch the practice contract's ``anchors()`` anchored with ``anchoredAt`` in the period (its
   ``ReceiptBatchAnchored`` log): the receipt at ``sequence`` of grant ``grantId`` is the slot
   ``uint128(0) || uint64be(grantId) || uint64be(sequence)``, for ``sequence`` in ``[firstSequence,
   firstSequence + leafCount)``. A slot's first 16 bytes are zero and a delivery id's first 4 are its
   provider's department id (1 or more), so the two never meet: each receipt weighs in the draw as a single
   delivery does, and a provider that moves its deliveries to receipts does not shrink its inspected share
   (in version 1 receipts were never drawn). The whole population sorted ascending as 32-byte strings.
2. ``n = len(population)``, ``k = min(sampleSize, n)``.
3. versions 1 and 2: for ``i`` in ``0 .. k-1``: ``r = SHA-256("dxl.inspection.sample/1" || seed ||
   uint64be(inspectionId) || uint64be(i))`` read as a big-endian integer, ``j = i + r mod (n - i)``; swap
   ``population[i]`` and ``population[j]`` (a partial Fisher-Yates shuffle; the modulo bias of a 256-bit
   ``r`` is negligible). The sample is ``population[0:k]``, in draw order.
4. version 3, **stratified by provider**: the population is partitioned by provider department, a delivery id
   to the department id of its first 4 bytes (the ledger refuses any other), a receipt's slot to its batch's
   ``provider`` (its ``ReceiptBatchAnchored`` log); each stratum keeps step 1's order. With ``P`` the
   providers holding entries, ascending by id, and ``s = SHA-256("dxl.inspection.sample/3" || seed ||
   uint64be(inspectionId)) mod P``, the draws go round by round over the providers in the order
   ``providers[s], providers[s+1], .., providers[P-1], providers[0], .., providers[s-1]``, each round giving
   the next draw to every provider whose stratum is not exhausted, until ``k`` are drawn. A provider ``p``'s
   ``i``-th draw is step 3 within its own stratum of ``n_p`` entries, with ``r = SHA-256(
   "dxl.inspection.sample/3" || seed || uint64be(inspectionId) || uint32be(p) || uint64be(i))`` and ``j = i
   + r mod (n_p - i)``: its stratum's entry ``i`` after the swap. The sample is the draws in that order.

Why version 3. Inspections sample to check every provider's exchanges, and in versions 1 and 2 every entry
weighs alike: a provider anchoring one batch of a million receipts (the contract would take 2^64 - 1) filled
nearly the whole sample with its own slots, and every other provider's deliveries of the period escaped
inspection, at the price of the not-presented marks on its own card only. Stratified, a provider's stratum
size decides nothing for anyone else:

* each provider with entries gets ``min(n_p, floor(k / P))`` draws at least, whatever the others' strata
  hold: only a stratum smaller than its share gives draws away (to the others, never fewer to them), so a
  provider growing its stratum takes back at most its own equal share, and one padding it with receipts it
  cannot present draws only its own slots and marks. ``P`` grows only with departments admitted by
  governance, so no provider can dilute the others by multiplying strata (a stratum per grant or per batch
  would let it: grants are the provider's to ask for).
* which of a provider's entries are drawn depends on the seed, the inspection and that provider's stratum
  alone (the provider id is in the hash), not on anyone else's entries; within a stratum a receipt still
  weighs as a single delivery does, as in version 2.
* the remainder ``k mod P`` of the last round falls where the seeded rotation ``s`` puts it, not on the
  lowest department ids every time.
* it stays recomputable from the chain alone (the strata come from the same logs as version 2's
  population), deterministic, and unpredictable before the seed: the allocation's sizes follow from the
  closed population, but which entries fill them, and who takes the remainder, only from the seed.

Proportional allocation (draws in proportion to stratum size) was not chosen: it is version 2's crowding
again. Weighing a batch as one entry was not either: it is version 1's escape, receipts inspected less the
more a provider moves to them. A stratum is kept as ranges of slots (:class:`Population`): a batch of 2^64
receipts is one entry, a draw finds its slot by index (``bisect``), and the shuffle keeps its swaps only, so
nothing is written out in memory but the ``k`` entries drawn.

A drawn receipt is checked by its inclusion proof: its provider presents the payload, its manifest and the
receipt (``GET /receipts/{id}``), whose proof must lead to the anchored batch at that grant and sequence.

:func:`draw_sample` is that derivation as a pure function; :func:`derive_sample` reads the inspection and the
population from a node by JSON-RPC (no service, no signing) and also checks that the stored seed is the hash
of the committed block, so an auditor can recompute a sample with nothing but a node's URL.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from verifier import abi as abi_codec
from verifier.codes import SampleStatus
from verifier.delivery_ids import delivery_id_provider
from verifier.onchain import ChainCheckError, LedgerReader, contract_chain_id
from verifier.rpc import SET_ONCE, JsonRpc, RpcError, data

#: The hash domains of step 3 (versions 1 and 2) and step 4 (version 3): a new derivation is a new domain, so
#: no hash of one can be read as a hash of another.
DOMAIN = b"dxl.inspection.sample/1"
DOMAIN_STRATIFIED = b"dxl.inspection.sample/3"
#: The derivations this module follows (``sampleVersion()``); version 3 is the stratified one.
SAMPLE_VERSIONS = (1, 2, 3)
STRATIFIED_VERSION = 3
#: The practice contract's entries the derivation reads (``verifier/practice-abi.json``, written from the
#: build artifact by ``scripts/verifier-abi.py``).
PRACTICE_ABI_NAMES = (
    "inspection", "outcome", "InspectionOutcomeRecorded", "anchors", "sampleVersion", "ledger",
)  # fmt: skip
PRACTICE_ABI_FILE = Path(__file__).resolve().parent / "practice-abi.json"
#: How many blocks back the EVM's BLOCKHASH reaches: an inspection undrawn when the head is this many blocks
#: past its seed block can never be drawn (the contract's view reads it ``Expired`` from that block on).
BLOCKHASH_WINDOW = 256

#: The first bytes of a receipt's slot (``receipt_slot``): no delivery id starts with them.
_SLOT_PREFIX = bytes(16)


def receipt_slot(grant_id: int, sequence: int) -> bytes:
    """The population entry (and outcome key on chain) of the receipt at ``sequence`` of ``grant_id``."""
    return _SLOT_PREFIX + int(grant_id).to_bytes(8, "big") + int(sequence).to_bytes(8, "big")


def slot_of(entry: bytes) -> tuple[int, int] | None:
    """The (grant, sequence) a population entry names when it is a receipt's slot; None for a delivery id."""
    if len(entry) != 32 or entry[:16] != _SLOT_PREFIX:
        return None
    return int.from_bytes(entry[16:24], "big"), int.from_bytes(entry[24:], "big")


@dataclass(frozen=True)
class AnchoredBatch:
    """A ``ReceiptBatchAnchored`` log: the receipts of a population it contributes, and who delivered them."""

    grant_id: int
    first_sequence: int
    leaf_count: int
    provider: int
    consumer: int
    anchored_at: int


class Population(Sequence[bytes]):
    """Step 1's sorted population without writing out every receipt's slot: the batches' slots (they sort
    first, by grant and sequence), then the delivery ids. A batch of 65,536 receipts is one entry here.

    Raises (constructor):
        ValueError: two batches overlap, or the delivery ids are not sorted and distinct.
    """

    def __init__(self, deliveries: Sequence[bytes], batches: Sequence[AnchoredBatch] = ()) -> None:
        self.deliveries = sorted(deliveries)
        if any(slot_of(d) is not None for d in self.deliveries) or any(
            a == b for a, b in itertools.pairwise(self.deliveries)
        ):
            raise ValueError("the delivery ids must be distinct, and none a receipt's slot")
        self.batches = sorted(batches, key=lambda b: (b.grant_id, b.first_sequence))
        for a, b in itertools.pairwise(self.batches):
            if a.grant_id == b.grant_id and a.first_sequence + a.leaf_count > b.first_sequence:
                raise ValueError(f"batches of grant {a.grant_id} overlap at sequence {b.first_sequence}")
        self._starts = list(itertools.accumulate((b.leaf_count for b in self.batches), initial=0))

    @property
    def receipts(self) -> int:
        return self._starts[-1]

    @property
    def size(self) -> int:
        """The number of entries. ``len()`` stops at 2^63 - 1 (an index-sized integer), which the slots of one
        batch may pass (a ``leafCount`` is a uint64): the derivation counts with this."""
        return self.receipts + len(self.deliveries)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < self.size:
            raise IndexError(index)
        if index >= self.receipts:
            return self.deliveries[index - self.receipts]
        at = bisect.bisect_right(self._starts, index) - 1
        batch = self.batches[at]
        return receipt_slot(batch.grant_id, batch.first_sequence + index - self._starts[at])

    def strata(self) -> dict[int, Population]:
        """Step 4's partition: each provider department's entries (its delivery ids, the slots of its
        batches), ascending by department id, each stratum in step 1's order."""
        deliveries: dict[int, list[bytes]] = {}
        batches: dict[int, list[AnchoredBatch]] = {}
        for d in self.deliveries:
            deliveries.setdefault(delivery_id_provider(d), []).append(d)
        for b in self.batches:
            if b.leaf_count:
                batches.setdefault(b.provider, []).append(b)
        providers = sorted({*deliveries, *batches})
        return {p: Population(deliveries.get(p, ()), batches.get(p, ())) for p in providers}

    def batch_of(self, entry: bytes) -> AnchoredBatch | None:
        """The batch holding the receipt ``entry`` is the slot of; None for a delivery id or another slot."""
        slot = slot_of(entry)
        if slot is None:
            return None
        for batch in self.batches:
            if (
                batch.grant_id == slot[0]
                and batch.first_sequence <= slot[1] < batch.first_sequence + batch.leaf_count
            ):
                return batch
        return None


def draw_sample(
    seed: bytes, inspection_id: int, population: Sequence[bytes], size: int, *, version: int
) -> list[bytes]:
    """The sample of steps 2-4 of the module's derivation, by ``version`` (the practice contract's
    ``sampleVersion()``).

    Preconditions: ``seed`` is 32 bytes; ``population`` is sorted ascending and has no duplicates (step 1: a
    :class:`Population` is, by construction; a list is checked); ``size >= 0``; ``version`` one of
    :data:`SAMPLE_VERSIONS`. Version 3 reads each entry's provider: a list stands for delivery ids alone (a
    receipt's provider is its batch's, which only a :class:`Population` holds). Callers MUST check ``seed``
    against the chain (the hash of the inspection's seed block).

    Raises:
        ValueError: a precondition does not hold.
    """
    if version not in SAMPLE_VERSIONS:
        raise ValueError(f"sample derivation version {version} is unknown here (known: {SAMPLE_VERSIONS})")
    if len(seed) != 32:
        raise ValueError(f"the seed is 32 bytes, got {len(seed)}")
    if size < 0:
        raise ValueError("the sample size is not negative")
    if not isinstance(population, Population) and any(a >= b for a, b in itertools.pairwise(population)):
        raise ValueError("the population must be sorted ascending, without duplicates")
    prefix = int(inspection_id).to_bytes(8, "big")
    if version < STRATIFIED_VERSION:
        return _shuffle(DOMAIN + seed + prefix, population, min(size, _count(population)))
    pool = population if isinstance(population, Population) else Population(population)
    strata = pool.strata()
    k = min(size, pool.size)
    if k == 0:
        return []
    order = list(strata)
    start = int.from_bytes(hashlib.sha256(DOMAIN_STRATIFIED + seed + prefix).digest(), "big") % len(order)
    # Each provider's shuffle runs lazily, a draw per round: a stratum of 2^64 slots costs only its draws.
    shuffles = {
        p: _draws(DOMAIN_STRATIFIED + seed + prefix + p.to_bytes(4, "big"), strata[p])
        for p in order[start:] + order[:start]
    }
    drawn: list[bytes] = []
    while len(drawn) < k:
        for p, draws in list(shuffles.items()):
            entry = next(draws, None)
            if entry is None:
                del shuffles[p]  # exhausted: its turn passes to the next provider, in this round and after
                continue
            drawn.append(entry)
            if len(drawn) == k:
                break
    return drawn


def _draws(prefix: bytes, population: Sequence[bytes]) -> Iterator[bytes]:
    """The partial Fisher-Yates shuffle of step 3 over ``population``, hashing ``prefix || uint64be(i)``: its
    draws in order, until the population is exhausted. Keeps the swaps only, not a copy of the population: a
    million receipts (or 2^64) need not be written out."""
    n = _count(population)
    moved: dict[int, bytes] = {}
    for i in range(n):
        r = int.from_bytes(hashlib.sha256(prefix + i.to_bytes(8, "big")).digest(), "big")
        j = i + r % (n - i)
        # Position i is never read again (later j's are above it): only position j keeps what it swapped.
        at_i = moved.pop(i) if i in moved else population[i]
        if j == i:
            yield at_i
            continue
        at_j = moved[j] if j in moved else population[j]
        moved[j] = at_i
        yield at_j


def _count(population: Sequence[bytes]) -> int:
    return population.size if isinstance(population, Population) else len(population)


def _shuffle(prefix: bytes, population: Sequence[bytes], k: int) -> list[bytes]:
    """The first ``k`` draws of :func:`_draws`."""
    return list(itertools.islice(_draws(prefix, population), k))


@dataclass(frozen=True)
class InspectionState:
    """An inspection as the practice contract holds it."""

    inspection_id: int
    auditor: str
    status: SampleStatus
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
    #: The derivation followed (the practice contract's ``sampleVersion``).
    version: int = 1
    #: The batch of each drawn receipt, by its slot.
    batches: dict[bytes, AnchoredBatch] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        i = self.inspection
        return {
            "inspection_id": i.inspection_id, "status": i.status.value, "period_from": i.period_from,
            "period_to": i.period_to, "sample_size": i.sample_size, "seed_block": i.seed_block,
            "seed": "0x" + i.seed.hex(), "population_size": self.population_size, "version": self.version,
            "sample": ["0x" + d.hex() for d in self.sample],
            "receipts": {"0x" + d.hex(): {"grant_id": b.grant_id, "sequence": slot[1],
                                          "first_sequence": b.first_sequence, "provider": b.provider}
                         for d, b in self.batches.items() if (slot := slot_of(d)) is not None},
        }  # fmt: skip


class InspectionNotDrawnError(ChainCheckError):
    """Thrown when an inspection has no seed at the block read: it is open there. Either its seed block has
    no block on top of it yet (no draw can be mined before), or it can be drawn and nobody has, or the node
    read is behind one that holds the draw: the head read says which."""

    code = "INSPECTION_NOT_DRAWN"

    def __init__(self, inspection_id: int, seed_block: int, head: int, rpc_url: str) -> None:
        self.inspection_id, self.seed_block, self.head = inspection_id, seed_block, head
        if head <= seed_block:
            why = (
                f"its seed is the hash of block {seed_block}, which has no block on top of it there yet: it "
                f"can be drawn from block {seed_block + 1} on"
            )
        else:
            why = (
                f"its seed block {seed_block} is mined, so anyone may draw it until block "
                f"{seed_block + BLOCKHASH_WINDOW} (unless another node, ahead of this one, holds its draw)"
            )
        super().__init__(f"inspection {inspection_id} is not drawn at block {head} of {rpc_url}: {why}")


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
        inspection_id, str(auditor), SampleStatus.of(int(status)), int(size), int(period_from),
        int(period_to), int(seed_block), int(present_by), bytes(seed),
    )  # fmt: skip


def population(
    reader: LedgerReader, period_from: int, period_to: int, *, anchors: str | None = None
) -> Population:
    """Step 1 of the derivation: the deliveries recorded in ``[period_from, period_to)``, and (versions 2
    and 3, ``anchors`` the practice contract's) the receipts of the batches anchored in it.

    Raises:
        ChainCheckError: the node fails.
    """
    deliveries = [r.delivery_id for r in reader.recorded_between(period_from, period_to)]
    if anchors is None:
        return Population(deliveries)
    batches = [b for b in anchored_batches(reader, anchors) if period_from <= b.anchored_at < period_to]
    return Population(deliveries, batches)


def anchored_batches(reader: LedgerReader, anchors: str) -> list[AnchoredBatch]:
    """Every ``ReceiptBatchAnchored`` log of the contract at ``anchors``, from the ledger reader's first block
    (the anchors are deployed after the ledger).

    Raises:
        ChainCheckError: the node fails, or a log does not decode.
    """
    from verifier.receipt_check import load_anchors_abi

    event = next(e for e in load_anchors_abi() if e.get("name") == "ReceiptBatchAnchored")
    topic = "0x" + abi_codec.event_topic(event).hex()
    out: list[AnchoredBatch] = []
    try:
        latest = int(reader.rpc.call("eth_blockNumber"), 16)
        for start in range(reader.from_block, latest + 1, reader.log_range):
            where = {"address": anchors, "topics": [topic], "fromBlock": hex(start),
                     "toBlock": hex(min(start + reader.log_range - 1, latest))}  # fmt: skip
            for log in reader.rpc.call("eth_getLogs", where):
                a = abi_codec.decode_log(event, [data(t) for t in log["topics"]], data(log["data"]))
                fields = ("grantId", "firstSequence", "leafCount", "provider", "consumer", "anchoredAt")
                out.append(AnchoredBatch(*(int(a[f]) for f in fields)))
    except (RpcError, ValueError, TypeError, KeyError) as e:
        raise ChainCheckError(f"the receipt anchors' logs cannot be read ({type(e).__name__}: {e})") from None
    return out


def sample_version(
    rpc: JsonRpc, practice: str, abi: list[dict[str, Any]] | None = None
) -> tuple[int, str | None]:
    """The derivation the practice contract's inspections follow, and for versions 2 and 3 the receipt
    anchors whose batches join the population (None where the contract has none).

    Raises:
        ChainCheckError: the node fails, or the contract names a version not in :data:`SAMPLE_VERSIONS`.
    """
    entries = {e.get("name"): e for e in (abi or load_practice_abi())}

    def call(name: str) -> Any:
        entry = entries[name]
        raw = data(rpc.call("eth_call", {"to": practice, "data": "0x" + abi_codec.selector(entry).hex()},
                            SET_ONCE))  # fmt: skip
        (value,) = abi_codec.decode(entry["outputs"], raw)
        return value

    try:
        code = data(rpc.call("eth_getCode", practice, SET_ONCE))
        # A Solidity contract's dispatcher holds every external function's selector (one with leading zero
        # bytes is pushed shorter): a contract built before ``sampleVersion`` lacks it and follows version 1.
        if abi_codec.selector(entries["sampleVersion"]).lstrip(b"\0") not in code:
            return 1, None
        version = int(call("sampleVersion"))
    except (RpcError, ValueError) as e:
        raise ChainCheckError(f"the practice contract cannot be read ({type(e).__name__}: {e})") from None
    if version not in SAMPLE_VERSIONS:
        # Drawn by another derivation than the contract names, a sample would be one no one inspected.
        raise ChainCheckError(
            f"the practice contract at {practice} follows sample derivation version {version}, which this "
            f"verifier does not know (it knows {', '.join(map(str, SAMPLE_VERSIONS))}): use a newer dxl"
        )
    try:
        anchors = str(call("anchors"))
    except (RpcError, ValueError) as e:
        raise ChainCheckError(f"the practice contract's anchors cannot be read ({e})") from None
    return version, None if int(anchors, 16) == 0 else anchors


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


def practice_ledger(rpc: JsonRpc, practice: str, abi: list[dict[str, Any]] | None = None) -> str:
    """The ledger the practice contract at ``practice`` serves (``ledger()``, fixed at its construction).

    Raises:
        ChainCheckError: the node fails, or the contract has no such view (it is no practice contract).
    """
    entry = next(e for e in (abi or load_practice_abi()) if e.get("name") == "ledger")
    try:
        raw = data(rpc.call("eth_call", {"to": practice, "data": "0x" + abi_codec.selector(entry).hex()},
                            SET_ONCE))  # fmt: skip
        (ledger,) = abi_codec.decode(entry["outputs"], raw)
    except (RpcError, ValueError) as e:
        raise ChainCheckError(
            f"the contract at {practice} does not say which ledger it serves ({type(e).__name__}: {e})"
        ) from None
    return str(ledger)


def derive_sample(reader: LedgerReader, practice: str, inspection_id: int) -> DerivedSample:
    """Recompute an inspection's sample from the node behind ``reader`` (the ledger) and the practice contract
    at ``practice``, which must serve that ledger.

    Raises:
        InspectionNotDrawnError: the inspection is open at the block read (not drawn yet there).
        ChainCheckError: the node fails, the practice contract serves another ledger, the inspection is
            unknown or expired, its stored seed is not the hash of its seed block, or
            ``reader`` starts after the period's first block.
    """
    contract_chain_id(reader.rpc, reader.rpc_url, practice, reader.chain_id)
    # Its inspections and their seeds are its own, but the population is read from ``reader``'s ledger: a
    # practice contract of another ledger would have its seeds draw this ledger's deliveries, a sample no one
    # inspected.
    served = practice_ledger(reader.rpc, practice)
    if served.lower() != reader.address.lower():
        raise ChainCheckError(
            f"the practice contract at {practice} serves ledger {served}, not {reader.address}: its "
            "inspections sample that ledger's deliveries"
        )
    inspection = read_inspection(reader.rpc, practice, inspection_id)
    if inspection.status is SampleStatus.EXPIRED:
        raise ChainCheckError(
            f"inspection {inspection_id} expired: it was not drawn while block {inspection.seed_block}'s "
            "hash was known, so it has no sample"
        )
    if inspection.status is not SampleStatus.DRAWN:
        try:
            head = int(reader.rpc.call("eth_blockNumber"), 16)  # the block read, where the reader is pinned
        except (RpcError, ValueError, TypeError) as e:
            raise ChainCheckError(f"the node's head cannot be read: {e}") from None
        raise InspectionNotDrawnError(inspection_id, inspection.seed_block, head, reader.rpc_url)
    try:
        block = reader.rpc.call("eth_getBlockByNumber", hex(inspection.seed_block), False)
    except RpcError as e:
        raise ChainCheckError(f"block {inspection.seed_block} cannot be read: {e}") from None
    if block is None or data(block["hash"]) != inspection.seed:
        raise ChainCheckError(
            f"inspection {inspection_id}'s seed is not the hash of block {inspection.seed_block} here"
        )
    _check_covers(reader, inspection)
    version, anchors = sample_version(reader.rpc, practice)
    pool = population(reader, inspection.period_from, inspection.period_to, anchors=anchors)
    drawn = draw_sample(inspection.seed, inspection_id, pool, inspection.sample_size, version=version)
    batches = {d: b for d in drawn if (b := pool.batch_of(d)) is not None}
    return DerivedSample(inspection, pool.size, tuple(drawn), version=version, batches=batches)
