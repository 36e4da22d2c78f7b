"""Property tests: the parallel commitment equals a single-threaded reference written from MANIFEST.md.

``commit_payload`` cuts the payload into read blocks, hashes them on a pool and builds the root as the
batches come back; the reference here reads the whole file, cuts it by the manifest's rules in the plainest
way, hashes leaf after leaf and folds the root with RFC 6962's recursive definition. The read block sizes
are shrunk to a few bytes or pages so that small payloads cross many block boundaries (a chunk or record
ending exactly on one, one byte before or after, a record longer than a block) and, for ``bytes``, blocks
that do not start on a page boundary.
"""

from __future__ import annotations

import functools
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import verifier.leaves
from tests.verifier.reference import reference_root
from verifier.commitment import commit_payload
from verifier.errors import PayloadReadError
from verifier.hashing import HashAlgorithm, TreeHasher
from verifier.leaves import Chunking, LeafBatch, PayloadFormat

SALT = bytes(range(32, 64))
WORKERS = st.sampled_from([1, 2, 3])
#: Read blocks from a few bytes (most leaves cross one) to a few pages (mappings that start mid-page).
BLOCKS = st.sampled_from([1, 3, 64, 4096, 4097, 3 * 4096 - 5])


def _commit(payload: bytes, chunking: Chunking, *, block: int, workers: int) -> tuple[bytes, list[bytes]]:
    """Root and leaf hashes of ``payload`` as ``commit_payload`` computes them with ``block``-sized reads."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(verifier.leaves, "_BLOCK", block)
        mp.setattr(verifier.leaves, "_RECORD_BLOCK", block)
        path = Path(tmp) / "payload"
        path.write_bytes(payload)
        seen: list[int] = []
        c = commit_payload(
            path, salt=SALT, chunking=chunking, keep_leaf_hashes=True, workers=workers, progress=seen.append
        )
    assert c.byte_size == len(payload)
    assert sum(seen) == len(payload)  # every byte is reported once, whatever the block boundaries
    assert c.leaf_hashes is not None
    return c.root, list(c.leaf_hashes)


def _check(payload: bytes, chunking: Chunking, leaves: list[bytes], *, block: int, workers: int) -> None:
    h = TreeHasher(HashAlgorithm.SHA256, SALT)
    want = [h.leaf(x) for x in leaves]
    assert _commit(payload, chunking, block=block, workers=workers) == (reference_root(h, want), want)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(0, 3 * 4096 + 2),
    chunk=st.integers(1, 5000),
    block=BLOCKS,
    workers=WORKERS,
    seed=st.integers(0, 2**32),
)
@example(size=4096, chunk=1024, block=4096, workers=2, seed=0)  # chunks and blocks end together
@example(size=4097, chunk=4096, block=4097, workers=2, seed=0)  # one byte past a page
@example(size=3 * 4096 - 6, chunk=7, block=3 * 4096 - 5, workers=3, seed=0)  # one byte short of a block
@example(size=0, chunk=1, block=1, workers=2, seed=0)  # no leaves
def test_bytes_parallel_equals_reference(size: int, chunk: int, block: int, workers: int, seed: int) -> None:
    payload = random.Random(seed).randbytes(size)
    leaves = [payload[i : i + chunk] for i in range(0, size, chunk)]
    _check(payload, Chunking(PayloadFormat.BYTES, chunk), leaves, block=block, workers=workers)


#: Lines of any length from empty to many blocks; CRs are data in JSON Lines.
LINE = st.one_of(
    st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"\r")),
    st.integers(0, 300).map(lambda n: b"x" * n),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(LINE, max_size=40), final_lf=st.booleans(), block=BLOCKS, workers=WORKERS)
@example(lines=[b"x" * 63, b"", b"y" * 64], final_lf=True, block=64, workers=2)  # LF on a block's last byte
@example(lines=[b"z" * 200], final_lf=False, block=3, workers=2)  # one line over many blocks, no LF
def test_jsonl_parallel_equals_reference(
    lines: list[bytes], final_lf: bool, block: int, workers: int
) -> None:
    # A final empty line exists only with its LF ("a LF" is the one line "a"), so it forces the final LF.
    final_lf = final_lf or (bool(lines) and lines[-1] == b"")
    payload = b"\n".join(lines) + (b"\n" if final_lf and lines else b"")
    _check(payload, Chunking(PayloadFormat.JSONL), lines, block=block, workers=workers)


FIELD = st.lists(st.sampled_from([b"a", b"7", b" ", b",", b'"', b"\n", b"\r"]), max_size=6).map(b"".join)


def _csv_row(fields: list[bytes]) -> bytes:
    """RFC 4180 spelling: a field with a delimiter, quote, CR or LF is quoted, its quotes doubled."""
    return b",".join(
        b'"' + f.replace(b'"', b'""') + b'"' if any(c in f for c in (b",", b'"', b"\n", b"\r")) else f
        for f in fields
    )


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(FIELD, min_size=1, max_size=4).map(_csv_row), max_size=30),
    final_lf=st.booleans(),
    block=BLOCKS,
    workers=WORKERS,
)
def test_csv_parallel_equals_reference(rows: list[bytes], final_lf: bool, block: int, workers: int) -> None:
    # The leaves are the rows as written, known by construction; quoted LFs stay inside their row.
    final_lf = final_lf or (bool(rows) and rows[-1] == b"")
    payload = b"\n".join(rows) + (b"\n" if final_lf and rows else b"")
    _check(payload, Chunking(PayloadFormat.CSV), rows, block=block, workers=workers)


def test_bytes_leaves_read_in_pieces_equal_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leaf longer than a worker's read buffer is hashed from several reads into it, ending at the leaf's
    end even where a read could take more."""
    monkeypatch.setattr(verifier.leaves, "_READ_SIZE", 300)
    payload = random.Random(7).randbytes(3 * 4096 + 5)
    leaves = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    _check(payload, Chunking(PayloadFormat.BYTES, 1000), leaves, block=4096, workers=2)


