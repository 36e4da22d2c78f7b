"""``dxl request``: request access to a catalogued resource with readable sharing terms, and read a request's
terms back, through the API over HTTP.

The commands act as the principal of ``--token`` (``DXL_TOKEN``) on the API at ``--api`` (``DXL_API_URL``).
Exit codes: 0 done; 2 the API refused (its error code is printed, with ``--json`` as
``{"error": CODE, "message": ...}``), could not be reached, or the terms file could not be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dxl.commands.audit import parse_time
from dxl.commands.common import JsonOption, exits_on_error
from dxl.commands.practice import ApiCallError, ApiOption, TokenOption, call_api, department, department_codes
from verifier.text import iso_time

request_app = typer.Typer(
    help="Access requests: ask a department for a resource under terms both sides sign.", no_args_is_help=True
)


def _terms_line(found: dict[str, Any]) -> str:
    terms = found.get("terms")
    if terms is None:
        return f"terms: none stored for {found['terms_hash']} (the request gave only hashes)"
    state = (
        "verified" if terms.get("verified") else "UNVERIFIED: the stored text no longer hashes to the chain's"
    )
    return f"terms ({state}):\n" + json.dumps(terms.get("document"), ensure_ascii=False, indent=2)


def _out(data: dict[str, Any], as_json: bool, head: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else head + "\n" + _terms_line(data))


def _read_terms(path: Path) -> Any:
    """The JSON of a terms file (UTF-8).

    Raises:
        ApiCallError: USAGE_ERROR when it cannot be read or is not JSON.
    """
    from verifier import jsontext

    try:
        return jsontext.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ApiCallError(f"cannot read the terms file {path}: {exc}", code="USAGE_ERROR") from None


@request_app.command("create")
def create_command(
    resource_id: Annotated[int, typer.Argument(help="The catalogued resource requested.")],
    purpose: Annotated[str, typer.Option(help="Why the data is needed (kept on chain as text).")],
    valid_from: Annotated[str, typer.Option("--valid-from", help="Start of validity (ISO date/time, UTC).")],
    valid_until: Annotated[str, typer.Option("--valid-until", help="End of validity (ISO date/time, UTC).")],
    terms: Annotated[
        Path | None,
        typer.Option(
            help="JSON file of the sharing terms (data list, legal basis, format, timeliness, rights, "
            "duties; see the API's TermsDocument). The service stores it and derives the terms and scope "
            "hashes."
        ),
    ] = None,
    scope_hash: Annotated[
        str | None, typer.Option("--scope-hash", help="Instead of --terms: the scope hash (0x...).")
    ] = None,
    terms_hash: Annotated[
        str | None, typer.Option("--terms-hash", help="Instead of --terms: the terms hash (0x...).")
    ] = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Request access to a resource as your department."""
    with exits_on_error(as_json):
        body: dict[str, Any] = {
            "resource_id": resource_id,
            "purpose": purpose,
            "valid_from": parse_time(valid_from, "valid-from"),
            "valid_until": parse_time(valid_until, "valid-until"),
        }
        if terms is not None:
            body["terms"] = _read_terms(terms)
        for key, value in (("scope_hash", scope_hash), ("terms_hash", terms_hash)):
            if value is not None:
                body[key] = value
        written = call_api(api, token, "POST", "/requests", body)
    record = written["record"]
    _out(written if as_json else record, as_json,
         f"{_request_line(record, api, token, as_json)} (tx {written['transaction']['hash']})")  # fmt: skip


@request_app.command("show")
def show_command(
    request_id: Annotated[int, typer.Argument(help="The request.")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """One request with its sharing terms, and whether the stored terms still hash to the chain's."""
    with exits_on_error(as_json):
        found = call_api(api, token, "GET", f"/requests/{request_id}")
    _out(found, as_json, f"{_request_line(found, api, token, as_json)}; {_deadline(found)}")


def _request_line(found: dict[str, Any], api: str | None, token: str, as_json: bool) -> str:
    """The request, the resource asked for, who asks whom (as a demand line says it) and its status."""
    codes = department_codes(api, token, as_json)
    asks, asked = department(codes, found["consumer"]), department(codes, found["provider"])
    return f"request {found['id']}: resource {found['resource_id']} from {asks} to {asked}; {found['status']}"


def _deadline(found: dict[str, Any]) -> str:
    """When the provider's decision is due, and whether it came, or is still missing, after that."""
    due = iso_time(int(found["answer_by"]))
    if found.get("overdue"):
        return f"OVERDUE: decision due {due}" + (" and still missing" if found["status"] == "pending" else "")
    return f"decision due {due}"


def register(app: typer.Typer) -> None:
    app.add_typer(request_app, name="request")
