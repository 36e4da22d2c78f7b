"""The canonical form of a catalog entry's metadata document, and the hash the ledger holds for it.

A resource's ``metadataHash`` on the chain is ``SHA-256(canonical(document))`` where ``canonical`` is the
document as JSON with keys sorted, no whitespace between tokens, non-ASCII text written as UTF-8 (not escaped)
and absent optional fields left out. Documents hold only objects, arrays and strings (no numbers), and their
keys are ASCII, so this is also the RFC 8785 (JCS) form: anyone can recompute the hash with any JCS library or
``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``. Text is hashed exactly as
given — no Unicode normalisation — so a title reads back byte for byte as it was registered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_document(document: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, compact separators, UTF-8."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def document_hash(document: Mapping[str, Any]) -> bytes:
    """The 32-byte hash a catalog entry's ``metadataHash`` must equal for ``document`` to be its own."""
    return hashlib.sha256(canonical_document(document)).digest()
