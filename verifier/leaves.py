"""Cutting a payload into leaves, and hashing the leaves on a thread pool.

Formats (``Chunking.format``):

``bytes``
    Fixed-size chunks of ``chunk_size`` bytes (default 1 MiB); the last chunk may be shorter. An empty
    file has no leaves. ``record_count`` is 0: a byte stream has no records.
``jsonl``
    One leaf per line. A line is terminated by LF (0x0A); the leaf is the line's bytes *without* the LF. A CR
    before the LF stays part of the leaf (the commitment binds the bytes as delivered). An empty line is
    a leaf of zero bytes. A final line without LF is still a leaf; "no final LF" and "final LF" therefore
    give the same leaves, and the committed ``byte_size`` tells them apart. ``record_count`` = leaf count.
``csv``
    One leaf per CSV row as Python's ``csv`` module (excel dialect, strict quoting) finds the boundaries, so a
    quoted field containing newlines stays one record. The leaf is the row's raw bytes as stored, without the
    row's final LF; as for ``jsonl`` a CR before that LF stays in the leaf (CRLF files have leaves ending in
    CR). Leaf 0 is the header row; ``record_count`` = leaf count - 1 (0 for an empty file). Boundaries are
    found on a Latin-1 view of the bytes, which is exact for UTF-8 and every other ASCII-compatible encoding
    (quote, comma, CR and LF never occur inside a multi-byte character).

Why only the LF is dropped, in both record formats: the payload is then exactly the leaves joined by LF,
plus a final LF when ``byte_size`` says so. Dropping CRLF as well would let "a CRLF b LF" and "a LF b CRLF"
(same size, different bytes) share a root.

Memory stays bounded whatever the payload size: files are read in blocks, at most a few blocks are in flight
on the pool, and a JSON line longer than a block is hashed incrementally instead of being buffered.

Parallelism: byte chunks are hashed on threads (hashlib releases the GIL for large buffers, and each worker
reads its own block into a small buffer of its own and hashes it there). Record hashes are tiny and keep the
GIL, so record payloads of at least ``PROCESS_POOL_MIN_SIZE`` are hashed in worker processes while the main
process reads and builds the tree.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from verifier.errors import PayloadFormatError, PayloadReadError
from verifier.hashing import DIGEST_SIZE, HashAlgorithm, HashObject, TreeHasher

if TYPE_CHECKING:  # imported when a payload needs them, not on every run
    import csv
    from concurrent.futures import Future, ProcessPoolExecutor

DEFAULT_CHUNK_SIZE = 1 << 20
# Work handed to one pool task: big enough to amortise task overhead, small enough to keep memory flat.
_BLOCK = 4 << 20
#: What a worker reads of a block at a time (see _bytes_batches): small enough to stay in a core's cache,
#: large enough that the reads and the GIL taken around each cost little (on 2 cores, reading and hashing
#: 1 GiB of cached file took 0.40 s at 512 KiB, 0.42-0.50 s at 128 KiB, 0.43-0.50 s at 2 MiB).
_READ_SIZE = 512 << 10
# Record formats turn each block into one Python object per record, so they use smaller blocks.
_RECORD_BLOCK = 1 << 20
# Record payloads at least this large are hashed in worker processes; below it, starting them costs more.
PROCESS_POOL_MIN_SIZE = 32 << 20
# A CSV physical line longer than this is refused rather than buffered.
CSV_MAX_LINE = 64 << 20

LeafBatch = Callable[[], list[bytes]]


class PayloadFormat(StrEnum):
    BYTES = "bytes"
    JSONL = "jsonl"
    CSV = "csv"


_EXTENSIONS = {".jsonl": PayloadFormat.JSONL, ".ndjson": PayloadFormat.JSONL, ".csv": PayloadFormat.CSV}


def detect_format(path: str | os.PathLike[str]) -> PayloadFormat:
    """``auto``: .jsonl/.ndjson are JSON Lines, .csv is CSV, anything else is bytes."""
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower(), PayloadFormat.BYTES)


def parse_format(value: str, path: str | os.PathLike[str]) -> PayloadFormat:
    """Resolve a ``--format`` value (``auto`` included) for ``path``.

    Raises:
        ValueError: for an unknown format name.
    """
    if value == "auto":
        return detect_format(path)
    try:
        return PayloadFormat(value)
    except ValueError:
        raise ValueError(f"unknown payload format {value!r}; expected auto, bytes, jsonl or csv") from None


class _ChunkingFields(NamedTuple):
    format: PayloadFormat
    chunk_size: int


class Chunking(_ChunkingFields):
    """How a payload is cut into leaves. ``chunk_size`` only matters for ``bytes`` but is always recorded.

    An immutable typed record. A named tuple, not a dataclass: ``dataclasses`` loads ``inspect`` and ``ast``,
    a sixth of the start-up of ``dxl commit``, which builds this record before it can read a byte.
    """

    __slots__ = ()

    def __new__(cls, format: PayloadFormat, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Chunking:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk size must be a positive integer, got {chunk_size!r}")
        return super().__new__(cls, format, chunk_size)

    def records_for(self, leaf_count: int) -> int:
        if self.format is PayloadFormat.BYTES:
            return 0
        if self.format is PayloadFormat.CSV:
            return max(leaf_count - 1, 0)
        return leaf_count


def _bytes_batches(
    fd: int,
    size: int,
    chunk_size: int,
    hasher: TreeHasher,
    path: str,
    progress: Callable[[int], None] | None,
    threads: int = 1,
) -> Iterator[LeafBatch]:
    # Each block is read by a worker thread into a small buffer of the thread's own, which stays in the core's
    # cache while hashlib (GIL released) hashes it: SHA-256 then runs at the rate `openssl dgst` does. Hashed
    # straight from the page cache through a mapping (no copy), the same bytes streamed from memory at each
    # hash and the mapping's page faults cost more than the copy on a 2-core VM: 0.96 s of CPU for 1 GiB on
    # two threads against 0.76 s read into 128 KiB (verified by `dxl bench commit`; openssl 0.76 s on one).
    # A read also turns a file cut short under the hashing into an error, where a mapping died of SIGBUS.
    block = max(chunk_size, (_BLOCK // chunk_size) * chunk_size)
    local = threading.local()

    def task(offset: int, length: int) -> list[bytes]:
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = memoryview(bytearray(_READ_SIZE))
        out = []
        end = offset + length
        for first in range(offset, end, chunk_size):
            last = min(first + chunk_size, end)
            leaf = hasher.leaf_hasher()
            at = first
            while at < last:
                got = os.preadv(fd, [buffer[: min(_READ_SIZE, last - at)]], at)
                if got == 0:
                    raise PayloadReadError(path, "file shrank while it was being read")
                leaf.update(buffer[:got])
                at += got
            out.append(leaf.digest())
        if progress is not None:
            progress(length)
        return out

    # Near the end of the file the blocks shrink (to an eighth of what is left on 4 threads, down to one
    # chunk): the threads then run out of work together. With whole blocks to the end, the last ones finished
    # up to a block's hashing time apart (2 ms of a 1 GiB commit on 2 cores), one core idle meanwhile. A
    # block is always whole chunks, so the leaves are the same whatever the cut.
    offset = 0
    while offset < size:
        left = size - offset
        length = min(block, max(chunk_size, left // (2 * threads) // chunk_size * chunk_size), left)
        yield functools.partial(task, offset, length)
        offset += length


def _split_lines(block: bytes) -> list[bytes]:
    """Records of a block of whole JSON lines: split on LF, dropping the empty piece after a final LF."""
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    return lines


def _digest_records(alg: int, salt: bytes, records: list[bytes] | bytes) -> bytes:
    """Process-pool task: the concatenated leaf hashes of ``records`` (or of a block of whole JSON lines)."""
    hasher = TreeHasher(HashAlgorithm(alg), salt)
    return b"".join(hasher.leaves(_split_lines(records) if isinstance(records, bytes) else records))


class _RecordTask:
    """A batch of records to hash: a callable for the thread pool, or data for :func:`_digest_records`."""

    __slots__ = ("hasher", "nbytes", "progress", "records")

    def __init__(
        self,
        hasher: TreeHasher,
        records: list[bytes] | bytes,
        nbytes: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.hasher, self.records, self.nbytes, self.progress = hasher, records, nbytes, progress

    def __call__(self) -> list[bytes]:
        records = _split_lines(self.records) if isinstance(self.records, bytes) else self.records
        out = self.hasher.leaves(records)
        if self.progress is not None:
            self.progress(self.nbytes)
        return out


def _hashed(leaf: bytes, nbytes: int, progress: Callable[[int], None] | None) -> LeafBatch:
    """A batch whose single leaf was already hashed incrementally (a record longer than a read block)."""

    def task() -> list[bytes]:
        if progress is not None:
            progress(nbytes)
        return [leaf]

    return task


def _jsonl_batches(
    f: BinaryIO, hasher: TreeHasher, progress: Callable[[int], None] | None
) -> Iterator[LeafBatch]:
    carry = b""
    streaming: HashObject | None = None  # incremental hash of a line longer than one block
    streamed = 0
    while True:
        block = f.read(_RECORD_BLOCK)
        if not block:
            break
        if streaming is not None:
            nl = block.find(b"\n")
            if nl < 0:
                streaming.update(block)
                streamed += len(block)
                continue
            streaming.update(block[:nl])
            done = streaming.digest()
            n = streamed + nl + 1
            yield _hashed(done, n, progress)
            streaming = None
            block = block[nl + 1 :]
        last = block.rfind(b"\n")
        if last < 0:
            carry += block
            if len(carry) > _RECORD_BLOCK:
                streaming = hasher.leaf_hasher()
                streaming.update(carry)
                streamed = len(carry)
                carry = b""
            continue
        data = carry + block[: last + 1]
        carry = block[last + 1 :]
        yield _RecordTask(hasher, data, len(data), progress)
    if streaming is not None:
        done = streaming.digest()
        yield _hashed(done, streamed, progress)
    elif carry:
        yield _RecordTask(hasher, carry, len(carry), progress)


#: Why a CSV payload is refused, in MANIFEST.md's words, by the start of the csv module's message. Its own
#: words for a bare CR advise opening the file in universal-newline mode, which would split the very file the
#: format refuses; the console's reader (``api/console/js/merkle.js``) says the same as these.
CSV_REFUSALS = {
    "unexpected end of data": "a quote is not closed before the end of the file",
    "',' expected after '\"'": "a closing quote is followed by something other than a delimiter or a line "
    "end",
    "new-line character seen in unquoted field": "a CR outside quotes is followed by something other than "
    "a line end (bare-CR line ends are refused: end lines with LF)",
}


def _csv_refusal(error: csv.Error) -> str:
    message = str(error)
    return next((why for start, why in CSV_REFUSALS.items() if message.startswith(start)), message)


def _csv_records(f: BinaryIO, path: str) -> Iterator[tuple[bytes, int]]:
    """Each row's leaf bytes, with the number of payload bytes it took (its LF included, if it had one)."""
    import csv  # here, not on every `dxl commit` of a bytes payload or a JSON Lines one

    consumed: list[bytes] = []

    def lines() -> Iterator[str]:
        while True:
            line = f.readline(CSV_MAX_LINE + 1)
            if not line:
                return
            if len(line) > CSV_MAX_LINE:
                raise PayloadFormatError(path, f"a CSV line is longer than {CSV_MAX_LINE} bytes")
            consumed.append(line)
            yield line.decode("latin-1")

    limit = csv.field_size_limit()
    csv.field_size_limit(CSV_MAX_LINE)
    try:
        reader = csv.reader(lines(), dialect="excel", strict=True)
        while True:
            try:
                next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise PayloadFormatError(path, f"CSV row {reader.line_num}: {_csv_refusal(e)}") from None
            raw = b"".join(consumed)
            consumed.clear()
            yield (raw[:-1] if raw.endswith(b"\n") else raw), len(raw)
    finally:
        csv.field_size_limit(limit)
    if consumed:  # lines the reader took without producing a row: keep them rather than drop bytes silently
        raise PayloadFormatError(path, "trailing bytes do not form a CSV row")


