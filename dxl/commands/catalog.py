"""``dxl catalog``: register a resource with its metadata document (DCAT terms), read, search, export and
import the catalog, through the API over HTTP.

The commands act as the principal of ``--token`` (``DXL_TOKEN``) on the API at ``--api`` (``DXL_API_URL``).
Exit codes: 0 done; 2 the API refused (its error code is printed, with ``--json`` as
``{"error": CODE, "message": ...}``), could not be reached, or a file could not be read.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer

from dxl.commands.common import JsonOption, emit, exits_on_error
from dxl.commands.practice import ApiCallError, ApiOption, TokenOption, api_bytes, call_api, every_page

catalog_app = typer.Typer(
    help="The catalog: register a resource with its metadata document, read and search entries, export and "
    "import the whole catalog (JSON or CSV).",
    no_args_is_help=True,
)

# The API's share types (api.models.ShareTypeName), named here so that `dxl --help` loads no API module.
SHARE_TYPES = "unconditional, conditional or not_shared"

DocumentOption = Annotated[
    Path,
    typer.Option(
        "--document",
        help="JSON file (UTF-8) of the metadata document in DCAT terms: dct:title, dct:description, "
        "csvw:column, dcat:mediaType, dct:accrualPeriodicity, dcat:contactPoint, "
        "dcatap:applicableLegislation, and dct:accessRights for a conditional resource (api/README.md, "
        "the catalog). The service stores it; the ledger holds its hash.",
    ),
]
ShareTypeOption = Annotated[str, typer.Option("--share-type", help=f"How it is shared: {SHARE_TYPES}.")]
SchemaHashOption = Annotated[
    str, typer.Option("--schema-hash", help="SHA-256 of the resource's data schema (0x + 64 hex digits).")
]
SensitivityOption = Annotated[int, typer.Option(help="Sensitivity level, 0 (least) to 255.")]
# The list and the export are read from the audit index, which follows the chain a moment behind a write.
MinBlockOption = Annotated[
    int | None,
    typer.Option(
        "--min-block",
        help="Read once the audit index holds this block (a write's, as `dxl catalog add` says it): the "
        "index follows the chain a moment behind.",
    ),
]


def _read_json(path: Path, what: str) -> Any:
    """The JSON of a UTF-8 file (a byte order mark allowed), read as the service reads a body.

    Raises:
        ApiCallError: USAGE_ERROR when it cannot be read or is not JSON.
    """
    from verifier import jsontext

    try:
        return jsontext.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise ApiCallError(f"cannot read the {what} {path}: {exc}", code="USAGE_ERROR") from None


def entry_line(entry: dict[str, Any]) -> str:
    """A catalog entry as people read it: its title, owner by code, share type and whether the stored document
    still hashes to the chain's metadata hash."""
    document = entry.get("metadata")
    if document is None:
        title, state = f"(no document stored for {entry['metadata_hash']})", "no document"
    else:
        title = str(document.get("dct:title", "?"))
        state = (
            "document verified"
            if entry.get("verified")
            else "document UNVERIFIED: the stored text no longer hashes to the chain's"
        )
    return (f"resource {entry['id']}: {title} — {entry['owner_code']}, {entry['share_type']}, "
            f"sensitivity {entry['sensitivity']}; {state}")  # fmt: skip


def _document_text(entry: dict[str, Any]) -> str:
    document = entry.get("metadata")
    return "" if document is None else "\n" + json.dumps(document, ensure_ascii=False, indent=2)


def _body(document: Path, share_type: str, schema_hash: str, sensitivity: int) -> dict[str, Any]:
    return {"metadata": _read_json(document, "document"), "share_type": share_type,
            "schema_hash": schema_hash, "sensitivity": sensitivity}  # fmt: skip


