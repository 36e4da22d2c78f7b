"""The sample derivation of ``verifier.sampling``: the same inputs draw the same deliveries, every time and
by an independent reimplementation of the documented steps; the sample is a subset without repeats."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.sampling import AnchoredBatch, Population, draw_sample, receipt_slot, slot_of


def reference(seed: bytes, inspection_id: int, population: list[bytes], size: int) -> list[bytes]:
    """The module docstring's steps 2-4, written out again."""
    pool = list(population)
    for i in range(min(size, len(pool))):
        digest = hashlib.sha256(
            b"dxl.inspection.sample/1" + seed + inspection_id.to_bytes(8, "big") + i.to_bytes(8, "big")
        ).digest()
        j = i + int.from_bytes(digest, "big") % (len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[: min(size, len(pool))]


POPULATION = sorted(bytes([n]) * 32 for n in range(1, 11))
SEED = bytes.fromhex("5e" * 32)


def test_same_seed_same_sample() -> None:
    first = draw_sample(SEED, 1, POPULATION, 4, version=2)
    assert first == draw_sample(SEED, 1, POPULATION, 4, version=2) == reference(SEED, 1, POPULATION, 4)
    assert len(set(first)) == 4 and set(first) <= set(POPULATION)
    # A vector pinned here: a change to the derivation must be a new version, not a silent edit.
    assert [d[0] for d in first] == [9, 2, 7, 1]


def test_seed_and_inspection_change_the_sample() -> None:
    drawn = {tuple(draw_sample(bytes([b]) * 32, 1, POPULATION, 4, version=2)) for b in range(8)}
    assert len(drawn) > 1
    assert draw_sample(SEED, 1, POPULATION, 4, version=2) != draw_sample(SEED, 2, POPULATION, 4, version=2)


def test_small_populations() -> None:
    assert draw_sample(SEED, 1, [], 3, version=2) == []
    assert sorted(draw_sample(SEED, 1, POPULATION[:2], 5, version=2)) == POPULATION[:2]


@pytest.mark.parametrize(
    ("seed", "population", "size"),
    [(b"\x01" * 31, POPULATION, 1), (SEED, list(reversed(POPULATION)), 1), (SEED, POPULATION * 2, 1),
     (SEED, POPULATION, -1)],
)  # fmt: skip
def test_preconditions(seed: bytes, population: list[bytes], size: int) -> None:
    with pytest.raises(ValueError):
        draw_sample(seed, 1, population, size, version=2)


@given(
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=1, max_value=2**64 - 1),
    st.sets(st.binary(min_size=32, max_size=32), max_size=40),
    st.integers(min_value=0, max_value=50),
)
def test_matches_the_reference(seed: bytes, inspection_id: int, ids: set[bytes], size: int) -> None:
    population = sorted(ids)
    drawn = draw_sample(seed, inspection_id, population, size, version=2)
    assert drawn == reference(seed, inspection_id, population, size)
    assert len(drawn) == min(size, len(population)) == len(set(drawn))


def test_random_ids_are_drawn_reproducibly() -> None:
    population = sorted(os.urandom(32) for _ in range(100))
    seed = os.urandom(32)
    assert draw_sample(seed, 9, population, 10, version=2) == draw_sample(
        seed, 9, list(population), 10, version=2
    )


@given(
    st.binary(min_size=32, max_size=32),
    st.sets(st.binary(min_size=32, max_size=32).filter(lambda b: b[:4] != bytes(4)), max_size=20),
    st.lists(st.tuples(st.integers(1, 4), st.integers(1, 30)), max_size=6),
    st.integers(min_value=0, max_value=60),
)
def test_version2_receiptsDrawnEachAsADelivery_asTheWrittenOutPopulationDraws(
    seed: bytes, ids: set[bytes], batches: list[tuple[int, int]], size: int
) -> None:
    """Version 2: every receipt of an anchored batch is one entry (its slot), drawn as a delivery is; the
    population kept as batches draws exactly what the documented steps draw from it written out whole."""
    anchored, next_sequence = [], dict.fromkeys(range(1, 5), 0)
    for grant, count in batches:
        anchored.append(AnchoredBatch(grant, next_sequence[grant], count, grant, 9, 0))
        next_sequence[grant] += count
    pool = Population(list(ids), anchored)
    written = sorted([*ids, *(receipt_slot(b.grant_id, b.first_sequence + i) for b in anchored
                              for i in range(b.leaf_count))])  # fmt: skip
    assert list(pool) == written and len(pool) == len(ids) + sum(c for _g, c in batches)
    drawn = draw_sample(seed, 3, pool, size, version=2)
    assert drawn == reference(seed, 3, written, size)
    for entry in drawn:
        batch, slot = pool.batch_of(entry), slot_of(entry)
        assert (batch is None) == (slot is None) == (entry in ids)
        if batch is not None and slot is not None:
            assert (
                batch.grant_id == slot[0]
                and batch.first_sequence <= slot[1] < batch.first_sequence + batch.leaf_count
            )