def test_bytes_blocks_shrink_at_the_end_so_every_thread_ends_on_one_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last blocks are cut down to a chunk, so the threads run out of work together (a whole block to
    the end left one core idle while another thread hashed it); the leaves and the root are those of any
    other cut, for a payload that is no multiple of a block or a chunk."""
    monkeypatch.setattr(verifier.leaves, "_BLOCK", 4 * 4096)
    monkeypatch.setattr(verifier.leaves, "_RECORD_BLOCK", 4096)
    chunk, workers = 4096, 4
    payload = random.Random(11).randbytes(40 * 4 * 4096 + 5)
    path = tmp_path / "payload"
    path.write_bytes(payload)
    seen: list[int] = []
    c = commit_payload(
        path, salt=SALT, chunking=Chunking(PayloadFormat.BYTES, chunk), keep_leaf_hashes=True,
        workers=workers, progress=seen.append,
    )  # fmt: skip
    h = TreeHasher(HashAlgorithm.SHA256, SALT)
    want = [h.leaf(payload[i : i + chunk]) for i in range(0, len(payload), chunk)]
    assert (c.root, list(c.leaf_hashes or ())) == (reference_root(h, want), want)
    assert sorted(seen)[-1] == 4 * 4096  # whole blocks until the end nears
    assert sum(n <= chunk for n in seen) >= 2 * workers  # then pieces of one chunk, the 5 bytes among them


def test_bytes_payload_that_shrinks_between_blocks_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifier.leaves, "_BLOCK", 4096)
    path = tmp_path / "payload"
    path.write_bytes(bytes(3 * 4096))

    def cut_after_first_block(_n: int) -> None:
        # One worker hashes the blocks in order, so the next block is read after the cut, never during it.
        os.truncate(path, 4096)

    with pytest.raises(PayloadReadError, match="shrank"):
        commit_payload(
            path,
            salt=SALT,
            chunking=Chunking(PayloadFormat.BYTES, 1024),
            workers=1,
            progress=cut_after_first_block,
        )


def _batches(
    count: int, *, fail_at: int | None = None, running: list[int] | None = None
) -> Iterator[LeafBatch]:
    """``count`` batches whose result is their index, finishing out of order; batch ``fail_at`` raises."""
    lock = threading.Lock()
    rng = random.Random(count)

    def batch(i: int, pause: float) -> list[bytes]:
        if running is not None:
            with lock:
                running.append(i)
        time.sleep(pause)
        if i == fail_at:
            raise PayloadReadError("payload", f"batch {i} failed")
        return [i.to_bytes(4, "big")]

    for i in range(count):
        yield functools.partial(batch, i, rng.random() / 500)


def _threads_alive() -> int:
    return sum(t.name == "dxl-leaves" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize(("workers", "window"), [(2, 4), (3, 48), (2, 1)])
def test_threads_yield_every_batch_in_order_within_the_window(workers: int, window: int) -> None:
    taken: list[int] = []
    out = []
    for result in verifier.leaves._run_on_threads(_batches(200, running=taken), workers, window):
        out.append(int.from_bytes(result[0], "big"))
        # A batch is taken only while fewer than `window` are ahead of those handed over, which are yielded
        # one by one (up to a window of them).
        assert max(taken) < len(out) + 2 * window
    assert out == list(range(200))
    assert _threads_alive() == 0


def test_a_failed_batch_raises_at_its_place_after_the_batches_before_it() -> None:
    out = []
    with pytest.raises(PayloadReadError, match="batch 57 failed"):
        for result in verifier.leaves._run_on_threads(_batches(200, fail_at=57), 2, 16):
            out.append(int.from_bytes(result[0], "big"))
    assert out == list(range(57))
    assert _threads_alive() == 0


def test_batches_that_fail_to_come_raise_at_their_place() -> None:
    def source() -> Iterator[LeafBatch]:
        yield from _batches(30)
        raise PayloadReadError("payload", "no batch 30")

    out = []
    with pytest.raises(PayloadReadError, match="no batch 30"):
        for result in verifier.leaves._run_on_threads(source(), 2, 8):
            out.append(int.from_bytes(result[0], "big"))
    assert out == list(range(30))


def test_a_consumer_that_stops_early_stops_the_threads() -> None:
    taken: list[int] = []
    results = verifier.leaves._run_on_threads(_batches(1000, running=taken), 2, 8)
    assert [next(results) for _ in range(3)]
    results.close()
    assert _threads_alive() == 0
    assert len(taken) < 20  # nothing more was hashed once the consumer left
