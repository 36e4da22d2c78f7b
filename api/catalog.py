"""The catalog's metadata documents: stored by the service, addressed by the hash the chain holds.

A document is stored under ``metadata_hash`` before the transaction that records the hash is sent, so a
registered resource is readable the moment it is mined; a document whose transaction never lands is never
shown (nothing on the chain points at it). Reads re-hash the stored text: ``verified`` is true only when it
still hashes to the chain's value. Search, export and import work on the list the routes read.

Searches run in SQL (:class:`CatalogIndex`): each document's search text is written with it, and the entries'
owners and share types are followed from the audit index into a table of their own; a page's entries are then
read from the index again and only their documents re-hashed, so a search costs what its page costs, not what
the catalog holds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from api import models as m
from api.db import CatalogDocumentRow, CatalogEntryRow, CatalogSyncRow, insert_missing, one_writer_at_a_time
from api.errors import ApiError
from api.limits import JsonBodyError, parse_json
from node.audit import queries as audit_queries
from node.types import Resource, ShareType
from verifier.catalog import canonical_document, document_hash

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: What the CSV export starts with, and import skips: U+FEFF, written in UTF-8 as EF BB BF.
CSV_BYTE_ORDER_MARK = "\ufeff"

#: Columns of the CSV export, in order; ``metadata`` is the document as canonical JSON (what import reads).
CSV_COLUMNS = ("id", "owner", "owner_code", "share_type", "sensitivity", "metadata_hash", "schema_hash",
               "verified", "title", "description", "metadata")  # fmt: skip


class DocumentStore:
    """Metadata documents by hash, in the API database."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions

    def put(self, document: Mapping[str, Any]) -> str:
        """Stores ``document`` (canonical text) under its hash, with its search text; returns the ``0x``
        hash. Idempotent."""
        return self.put_many([document])[0]

    def put_many(self, documents: Iterable[Mapping[str, Any]]) -> list[str]:
        """Stores ``documents`` as :meth:`put` does, in one database transaction (an import of 2,000 entries
        is one commit, not 2,000); returns their ``0x`` hashes in order."""
        rows: dict[str, dict[str, str]] = {}
        digests = []
        for document in documents:
            digest = "0x" + document_hash(document).hex()
            digests.append(digest)
            rows[digest] = {"metadata_hash": digest, "document": canonical_document(document).decode("utf-8"),
                            "search_text": search_text(document)}  # fmt: skip
        # Written in one order, the hashes', whatever order the caller lists them in: two imports of the same
        # documents in other orders each waited on a row the other had written first (PostgreSQL broke the
        # deadlock by failing one); in one order, the later one waits for the earlier to commit.
        ordered = [rows[digest] for digest in sorted(rows)]
        with self._sessions()() as session:
            # Two services may store the same document at once: an insert that leaves a row already there,
            # then an update that heals an edited row with the text that hashes right.
            insert_missing(session, CatalogDocumentRow, ordered)
            for row in ordered:
                session.execute(
                    update(CatalogDocumentRow).where(CatalogDocumentRow.metadata_hash == row["metadata_hash"])
                    .values(document=row["document"], search_text=row["search_text"])
                )  # fmt: skip
            session.commit()
        return digests

    def attach(self, resources: Iterable[m.ResourcePublic]) -> list[m.ResourcePublic]:
        """The resources, each given (in place) its stored document and whether that still hashes to the
        chain's value."""
        found = list(resources)
        hashes = {r.metadata_hash.lower() for r in found}
        with self._sessions()() as session:
            rows = {
                digest: text
                for digest, text in session.execute(
                    select(CatalogDocumentRow.metadata_hash, CatalogDocumentRow.document).where(
                        CatalogDocumentRow.metadata_hash.in_(hashes)
                    )
                )
            }
        out = []
        for r in found:
            r.metadata, r.verified = checked(rows.get(r.metadata_hash.lower()), r.metadata_hash)
            out.append(r)
        return out

    def stored(self, hashes: Iterable[str]) -> dict[str, m.StoredText]:
        """The documents stored under ``hashes`` (``0x`` hex, any case), by lower-case hash, each with whether
        it still hashes to its key; a hash with nothing stored is absent. One query for all."""
        wanted = {h.lower() for h in hashes}
        if not wanted:
            return {}
        with self._sessions()() as session:
            rows = session.execute(
                select(CatalogDocumentRow.metadata_hash, CatalogDocumentRow.document).where(
                    CatalogDocumentRow.metadata_hash.in_(wanted)
                )
            ).all()
        out = {}
        for digest, text in rows:
            document, verified = checked(text, digest)
            out[digest] = m.StoredText(hash=digest, document=document, verified=verified)
        return out


