"""Committing to a payload: leaf hashes -> root, with sizes and counts, in one streaming pass."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

from verifier.errors import PayloadReadError
from verifier.hashing import SALT_SIZE, HashAlgorithm, TreeHasher
from verifier.leaves import Chunking, hash_leaf_batches
from verifier.tree import RootBuilder


def _size(path: str | os.PathLike[str]) -> int:
    try:
        return os.stat(path).st_size
    except OSError as e:
        raise PayloadReadError(os.fspath(path), e.strerror or str(e)) from None


def new_salt() -> bytes:
    """A fresh random per-delivery salt (32 bytes from the OS CSPRNG)."""
    return os.urandom(SALT_SIZE)


class Commitment(NamedTuple):
    """The commitment to one payload: what the manifest carries and the chain records (a named tuple, not a
    dataclass, for the reason :class:`~verifier.leaves.Chunking` gives).

    ``record_count`` is 0 for ``bytes`` payloads, the leaf count for ``jsonl`` and the leaf count minus the
    header row for ``csv`` (see :mod:`verifier.leaves`). ``leaf_hashes`` is ``None`` unless requested.
    """

    alg: HashAlgorithm
    salt: bytes
    chunking: Chunking
    root: bytes
    leaf_count: int
    byte_size: int
    record_count: int
    leaf_hashes: tuple[bytes, ...] | None = None


def commit_payload(
    path: str | os.PathLike[str],
    *,
    alg: HashAlgorithm = HashAlgorithm.SHA256,
    salt: bytes,
    chunking: Chunking,
    keep_leaf_hashes: bool = False,
    on_batch: Callable[[int, list[bytes]], None] | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Commitment:
    """Stream the payload at ``path`` once and return its commitment.

    ``on_batch(first_index, leaf_hashes)`` is called with consecutive batches in leaf order (the verifier
    uses it to locate differing leaves without keeping them all). Memory is O(log n) unless
    ``keep_leaf_hashes`` is set.

    Raises:
        PayloadReadError: if the file cannot be opened or read.
        PayloadFormatError: if the payload does not fit its format (malformed CSV).
    """
    hasher = TreeHasher(alg, salt)
    builder = RootBuilder(hasher)
    size_before = _size(path)
    kept: list[bytes] | None = [] if keep_leaf_hashes else None
    for batch in hash_leaf_batches(path, chunking, hasher, workers=workers, progress=progress):
        if on_batch is not None:
            on_batch(builder.count, batch)
        builder.extend(batch)
        if kept is not None:
            kept.extend(batch)
    byte_size = _size(path)
    if byte_size != size_before:
        raise PayloadReadError(os.fspath(path), "file changed size while it was being read")
    return Commitment(
        alg=hasher.alg,
        salt=bytes(salt),
        chunking=chunking,
        root=builder.root(),
        leaf_count=builder.count,
        byte_size=byte_size,
        record_count=chunking.records_for(builder.count),
        leaf_hashes=tuple(kept) if kept is not None else None,
    )
