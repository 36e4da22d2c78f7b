"""The commitment tree: RFC 6962 / RFC 9162 Merkle tree shape over domain-separated, salted leaf hashes.

Shape: for n > 1 leaves the tree splits at k, the largest power of two smaller than n; the left subtree holds
leaves [0, k) and the right [k, n). Odd nodes are never duplicated, so no two leaf lists share a root.
The root of no leaves is :meth:`TreeHasher.empty_root`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from verifier.errors import InvalidProofError, RootMismatchError
from verifier.hashing import DIGEST_SIZE, HashAlgorithm, TreeHasher
from verifier.text import counted


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class RootBuilder:
    """Computes the root of a stream of leaf hashes in O(log n) memory.

    Keeps the roots of the perfect subtrees seen so far (sizes strictly decreasing, like the binary
    digits of the leaf count); folding them right to left gives the RFC 6962 root, since the RFC shape is
    exactly those perfect subtrees joined from the right.
    """

    def __init__(self, hasher: TreeHasher) -> None:
        self._hasher = hasher
        self._stack: list[bytes] = []
        self.count = 0

    def add(self, leaf_hash: bytes) -> None:
        self.extend((leaf_hash,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        # Adding leaf number c closes one perfect subtree per trailing 1 bit of c.
        node_hash = self._hasher.node
        stack = self._stack
        count = self.count
        for node in leaf_hashes:
            c = count
            while c & 1:
                node = node_hash(stack.pop(), node)
                c >>= 1
            stack.append(node)
            count += 1
        self.count = count

    def root(self) -> bytes:
        if not self._stack:
            return self._hasher.empty_root()
        root = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            root = self._hasher.node(left, root)
        return root


def root_of(hasher: TreeHasher, leaf_hashes: Iterable[bytes]) -> bytes:
    """Root of the tree over ``leaf_hashes`` (already leaf-hashed with the same hasher's salt)."""
    builder = RootBuilder(hasher)
    builder.extend(leaf_hashes)
    return builder.root()


def _subtree_root(hasher: TreeHasher, leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return hasher.node(_subtree_root(hasher, leaves, lo, lo + k), _subtree_root(hasher, leaves, lo + k, hi))


def inclusion_proof(alg: HashAlgorithm, leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 6962 section 2.1.1), from the leaf's sibling up to the root.

    Raises:
        InvalidProofError: if ``index`` is not in ``[0, len(leaf_hashes))``.
    """
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise InvalidProofError(f"index {index} is outside a tree of {counted(n, 'leaf', 'leaves')}")
    hasher = TreeHasher(alg, b"")
    path: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_subtree_root(hasher, leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree_root(hasher, leaf_hashes, lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def root_from_inclusion(
    alg: HashAlgorithm, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an audit path (RFC 9162 section 2.1.3.2), without comparing it to anything.

    Raises:
        InvalidProofError: if the index is outside the tree, a hash is not 32 bytes, or the path is too
            long or too short for ``size``.
    """
    if isinstance(index, bool) or isinstance(size, bool) or not 0 <= index < size:
        raise InvalidProofError(f"index {index} is outside a tree of {counted(size, 'leaf', 'leaves')}")
    if len(leaf_hash) != DIGEST_SIZE:
        raise InvalidProofError(f"leaf hash is {counted(len(leaf_hash), 'byte')}, expected {DIGEST_SIZE}")
    hasher = TreeHasher(alg, b"")
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for i, p in enumerate(proof):
        if len(p) != DIGEST_SIZE:
            raise InvalidProofError(f"proof hash {i} is {counted(len(p), 'byte')}, expected {DIGEST_SIZE}")
        if sn == 0:
            raise InvalidProofError(
                f"path has {counted(len(proof), 'hash', 'hashes')}, more than a tree of "
                f"{counted(size, 'leaf', 'leaves')} needs"
            )
        if fn & 1 or fn == sn:
            r = hasher.node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hasher.node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError(
            f"path has {counted(len(proof), 'hash', 'hashes')}, fewer than a tree of "
            f"{counted(size, 'leaf', 'leaves')} needs"
        )
    return r


def verify_inclusion(
    alg: HashAlgorithm, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root``.

    Preconditions: ``leaf_hash`` is the salted leaf hash ``H(0x00 || salt || leaf_bytes)`` computed by
    the caller from the leaf bytes it holds (never taken from the prover); ``proof`` is ordered from the
    leaf's sibling up.

    This checks consistency only. Callers MUST check ``root`` against a trusted anchor (the on-chain
    receipt of the delivery); a root taken from the same party that supplied the proof proves nothing.

    Raises:
        InvalidProofError: if the proof cannot apply (index out of range, wrong path length, wrong hash
            sizes).
        RootMismatchError: if the proof is well formed but leads to a different root.
    """
    calculated = root_from_inclusion(alg, index, size, leaf_hash, proof)
    if calculated != bytes(root):
        raise RootMismatchError(bytes(root), calculated)
