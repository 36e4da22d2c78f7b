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
    first = draw_sample(SEED, 1, POPULATION, 4)
    assert first == draw_sample(SEED, 1, POPULATION, 4) == reference(SEED, 1, POPULATION, 4)
    assert len(set(first)) == 4 and set(first) <= set(POPULATION)
    # A vector pinned here: a change to the derivation must be a new version, not a silent edit.
    assert [d[0] for d in first] == [9, 2, 7, 1]


def test_seed_and_inspection_change_the_sample() -> None:
    drawn = {tuple(draw_sample(bytes([b]) * 32, 1, POPULATION, 4)) for b in range(8)}
    assert len(drawn) > 1
    assert draw_sample(SEED, 1, POPULATION, 4) != draw_sample(SEED, 2, POPULATION, 4)


def test_small_populations() -> None:
    assert draw_sample(SEED, 1, [], 3) == []
    assert sorted(draw_sample(SEED, 1, POPULATION[:2], 5)) == POPULATION[:2]


@pytest.mark.parametrize(
    ("seed", "population", "size"),
    [(b"\x01" * 31, POPULATION, 1), (SEED, list(reversed(POPULATION)), 1), (SEED, POPULATION * 2, 1),
     (SEED, POPULATION, -1)],
)  # fmt: skip
def test_preconditions(seed: bytes, population: list[bytes], size: int) -> None:
    with pytest.raises(ValueError):
        draw_sample(seed, 1, population, size)


@given(
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=1, max_value=2**64 - 1),
    st.sets(st.binary(min_size=32, max_size=32), max_size=40),
    st.integers(min_value=0, max_value=50),
)
def test_matches_the_reference(seed: bytes, inspection_id: int, ids: set[bytes], size: int) -> None:
    population = sorted(ids)
    drawn = draw_sample(seed, inspection_id, population, size)
    assert drawn == reference(seed, inspection_id, population, size)
    assert len(drawn) == min(size, len(population)) == len(set(drawn))


def test_random_ids_are_drawn_reproducibly() -> None:
    population = sorted(os.urandom(32) for _ in range(100))
    seed = os.urandom(32)
    assert draw_sample(seed, 9, population, 10) == draw_sample(seed, 9, list(population), 10)


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
    drawn = draw_sample(seed, 3, pool, size)
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