def _csv_batches(
    f: BinaryIO, hasher: TreeHasher, path: str, progress: Callable[[int], None] | None
) -> Iterator[LeafBatch]:
    batch: list[bytes] = []
    nbytes = 0
    for record, size in _csv_records(f, path):
        batch.append(record)
        nbytes += size
        if nbytes >= _RECORD_BLOCK or len(batch) >= 16384:
            yield _RecordTask(hasher, batch, nbytes, progress)
            batch, nbytes = [], 0
    if batch:
        yield _RecordTask(hasher, batch, nbytes, progress)


def _run_on_threads(batches: Iterator[LeafBatch], workers: int, window: int) -> Generator[list[bytes]]:
    """Run ``batches`` on ``workers`` threads and yield their results in order. At most ``window`` batches
    are taken beyond those handed to the consumer (yielded one by one, up to a window of them at a time): what
    batches in flight hold stays bounded, whatever the payload's size.

    A batch that fails (or a ``batches`` that fails to give the next one) raises here at its place in the
    order, after every batch before it was yielded. Plain threads rather than a ``concurrent.futures`` pool:
    that package (and the logging it loads) was a sixth of ``dxl commit``'s start-up, which every delivery
    pays and which the whole-process comparison with ``openssl dgst`` counts. The consumer is woken once a
    quarter of the window is ready in order (or at the end), not for every batch: each wake-up takes the GIL
    from the hashing threads, and one per 4 MiB batch cost a 1 GiB commit a thousand context switches and 3%
    of its time.
    """
    lock = threading.Lock()
    ready = threading.Condition(lock)  # the consumer waits here for batches it can yield in order
    room = threading.Condition(lock)  # workers wait here while ``window`` batches are ahead
    wake_at = max(1, window // 4)
    done: dict[int, list[bytes] | BaseException] = {}
    source = enumerate(batches)  # a generator: advanced under ``lock`` only
    taken = yielded = in_order = 0  # batches taken, yielded, and done without a gap from the first
    closed = False  # no batch is taken after this: the last was, one failed, or the consumer left

    def finish(index: int, result: list[bytes] | BaseException) -> None:
        # Under ``lock``.
        nonlocal in_order, closed
        done[index] = result
        while in_order in done:
            in_order += 1
        if isinstance(result, BaseException):
            closed = True
            room.notify_all()
        if closed or in_order - yielded >= wake_at:
            ready.notify()

    def work() -> None:
        nonlocal taken, closed
        while True:
            with lock:
                while not closed and taken - yielded >= window:
                    room.wait()
                if closed:
                    return
                try:
                    index, batch = next(source)
                except StopIteration:
                    closed = True
                    ready.notify()
                    return
                except BaseException as e:
                    taken += 1
                    finish(taken - 1, e)
                    return
                taken += 1
            try:
                result: list[bytes] | BaseException = batch()
            except BaseException as e:
                result = e
            with lock:
                finish(index, result)

    threads = [threading.Thread(target=work, name="dxl-leaves", daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        while True:
            with lock:
                # Wait for a quarter of the window in order; at the end, for whatever is left.
                while in_order - yielded < wake_at and not (
                    closed and (in_order > yielded or taken == yielded)
                ):
                    ready.wait()
                if in_order == yielded:
                    return
                results = [done.pop(i) for i in range(yielded, in_order)]
                full = taken - yielded >= window
                yielded = in_order
                if full:
                    room.notify_all()
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                yield result
    finally:
        with lock:
            closed = True
            room.notify_all()
        for thread in threads:
            thread.join()


def _process_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver, not fork: the caller may be a threaded server, and forking a process that holds locks in
    # other threads can deadlock the child.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))


def _run_on_processes(
    batches: Iterator[LeafBatch], hasher: TreeHasher, workers: int, progress: Callable[[int], None] | None
) -> Iterator[list[bytes]]:
    """Hash record batches in worker processes: small records keep the GIL, so threads could not overlap.

    The main process keeps reading, cutting records and building the tree while the workers hash.
    """
    alg, salt = int(hasher.alg), hasher.salt
    with _process_pool(workers) as pool:
        pending: deque[tuple[Future[bytes] | None, LeafBatch, int]] = deque()

        def collect() -> list[bytes]:
            fut, batch, nbytes = pending.popleft()
            if fut is None:  # already hashed in this process (an over-long JSON line)
                return batch()
            digests = fut.result()
            if progress is not None:
                progress(nbytes)
            return [digests[i : i + DIGEST_SIZE] for i in range(0, len(digests), DIGEST_SIZE)]

        try:
            for batch in batches:
                if isinstance(batch, _RecordTask):
                    submitted = pool.submit(_digest_records, alg, salt, batch.records)
                    pending.append((submitted, batch, batch.nbytes))
                else:
                    pending.append((None, batch, 0))
                while len(pending) > 2 * workers:
                    yield collect()
            while pending:
                yield collect()
        finally:
            for fut, _, _ in pending:
                if fut is not None:
                    fut.cancel()


@contextlib.contextmanager
def _open(path: str) -> Iterator[BinaryIO]:
    # Refuse directories, FIFOs and devices before opening: opening a FIFO would block.
    if os.path.exists(path) and not os.path.isfile(path):
        raise PayloadReadError(path, "not a regular file")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the context manager below
    except OSError as e:
        raise PayloadReadError(path, e.strerror or str(e)) from None
    try:
        yield f
    finally:
        f.close()


def hash_leaf_batches(
    path: str | os.PathLike[str],
    chunking: Chunking,
    hasher: TreeHasher,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[list[bytes]]:
    """Yield the payload's leaf hashes in order, in batches, hashing on a pool of ``workers`` threads.

    ``progress`` (if given) is called from worker threads with the number of payload bytes just hashed.

    Raises:
        PayloadReadError: if the file cannot be opened or read.
        PayloadFormatError: if a CSV payload's quoting is malformed or a line is absurdly long.
    """
    spath = os.fspath(path)
    cores = os.cpu_count() or 1
    with _open(spath) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            if chunking.format is PayloadFormat.BYTES:
                # Twice as many threads as cores: a thread that waits for the GIL between a read and a hash
                # leaves its core idle unless another is ready (1 GiB on 2 cores: 0.42 s on 4 threads, 0.44 s
                # on 2). A byte batch in flight holds only its leaf hashes (its bytes pass through its
                # thread's buffer), so many may be ahead, and no thread waits for the consumer to take one.
                threads = workers or 2 * cores
                window = 16 * threads
                batches = _bytes_batches(
                    f.fileno(), size, chunking.chunk_size, hasher, spath, progress, threads
                )
            else:
                if chunking.format is PayloadFormat.JSONL:
                    batches = _jsonl_batches(f, hasher, progress)
                else:
                    batches = _csv_batches(f, hasher, spath, progress)
                # A record batch in flight holds its records: few ahead.
                threads = workers or cores
                window = 2 * threads
                if size >= PROCESS_POOL_MIN_SIZE and threads > 1:
                    yield from _run_on_processes(batches, hasher, threads, progress)
                    return
            if threads == 1 or size <= _RECORD_BLOCK:
                # One thread, or a payload of one batch (no batch of either kind is under 1 MiB): starting
                # threads to wait on would only add their start-up.
                yield from (batch() for batch in batches)
            else:
                yield from _run_on_threads(batches, threads, window)
        except PayloadReadError:
            raise
        except OSError as e:
            raise PayloadReadError(spath, e.strerror or str(e)) from None


def hash_leaves(
    path: str | os.PathLike[str],
    chunking: Chunking,
    hasher: TreeHasher,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the payload's leaf hashes one by one (see :func:`hash_leaf_batches`).

    Raises:
        PayloadReadError: if the file cannot be opened or read.
        PayloadFormatError: if a CSV payload's quoting is malformed or a line is absurdly long.
    """
    for batch in hash_leaf_batches(path, chunking, hasher, workers=workers, progress=progress):
        yield from batch


def leaf_count_bound(payload: bytes, chunking: Chunking) -> int:
    """How many leaves ``payload`` cuts into under ``chunking`` at most, counted without cutting it: exact for
    ``bytes`` and ``jsonl``; for ``csv`` its lines, since a row takes one line or more (a quoted field may
    hold line breaks). A service that hashes what callers send can refuse a payload by this count before
    spending a hash on it: the work of a check grows with the leaves, not the bytes (a 6 MB payload in chunks
    of one byte is 6 million leaves)."""
    if chunking.format is PayloadFormat.BYTES:
        return -(-len(payload) // chunking.chunk_size)
    if not payload:
        return 0
    return payload.count(b"\n") + (0 if payload.endswith(b"\n") else 1)