@catalog_app.command("add")
def add_command(
    document: DocumentOption,
    share_type: ShareTypeOption,
    schema_hash: SchemaHashOption,
    sensitivity: SensitivityOption = 0,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Register a resource of your department with its metadata document."""
    with exits_on_error(as_json):
        written = call_api(
            api, token, "POST", "/resources", _body(document, share_type, schema_hash, sensitivity)
        )
    record = written["record"]
    tx = written["transaction"]
    emit(written, as_json, f"catalogued {entry_line(record)} (tx {tx['hash']}, block {tx['block_number']})")


@catalog_app.command("update")
def update_command(
    resource_id: Annotated[int, typer.Argument(help="Your department's resource.")],
    document: DocumentOption,
    share_type: ShareTypeOption,
    schema_hash: SchemaHashOption,
    sensitivity: Annotated[
        int, typer.Option(help="Sensitivity level, 0 (least) to 255: an update states the one it leaves.")
    ],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Replace what the ledger holds of a resource of your department, its document with it."""
    body = _body(document, share_type, schema_hash, sensitivity)
    with exits_on_error(as_json):
        written = call_api(api, token, "PUT", f"/resources/{resource_id}", body)
    record = written["record"]
    emit(written, as_json, f"updated {entry_line(record)} (tx {written['transaction']['hash']})")


@catalog_app.command("show")
def show_command(
    resource_id: Annotated[int, typer.Argument(help="The resource.")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """One catalog entry with its metadata document, and whether the document still hashes to the chain's."""
    with exits_on_error(as_json):
        found = call_api(api, token, "GET", f"/resources/{resource_id}")
    emit(found, as_json, entry_line(found) + _document_text(found))


@catalog_app.command("list")
def list_command(
    text: Annotated[
        str | None,
        typer.Option("--text", help="Words in the title, description, keywords or fields (any language)."),
    ] = None,
    owner: Annotated[str | None, typer.Option(help="The owning department's code (or id).")] = None,
    share_type: Annotated[str | None, typer.Option("--share-type", help=f"Only {SHARE_TYPES}.")] = None,
    min_block: MinBlockOption = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Search the catalog, newest first: every entry matching all the filters given (every page)."""
    given = (("q", text), ("owner", owner), ("share_type", share_type), ("min_block", min_block))
    query = {k: v for k, v in given if v is not None}
    path = "/resources" + ("?" + urllib.parse.urlencode(query) if query else "")
    with exits_on_error(as_json):
        found = every_page(api, token, path)
    emit(found, as_json, "\n".join(entry_line(e) for e in found) if found else "no catalog entry matches")


@catalog_app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="File to write the catalog to.")],
    as_format: Annotated[
        str,
        typer.Option("--format", help="json (the list GET /resources answers) or csv (UTF-8 with a BOM)."),
    ] = "json",
    min_block: MinBlockOption = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Write the whole catalog, every document with it, as the API exports it (byte for byte)."""
    with exits_on_error(as_json):
        if as_format not in ("json", "csv"):
            raise ApiCallError(f"--format is json or csv, not {as_format!r}", code="USAGE_ERROR")
        wait = "" if min_block is None else f"&min_block={min_block}"
        raw = api_bytes(api, token, f"/resources/export?format={as_format}{wait}")
        try:
            out.write_bytes(raw)
        except OSError as exc:
            raise ApiCallError(f"cannot write {out}: {exc}", code="USAGE_ERROR") from None
    result = {"path": str(out), "format": as_format, "bytes": len(raw)}
    text = f"exported the catalog to {out} ({as_format}, {len(raw)} bytes)"
    if as_format == "json":  # the entries the file holds (a CSV row may run over lines: not counted)
        result["entries"] = len(json.loads(raw))
        text += f", {result['entries']} entries"
    emit(result, as_json, text)


@catalog_app.command("import")
def import_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A catalog written by `dxl catalog export` (or GET /resources/export): JSON or CSV."
        ),
    ],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Store the documents of an exported catalog, each only if it hashes to its resource's metadata hash
    on this chain (an import restores documents, never changes what an entry says)."""
    with exits_on_error(as_json):
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise ApiCallError(f"cannot read the catalog {source}: {exc}", code="USAGE_ERROR") from None
        # An export in JSON is a list; the CSV's first cell is its `id` column's name.
        body: dict[str, Any]
        if text.lstrip("\ufeff \t\r\n").startswith("["):
            body = {"resources": _read_json(source, "catalog")}
        else:
            body = {"csv": text}
        imported = call_api(api, token, "POST", "/resources/import", body)
    emit(imported, as_json, f"imported {imported['imported']} documents from {source}")


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