def test_version2_receiptSlotsAreNeverDeliveryIds() -> None:
    """A slot starts with 16 zero bytes; a delivery id with its provider's department id (1 or more)."""
    assert slot_of(receipt_slot(7, 12)) == (7, 12) and slot_of(bytes([0, 0, 0, 1]) + bytes(28)) is None
    with pytest.raises(ValueError, match="none a receipt's slot"):
        Population([receipt_slot(1, 0), b"\x01" * 32])


def reference_stratified(
    seed: bytes, inspection_id: int, entries: dict[bytes, int], size: int
) -> list[bytes]:
    """The module docstring's step 4 (version 3), written out again over ``entries``: every entry of the
    population, written out whole, with its provider department."""
    prefix = seed + inspection_id.to_bytes(8, "big")
    providers = sorted(set(entries.values()))
    strata = {p: sorted(e for e, q in entries.items() if q == p) for p in providers}
    if not providers:
        return []
    s = int.from_bytes(hashlib.sha256(b"dxl.inspection.sample/3" + prefix).digest(), "big") % len(providers)
    order = providers[s:] + providers[:s]
    taken = dict.fromkeys(providers, 0)
    drawn: list[bytes] = []
    while len(drawn) < min(size, len(entries)):
        for p in order:
            pool, i = strata[p], taken[p]
            if i == len(pool) or len(drawn) == min(size, len(entries)):
                continue
            digest = hashlib.sha256(
                b"dxl.inspection.sample/3" + prefix + p.to_bytes(4, "big") + i.to_bytes(8, "big")
            ).digest()
            j = i + int.from_bytes(digest, "big") % (len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
            drawn.append(pool[i])
            taken[p] += 1
    return drawn


def delivery(provider: int, n: int) -> bytes:
    """A delivery id of ``provider``: the ledger makes its first 4 bytes the provider's department id."""
    return provider.to_bytes(4, "big") + n.to_bytes(28, "big")


def written_out(pool: Population) -> dict[bytes, int]:
    """Every entry of a (small) population with its provider: a delivery's from its id, a slot's batch's."""
    out = {d: int.from_bytes(d[:4], "big") for d in pool.deliveries}
    for b in pool.batches:
        out.update({receipt_slot(b.grant_id, b.first_sequence + i): b.provider for i in range(b.leaf_count)})
    return out


#: Three providers: department 1 with a batch of 6 receipts and 2 deliveries, 2 with 3 deliveries, 7 with 1.
VECTOR = Population(
    [delivery(1, 1), delivery(1, 2), delivery(2, 1), delivery(2, 2), delivery(2, 3), delivery(7, 1)],
    [AnchoredBatch(grant_id=4, first_sequence=10, leaf_count=6, provider=1, consumer=2, anchored_at=0)],
)


def test_version3_vector_isPinned_andTheWrittenOutStepsDrawIt() -> None:
    """A vector pinned here: a change to the derivation must be a new version, not a silent edit. Inspection
    7's rotation starts at department 7 (the third): 7, 1, 2; then 1, 2 with 7 exhausted; then 1, 2."""
    drawn = draw_sample(SEED, 7, VECTOR, 7, version=3)
    assert drawn == reference_stratified(SEED, 7, written_out(VECTOR), 7)
    named = [f"slot {s[1]}" if (s := slot_of(d)) else f"delivery {d[3]}/{d[-1]}" for d in drawn]
    assert named == [
        "delivery 7/1", "delivery 1/1", "delivery 2/3", "slot 15", "delivery 2/1", "slot 10", "delivery 2/2",
    ]  # fmt: skip
    # Versions 1 and 2 draw the same population otherwise: as one pool, by the other domain.
    assert draw_sample(SEED, 7, VECTOR, 7, version=2) == reference(SEED, 7, sorted(written_out(VECTOR)), 7)


def test_version3_drawnTwice_sameSample() -> None:
    first = draw_sample(SEED, 5, VECTOR, 7, version=3)
    assert first == draw_sample(SEED, 5, VECTOR, 7, version=3)
    assert first == draw_sample(SEED, 5, Population(list(VECTOR.deliveries), VECTOR.batches), 7, version=3)
    assert len(set(first)) == 7 and set(first) <= set(written_out(VECTOR))
    assert first != draw_sample(SEED, 6, VECTOR, 7, version=3)
    assert first != draw_sample(bytes(32), 5, VECTOR, 7, version=3)


@given(
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=1, max_value=2**64 - 1),
    st.sets(st.tuples(st.integers(1, 5), st.integers(1, 2**32)), max_size=25),
    st.lists(st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 12)), max_size=5),
    st.integers(min_value=0, max_value=60),
)
def test_version3_matchesTheWrittenOutSteps_andEachProviderHasItsShare(
    seed: bytes, inspection_id: int, ids: set[tuple[int, int]], batches: list[tuple[int, int, int]], size: int
) -> None:
    """Each provider with entries gets ``min(n_p, floor(k / P))`` draws at least, whatever the others hold."""
    anchored, next_sequence = [], dict.fromkeys(range(1, 5), 0)
    for grant, provider, count in batches:
        anchored.append(AnchoredBatch(grant, next_sequence[grant], count, provider, 9, 0))
        next_sequence[grant] += count
    pool = Population([delivery(p, n) for p, n in ids], anchored)
    entries = written_out(pool)
    drawn = draw_sample(seed, inspection_id, pool, size, version=3)
    assert drawn == reference_stratified(seed, inspection_id, entries, size)
    k = min(size, len(entries))
    assert len(drawn) == k == len(set(drawn))
    providers = set(entries.values())
    for p in providers:
        n_p = sum(1 for q in entries.values() if q == p)
        assert sum(1 for d in drawn if entries[d] == p) >= min(n_p, k // len(providers))


#: The most receipts one batch can hold (``leafCount`` is a uint64): more than ``len()`` can count.
HUGE = 2**64 - 1


def test_version3_aHugeBatchOfOneProvider_crowdsOutNoOtherProvidersDeliveries() -> None:
    """Department 1 anchors one batch of 2^64 - 1 receipts in the period; department 2 records 5 deliveries.
    Drawn as one pool (version 2) the batch fills the whole sample and department 2 escapes inspection; by
    provider (version 3) department 2 keeps half the draws, and which of its deliveries are drawn does not
    depend on department 1's batch at all. Nothing of the batch is written out: a draw finds its slot."""
    theirs = [delivery(2, n) for n in range(1, 6)]
    huge = Population(theirs, [AnchoredBatch(3, 0, HUGE, provider=1, consumer=2, anchored_at=0)])
    small = Population(theirs, [AnchoredBatch(3, 0, 4, provider=1, consumer=2, anchored_at=0)])
    assert huge.size == HUGE + 5

    def of_department_2(version: int, pool: Population) -> list[bytes]:
        return [d for d in draw_sample(SEED, 4, pool, 6, version=version) if d in theirs]

    assert of_department_2(2, huge) == []
    drawn = of_department_2(3, huge)
    assert len(drawn) == 3 and drawn == of_department_2(3, small)
    slots = [d for d in draw_sample(SEED, 4, huge, 6, version=3) if d not in theirs]
    assert len(slots) == 3 and all(huge.batch_of(d) is not None for d in slots)


def test_unknownVersion_refused() -> None:
    with pytest.raises(ValueError, match="version 4 is unknown"):
        draw_sample(SEED, 1, POPULATION, 1, version=4)
