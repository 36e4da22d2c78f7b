"""The sample derivation of ``verifier.sampling``: the same inputs draw the same deliveries, every time and
by an independent reimplementation of the documented steps; the sample is a subset without repeats."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.sampling import draw_sample


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
