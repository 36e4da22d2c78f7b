"""Hash algorithms and the domain-separated hashes of the commitment tree.

Leaf, inner node and empty tree hashes each start with their own prefix byte (RFC 6962 style), so no leaf
can be passed off as an inner node or as the empty tree::

    leaf  = H(0x00 || salt || leaf_bytes)
    node  = H(0x01 || left || right)
    empty = H(0x02 || salt)          # the root of a payload with no leaves

Deliveries use a random 32-byte salt that never goes on chain: without it a short, guessable payload (a yes/no
answer, a small ID list) could be recovered by hashing candidates against the public root. With an empty
salt the leaf and node hashes are exactly RFC 6962's, which lets the known-answer tests reuse RFC 6962
vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any, Protocol

from verifier.errors import UnsupportedAlgorithmError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_PREFIX = b"\x02"
DIGEST_SIZE = 32
SALT_SIZE = 32


class HashAlgorithm(IntEnum):
    """Hash algorithm of a commitment. The values are recorded on chain; 0 is deliberately invalid."""

    SHA256 = 1
    SM3 = 2

    @property
    def label(self) -> str:
        """Lower-case name used in manifests and on the command line (``sha256``, ``sm3``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: object) -> HashAlgorithm:
        """Accept an algorithm by id (1, 2), name (``sha256``, ``SM3``, ``sha-256``) or member.

        Raises:
            UnsupportedAlgorithmError: for anything else, including id 0 and booleans.
        """
        if isinstance(value, HashAlgorithm):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                raise UnsupportedAlgorithmError(value) from None
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "").replace("_", "")
            if key in cls.__members__:
                return cls[key]
        raise UnsupportedAlgorithmError(value)


class HashObject(Protocol):
    def update(self, data: Any, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> HashObject: ...


def _sm3_available_in_hashlib() -> bool:
    try:
        hashlib.new("sm3")
    except ValueError:
        return False
    return True


_HASHLIB_SM3 = _sm3_available_in_hashlib()


class _CryptographySM3:
    """hashlib-shaped wrapper for ``cryptography``'s SM3, used when the linked OpenSSL does not expose SM3."""

    def __init__(self, ctx: Any = None) -> None:
        from cryptography.hazmat.primitives import hashes

        self._ctx = ctx if ctx is not None else hashes.Hash(hashes.SM3())

    def update(self, data: Any, /) -> None:
        self._ctx.update(bytes(data))

    def digest(self) -> bytes:
        return bytes(self._ctx.copy().finalize())

    def copy(self) -> _CryptographySM3:
        return _CryptographySM3(self._ctx.copy())


def _sm3(data: bytes = b"") -> HashObject:
    if _HASHLIB_SM3:
        return hashlib.new("sm3", data)
    h = _CryptographySM3()
    h.update(data)
    return h


def _constructor(alg: HashAlgorithm) -> Callable[[bytes], HashObject]:
    if alg is HashAlgorithm.SHA256:
        return hashlib.sha256
    if alg is HashAlgorithm.SM3:
        return _sm3
    raise UnsupportedAlgorithmError(alg)


def new_hash(alg: HashAlgorithm) -> HashObject:
    """A fresh hash object for ``alg`` (both algorithms give 32-byte digests)."""
    return _constructor(alg)(b"")


def digest(alg: HashAlgorithm, data: bytes) -> bytes:
    """Plain (unprefixed) digest of ``data``; used for the algorithms' own test vectors."""
    h = new_hash(alg)
    h.update(data)
    return h.digest()


class TreeHasher:
    """The leaf, node and empty-tree hashes of one commitment (one algorithm, one salt).

    The leaf prefix and salt are absorbed once; each leaf hash copies that state, which keeps per-record
    cost low for payloads of many small records. Instances are safe to share between threads (they are
    never mutated).
    """

    __slots__ = ("_ctor", "_leaf_base", "alg", "salt")

    def __init__(self, alg: HashAlgorithm, salt: bytes) -> None:
        self.alg = HashAlgorithm.parse(alg)
        self.salt = bytes(salt)
        self._ctor = _constructor(self.alg)
        self._leaf_base = self._ctor(LEAF_PREFIX + self.salt)

    def leaf(self, data: bytes | memoryview) -> bytes:
        """H(0x00 || salt || data)."""
        h = self._leaf_base.copy()
        h.update(data)
        return h.digest()

    def leaves(self, records: Iterable[bytes | memoryview]) -> list[bytes]:
        """``[self.leaf(r) for r in records]`` without a Python call per record (records are often tiny)."""
        copy = self._leaf_base.copy
        out: list[bytes] = []
        append = out.append
        for r in records:
            h = copy()
            h.update(r)
            append(h.digest())
        return out

    def leaf_hasher(self) -> HashObject:
        """An incremental leaf hash (prefix and salt already absorbed) for leaves too large to hold in
        memory."""
        return self._leaf_base.copy()

    def node(self, left: bytes, right: bytes) -> bytes:
        """H(0x01 || left || right)."""
        return self._ctor(NODE_PREFIX + left + right).digest()

    def empty_root(self) -> bytes:
        """H(0x02 || salt): the root of a payload with no leaves, distinct from every one-leaf root."""
        return self._ctor(EMPTY_PREFIX + self.salt).digest()