def parse_document(text: str | None) -> dict[str, Any] | None:
    """The JSON object a stored text holds; None for none, or for text that is not one.

    Read as a client's JSON is (:func:`api.limits.parse_json`), for a row edited by hand is text from outside:
    the standard library alone read a number past a double's range as infinity and ``NaN`` as NaN, which no
    answer can carry (500 on every read of the entry), and recursed once per level of nesting, past the C
    stack for text nested some 100,000 deep (the service died)."""
    if text is None:
        return None
    try:
        value = parse_json(text)
    except JsonBodyError:
        return None
    return value if isinstance(value, dict) else None


def checked(text: str | None, digest: str) -> tuple[dict[str, Any] | None, bool]:
    """The document a stored text holds, and whether it hashes to ``digest`` (``0x`` hex, any case): the
    hash of its canonical form, as the chain holds it. The text itself is hashed first: the service stores
    the canonical form, so the canonical form is computed only for a text stored otherwise."""
    document = parse_document(text)
    if document is None or text is None:
        return None, False
    want = digest.lower()
    if "0x" + hashlib.sha256(text.encode("utf-8")).hexdigest() == want:
        return document, True
    return document, "0x" + document_hash(document).hex() == want


#: Between the parts of a search text: no search matches across two of them (a text searched for that holds
#: it matches nothing).
_PART_SEPARATOR = "\x1f"


def _searchable(text: str) -> str:
    """``text`` as a search text holds it, and as a search looks for it: case-folded and in Unicode's
    compatibility composed form (NFKC), the part separator and NUL (which PostgreSQL's text refuses: a
    document titled with one failed to be stored, a search for one answered 500) each a space.

    Normalised, so that a text is found however its characters are encoded: an accented letter as one code
    point or as a letter and a combining accent, a Latin letter or digit full-width (common in Chinese text)
    or not. Only the search text is: a document is stored and hashed as given."""
    plain = text.replace(_PART_SEPARATOR, " ").replace("\x00", " ")
    # Folded, composed, and folded again: a compatibility character may compose to an upper-case letter.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", plain).casefold()).casefold()


def search_text(document: Mapping[str, Any] | None) -> str:
    """What a search looks in: the document's title, description, keywords, and its fields' names and
    descriptions, case-folded, one part after the other (:data:`_PART_SEPARATOR`)."""
    doc = document or {}
    parts: list[str] = [str(doc.get("dct:title", "")), str(doc.get("dct:description", ""))]
    keywords = doc.get("dcat:keyword")
    parts += [str(k) for k in keywords] if isinstance(keywords, list) else []
    columns = doc.get("csvw:column")
    for column in columns if isinstance(columns, list) else []:
        if isinstance(column, dict):
            parts += [str(column.get("csvw:name", "")), str(column.get("dct:description", ""))]
    return _PART_SEPARATOR.join(_searchable(part) for part in parts)


@dataclass(frozen=True)
class CatalogQuery:
    """Which entries a catalog list shows: an owner's (department id), of a share type, holding a text."""

    owner: int | None = None
    share_type: ShareType | None = None
    text: str | None = None


#: The lock of the search table's writers across services sharing a database (:func:`one_writer_at_a_time`).
_SYNC_LOCK = 0x6478_6C63_6174  # "dxlcat"


def _entry_state(r: Resource) -> dict[str, Any]:
    """What the search table keeps of an entry besides its id and registration."""
    return {"owner": r.owner, "share_type": int(r.share_type), "metadata_hash": "0x" + r.metadata_hash.hex()}


