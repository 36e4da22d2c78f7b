"""The catalog's metadata documents: stored by the service, addressed by the hash the chain holds.

A document is stored under ``metadata_hash`` before the transaction that records the hash is sent, so a
registered resource is readable the moment it is mined; a document whose transaction never lands is never
shown (nothing on the chain points at it). Reads re-hash the stored text: ``verified`` is true only when it
still hashes to the chain's value. Search, export and import work on the list the routes read.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import models as m
from api.db import CatalogDocumentRow
from api.errors import ApiError
from api.limits import JsonBodyError, parse_json
from verifier.catalog import canonical_document, document_hash

#: Columns of the CSV export, in order; ``metadata`` is the document as canonical JSON (what import reads).
CSV_COLUMNS = ("id", "owner", "owner_code", "share_type", "sensitivity", "metadata_hash", "schema_hash",
               "verified", "title", "description", "metadata")  # fmt: skip


class DocumentStore:
    """Metadata documents by hash, in the API database."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions

    def put(self, document: Mapping[str, Any]) -> str:
        """Stores ``document`` (canonical text) under its hash; returns the ``0x`` hash. Idempotent."""
        text = canonical_document(document).decode("utf-8")
        digest = "0x" + document_hash(document).hex()
        with self._sessions()() as session:
            row = session.get(CatalogDocumentRow, digest)
            if row is None:
                session.add(CatalogDocumentRow(metadata_hash=digest, document=text))
            else:
                row.document = text  # heals an edited row with the text that hashes right
            session.commit()
        return digest

    def attach(self, resources: Iterable[m.ResourcePublic]) -> list[m.ResourcePublic]:
        """The resources with their stored documents and whether each still hashes to the chain's value."""
        found = list(resources)
        hashes = {r.metadata_hash.lower() for r in found}
        with self._sessions()() as session:
            rows = {
                row.metadata_hash: row.document
                for row in session.scalars(
                    select(CatalogDocumentRow).where(CatalogDocumentRow.metadata_hash.in_(hashes))
                )
            }
        out = []
        for r in found:
            text = rows.get(r.metadata_hash.lower())
            document = _parse(text)
            verified = (
                document is not None and "0x" + document_hash(document).hex() == r.metadata_hash.lower()
            )
            out.append(r.model_copy(update={"metadata": document, "verified": verified}))
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
            document = _parse(text)
            verified = document is not None and "0x" + document_hash(document).hex() == digest
            out[digest] = m.StoredText(hash=digest, document=document, verified=verified)
        return out


def _parse(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def matches(resource: m.ResourcePublic, text: str) -> bool:
    """Whether ``text`` (case-folded) occurs in the entry's title, description, keywords or fields."""
    doc = resource.metadata or {}
    parts: list[str] = [str(doc.get("dct:title", "")), str(doc.get("dct:description", ""))]
    parts += [str(k) for k in doc.get("dcat:keyword", []) or []]
    for column in doc.get("csvw:column", []) or []:
        if isinstance(column, dict):
            parts += [str(column.get("csvw:name", "")), str(column.get("dct:description", ""))]
    needle = text.casefold()
    return any(needle in part.casefold() for part in parts)


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"): a title such as
#: ``=HYPERLINK("https://…?"&B2, "…")`` would run in the auditor's spreadsheet, with the other cells at hand.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: Any) -> str:
    """A department's free text as a CSV cell that no spreadsheet evaluates: behind an apostrophe (which
    spreadsheets show as text and do not display) when it would start a formula. Only the title and the
    description are written so; import reads ``id`` and ``metadata``, the document exactly as hashed."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def to_csv(resources: Iterable[m.ResourcePublic]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in resources:
        doc = r.metadata
        writer.writerow([
            r.id, r.owner, r.owner_code, r.share_type.value, r.sensitivity, r.metadata_hash, r.schema_hash,
            "true" if r.verified else "false",
            _text_cell((doc or {}).get("dct:title", "")), _text_cell((doc or {}).get("dct:description", "")),
            "" if doc is None else canonical_document(doc).decode("utf-8"),
        ])  # fmt: skip
    return out.getvalue()


def _cell(row: list[str], at: int) -> str:
    """A row's cell, empty when the row is shorter than the header."""
    return row[at] if at < len(row) else ""


def entries_of(body: m.CatalogImport) -> list[m.CatalogEntry]:
    """The entries of an import, from JSON or CSV; rows without a document are skipped (nothing to store).

    Raises:
        ApiError: VALIDATION_ERROR when the CSV lacks the ``id``/``metadata`` columns, a row is malformed, or
            it holds more rows than :data:`api.models.CATALOG_IMPORT_MAX_ENTRIES`.
    """
    if body.resources is not None:
        return [entry for entry in body.resources if entry.metadata is not None]
    # Plain rows, not dictionaries: a dictionary per row holds a key for every column of the header, so a
    # header of 300,000 names over 300 short rows took 2.3 GB and 16 s (the rows are read up to one past the
    # bound for the same reason: a million one-cell rows fit in the text).
    reader = csv.reader(io.StringIO(body.csv or ""))
    rows: list[tuple[int, str, str]] = []
    try:
        header = next(reader, [])
        if not {"id", "metadata"} <= set(header):
            raise ApiError("VALIDATION_ERROR", "the CSV needs the columns id and metadata", field="csv")
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
        try:
            entries.append(m.CatalogEntry(id=int(ident), metadata=metadata))
        except (ValueError, TypeError) as exc:
            raise ApiError("VALIDATION_ERROR", f"CSV line {line}: {exc}", field="csv") from None
    return entries
