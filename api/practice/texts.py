"""The texts a practice record's hash names (a demand's document, an answer's note, an evaluation's comment),
stored under the SHA-256 of their canonical JSON in the table that holds the catalog's documents."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session, sessionmaker

from api import models as m
from api.catalog import DocumentStore

ZERO32 = b"\x00" * 32


def as_hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class TextStore:
    """Texts by the hash of their canonical JSON, in the table that holds the catalog's documents (both are
    content-addressed the same way, and stored and checked by the same code)."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions
        self._documents = DocumentStore(sessions)

    def get(self, digest: bytes) -> m.StoredText | None:
        """The stored text for ``digest`` and whether it still hashes to it; None for a zero hash."""
        return self.get_many([digest])(digest)

    def get_many(self, digests: Iterable[bytes]) -> Callable[[bytes], m.StoredText | None]:
        """:meth:`get` of each of ``digests``, read in one query (a page of a list at once)."""
        found = self._documents.stored(as_hex(d) for d in digests if d != ZERO32)

        def get(digest: bytes) -> m.StoredText | None:
            if digest == ZERO32:
                return None
            key = as_hex(digest)
            return found.get(key) or m.StoredText(hash=key, document=None, verified=False)

        return get