@dataclass(frozen=True)
class EntryPage:
    """One page of a catalog list: the entries as the audit index holds them, newest registration first,
    and the cursor of the next page (None on the last)."""

    entries: list[Resource]
    next_cursor: str | None


class CatalogIndex:
    """The catalog's entries searched and paged in SQL, in the API database (:class:`CatalogEntryRow`, beside
    the documents and their search text), followed from the audit index.

    The table only selects a page: the page's entries are read from the audit index again (one query) and
    a row whose owner or share type no longer agrees with the index is left out, so the table can make a
    search miss an entry but never show one as the index does not hold it. Documents are checked by the
    caller against the hash the index holds, as before."""

    #: Registrations and updates applied per read of the index while following it.
    SYNC_BATCH = 5000

    def __init__(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()

    def sync(self, index: Engine) -> None:
        """Applies the registrations and updates the index holds past the last one applied. When the index
        no longer holds that one in the same block (it was rewound to a fork point: a reorganisation, a node
        restarted from an older state, a new index), the table is built again from the start."""
        with self._lock, self._sessions()() as session:
            one_writer_at_a_time(session, _SYNC_LOCK)
            mark = session.get(CatalogSyncRow, 1)
            if mark is not None and audit_queries.block_hash_at(index, mark.seq) != mark.block_hash:
                session.execute(delete(CatalogEntryRow))
                session.execute(delete(CatalogSyncRow))
                mark = None
            after = -1 if mark is None else mark.seq
            while changes := audit_queries.resource_changes(index, after=after, limit=self.SYNC_BATCH):
                # Another service following the same index into the same table may write the same rows at the
                # same moment (its own mark read before this one's batch was committed): every write is one
                # that succeeds whether the row is there or not, and leaves what the index says.
                latest = {c.resource.id: c.resource for c in changes}
                registered = [
                    {
                        "resource_id": c.resource.id,
                        "registered_seq": c.seq,
                        **_entry_state(latest[c.resource.id]),
                    }
                    for c in changes
                    if c.registered
                ]
                insert_missing(session, CatalogEntryRow, registered)
                # An update is always indexed after its registration: in this batch or a row written before.
                entries = cast(Table, CatalogEntryRow.__table__)
                session.execute(
                    update(entries)
                    .where(entries.c.resource_id == bindparam("ident"))
                    .values(owner=bindparam("new_owner"), share_type=bindparam("new_share_type"),
                            metadata_hash=bindparam("new_metadata_hash")),
                    [{"ident": i, **{f"new_{k}": v for k, v in _entry_state(r).items()}}
                     for i, r in latest.items()],
                )  # fmt: skip
                last = changes[-1]
                insert_missing(
                    session, CatalogSyncRow, [{"id": 1, "seq": last.seq, "block_hash": last.block_hash}]
                )
                session.execute(
                    update(CatalogSyncRow).where(CatalogSyncRow.id == 1)
                    .values(seq=last.seq, block_hash=last.block_hash)
                )  # fmt: skip
                session.commit()
                after = last.seq
                one_writer_at_a_time(session, _SYNC_LOCK)

    def page(self, index: Engine, query: CatalogQuery, *, cursor: str | None, limit: int) -> EntryPage:
        """One page of the entries ``query`` keeps, newest registration first, after ``cursor``.

        Raises:
            InvalidQueryError: a malformed cursor.
        """
        before = audit_queries.decode_cursor(cursor) if cursor else None
        if query.owner is not None and not 0 <= query.owner <= audit_queries.MAX_INDEXED_ID:
            return EntryPage([], None)
        e, d = CatalogEntryRow, CatalogDocumentRow
        statement = select(e.resource_id, e.registered_seq)
        if before is not None:
            statement = statement.where(e.registered_seq < before)
        if query.owner is not None:
            statement = statement.where(e.owner == query.owner)
        if query.share_type is not None:
            statement = statement.where(e.share_type == int(query.share_type))
        if query.text:
            if _PART_SEPARATOR in query.text:
                return EntryPage([], None)
            needle = _searchable(query.text)
            # Both sides are case-folded already: LIKE compares them as they are (PostgreSQL's LIKE is case
            # sensitive, SQLite's folds ASCII only, which changes nothing here).
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.join(d, d.metadata_hash == e.metadata_hash).where(
                d.search_text.like(f"%{escaped}%", escape="\\")
            )
        statement = statement.order_by(e.registered_seq.desc()).limit(limit + 1)
        with self._sessions()() as session:
            rows = session.execute(statement).all()
        more = len(rows) > limit
        rows = rows[:limit]
        held = audit_queries.resources_by_id(index, [int(ident) for ident, _ in rows])
        entries = [
            r for ident, _ in rows
            if (r := held.get(int(ident))) is not None
            and (query.owner is None or r.owner == query.owner)
            and (query.share_type is None or r.share_type is query.share_type)
        ]  # fmt: skip
        return EntryPage(entries, audit_queries.encode_cursor(int(rows[-1][1])) if more else None)


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"): a title such as
#: ``=HYPERLINK("https://…?"&B2, "…")`` would run in the auditor's spreadsheet, with the other cells at hand.
#: A NUL too (ASVS 5.0, V1.2.10): a reader that drops it reads the formula behind it; a description may
#: hold one, and an imported document any text its hash covers.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\x00")


def _text_cell(value: Any) -> str:
    """A department's free text as a CSV cell that no spreadsheet evaluates: behind an apostrophe (which
    spreadsheets show as text and do not display) when it would start a formula. Only the title and the
    description are written so; import reads ``id`` and ``metadata``, the document exactly as hashed."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_row(r: m.ResourcePublic) -> list[Any]:
    doc = r.metadata
    return [
        r.id, r.owner, r.owner_code, r.share_type.value, r.sensitivity, r.metadata_hash, r.schema_hash,
        "true" if r.verified else "false",
        _text_cell((doc or {}).get("dct:title", "")), _text_cell((doc or {}).get("dct:description", "")),
        "" if doc is None else canonical_document(doc).decode("utf-8"),
    ]  # fmt: skip


def csv_chunks(pages: Iterable[list[m.ResourcePublic]]) -> Iterator[str]:
    """The CSV export, written as ``pages`` are read: the header, then one piece per page. It starts with a
    UTF-8 byte order mark (the ``utf-8-sig`` convention): Excel reads a CSV without one in the locale's
    code page (GBK on Chinese Windows) and shows the Chinese text garbled; import reads either."""
    out = io.StringIO()
    out.write(CSV_BYTE_ORDER_MARK)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for page in pages:
        writer.writerows(_csv_row(r) for r in page)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if header_only := out.getvalue():  # a catalog of no pages
        yield header_only


#: One catalog entry as the list and the export answer it (FastAPI serializes a route's ``response_model``
#: with pydantic's own JSON, so the same adapter gives the same bytes).
_RESOURCE_JSON: TypeAdapter[m.ResourcePublic] = TypeAdapter(m.ResourcePublic)


def json_chunks(pages: Iterable[list[m.ResourcePublic]]) -> Iterator[bytes]:
    """The JSON export, a list of the entries, written as ``pages`` are read: the bytes FastAPI writes for
    the whole list at once, one piece per page."""
    first = True
    yield b"["
    for page in pages:
        if page:
            piece = b",".join(_RESOURCE_JSON.dump_json(r, by_alias=True) for r in page)
            yield piece if first else b"," + piece
            first = False
    yield b"]"


def _cell(row: list[str], at: int) -> str:
    """A row's cell, empty when the row is shorter than the header."""
    return row[at] if at < len(row) else ""


@dataclass(frozen=True)
class ImportEntry:
    """An entry of an import with where the body holds it, which a refusal of it names: the entries without a
    document are skipped, so its place among those read is not its place in the body."""

    entry: m.CatalogEntry
    #: Its place in the body: ``resources[3]``, or ``CSV line 7`` (the line its row ends on).
    where: str
    #: Its document's place in the body, and the ``field`` a refusal of it names.
    document: str
    field: str


def problem(exc: ValidationError, within: str) -> str:
    """The first problem pydantic found, at its place in ``within``: ``resources[3].metadata.dct:title: Input
    should be a valid string`` (not pydantic's report, several lines and a link)."""
    first = exc.errors()[0]
    where = ".".join(part for part in [within, *map(str, first["loc"])] if part)
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def entries_of(body: m.CatalogImport) -> list[ImportEntry]:
    """The entries of an import, from JSON or CSV; rows without a document are skipped (nothing to store).

    Raises:
        ApiError: VALIDATION_ERROR when the CSV lacks the ``id``/``metadata`` columns, a row is malformed, or
            it holds more rows than :data:`api.models.CATALOG_IMPORT_MAX_ENTRIES`.
    """
    if body.resources is not None:
        return [
            ImportEntry(entry, f"resources[{i}]", f"resources[{i}].metadata", f"resources.{i}.metadata")
            for i, entry in enumerate(body.resources)
            if entry.metadata is not None
        ]
    # Plain rows, not dictionaries: a dictionary per row holds a key for every column of the header, so a
    # header of 300,000 names over 300 short rows took 2.3 GB and 16 s (the rows are read up to one past the
    # bound for the same reason: a million one-cell rows fit in the text). A byte order mark before the
    # header (a spreadsheet's UTF-8 CSV) is no part of its first column's name.
    reader = csv.reader(io.StringIO((body.csv or "").removeprefix(CSV_BYTE_ORDER_MARK)))
    rows: list[tuple[int, str, str]] = []
    try:
        header = next(reader, [])
        if not {"id", "metadata"} <= set(header):
            raise ApiError("VALIDATION_ERROR", "the CSV needs the columns id and metadata", field="csv")
        # A column named twice is a field named twice: which of the two is read would be a choice of this
        # reader (the first), not of the document.
        twice = sorted(name for name in ("id", "metadata") if header.count(name) > 1)
        if twice:
            raise ApiError(
                "VALIDATION_ERROR", f"the CSV names the column {twice[0]} more than once", field="csv"
            )
        id_at, metadata_at = header.index("id"), header.index("metadata")
        for row in reader:
            if not row:
                continue  # a blank line is no row (as csv.DictReader reads it)
            if len(rows) == m.CATALOG_IMPORT_MAX_ENTRIES:
                raise ApiError(
                    "VALIDATION_ERROR",
                    f"the CSV holds more than {m.CATALOG_IMPORT_MAX_ENTRIES:,} rows, the most one import "
                    "takes: import it in parts",
                    field="csv", limit=m.CATALOG_IMPORT_MAX_ENTRIES,
                )  # fmt: skip
            rows.append((reader.line_num, _cell(row, id_at), _cell(row, metadata_at)))
    except csv.Error as exc:  # a field past the csv module's bound (128 KiB)
        raise ApiError("VALIDATION_ERROR", f"CSV line {reader.line_num}: {exc}", field="csv") from None
    entries = []
    for line, ident, document in rows:
        if not document:
            continue
        try:
            metadata = parse_json(document)
        except JsonBodyError as exc:
            raise ApiError("VALIDATION_ERROR", f"CSV line {line}: metadata {exc}", field="csv") from None
        # Decimal digits as the export writes them: int() also takes " 7", "+7", "7_0" or Arabic-Indic digits.
        if not (ident.isascii() and ident.isdigit()):
            raise ApiError(
                "VALIDATION_ERROR", f"CSV line {line}: id {ident!r} is not a resource id in decimal digits",
                field="csv",
            )  # fmt: skip
        try:
            entry = m.CatalogEntry(id=int(ident), metadata=metadata)
        except ValidationError as exc:
            raise ApiError("VALIDATION_ERROR", f"CSV line {line}: {problem(exc, '')}", field="csv") from None
        entries.append(ImportEntry(entry, f"CSV line {line}", f"CSV line {line}: metadata", "csv"))
    return entries
