"""The Merkle root written straight from RFC 6962 (and MANIFEST.md), independently of verifier.tree: the
reference the property tests compare the product's tree and its parallel commitment against."""

from __future__ import annotations

from verifier.hashing import TreeHasher


def reference_root(h: TreeHasher, leaves: list[bytes]) -> bytes:
    """RFC 6962's MTH, recursively: split at the largest power of two smaller than n."""
    if not leaves:
        return h.empty_root()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return h.node(reference_root(h, leaves[:k]), reference_root(h, leaves[k:]))
