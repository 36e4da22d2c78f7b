"""``dxl demand`` and ``dxl evaluation``: demand lists and mutual evaluation, through the API over HTTP.

The commands act as the principal of ``--token`` (``DXL_TOKEN``) on the API at ``--api`` (``DXL_API_URL``,
default the local ``dxl run``). Exit codes: 0 done; 2 the API refused (its error code is printed, with
``--json`` as ``{"error": CODE, "message": ...}``) or could not be reached.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer

from dxl.commands.audit import parse_time
from dxl.commands.common import JsonOption, cli_error, emit, exits_on_error
from node.errors import DxlError
from node.tls import tls_context
from node.types import MIN_PRESENT_WITHIN_S, PRESENTATION_NOTICE_S, RejectionReason
from verifier.text import iso_time

demand_app = typer.Typer(
    help="Demand lists: publish what data your department needs, answer demands made of it, reject an answer "
    "that does not meet your demand, withdraw a demand you no longer need.",
    no_args_is_help=True,
)
evaluation_app = typer.Typer(
    help="Mutual evaluation: score the other party of an agreement after a delivery.", no_args_is_help=True
)

ApiOption = Annotated[
    str | None, typer.Option("--api", envvar="DXL_API_URL", help="API base URL (default: the local dxl run).")
]
TokenOption = Annotated[str, typer.Option("--token", envvar="DXL_TOKEN", help="API bearer token.")]


class ApiCallError(DxlError):
    """Thrown when the API answers with an error (its code is kept) or cannot be reached."""

    code = "API_ERROR"


def call_api(api: str | None, token: str, method: str, path: str, body: Any = None) -> Any:
    """The JSON answer of ``method path`` on the API.

    Raises:
        ApiCallError: an error answer (with the API's code) or no answer.
    """
    return _answer(api, token, method, path, body)[0]


def every_page(api: str | None, token: str, path: str) -> list[Any]:
    """Every record of the list at ``path``, following its ``Link: <…>; rel="next"`` header page after page.

    Raises:
        ApiCallError: an error answer (with the API's code) or no answer.
    """
    found: list[Any] = []
    following: str | None = path
    while following is not None:
        data, response = _answer(api, token, "GET", following)
        found += data
        following = response.links.get("next", {}).get("url")
    return found


def _answer(api: str | None, token: str, method: str, path: str, body: Any = None) -> tuple[Any, _Answer]:
    """The JSON answer of ``method path`` on the API, and the response it came in.

    Raises:
        ApiCallError: an error answer (with the API's code) or no answer.
    """
    response = _send(api, token, method, path, body)
    try:
        data = response.json()
    except ValueError:
        raise ApiCallError(f"the API answered {response.status_code} without JSON") from None
    if response.status_code >= 400:
        raise _refused(response, data)
    return data, response


def api_bytes(api: str | None, token: str, path: str) -> bytes:
    """The body of ``GET path`` on the API as sent, for answers that are files rather than JSON (the
    catalog's CSV export, with its byte order mark).

    Raises:
        ApiCallError: an error answer (with the API's code) or no answer.
    """
    response = _send(api, token, "GET", path)
    if response.status_code >= 400:
        try:
            data = response.json()
        except ValueError:
            data = None
        raise _refused(response, data)
    return bytes(response.content)


def _refused(response: _Answer, data: Any) -> ApiCallError:
    error = data.get("error", {}) if isinstance(data, dict) else {}
    return ApiCallError(str(error.get("message", response.text)), code=str(error.get("code", "API_ERROR")))


#: A ``Link`` header's targets (RFC 8288): ``<target>`` and the parameters up to the next one.
_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r';\s*rel\s*=\s*"?([^";,]*)', re.IGNORECASE)


class _Answer(NamedTuple):
    """One answer of the API: its status, body and headers."""

    status_code: int
    content: bytes
    headers: Message

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body's JSON (``ValueError`` when it is none)."""
        return json.loads(self.content)

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header's targets by relation (RFC 8288): ``{"next": {"url": "/…"}}``."""
        found: dict[str, dict[str, str]] = {}
        # Each target between angle brackets (a comma in its query is its own), then its parameters.
        for target, params in _LINK.findall(", ".join(self.headers.get_all("Link") or [])):
            rel = _REL.search(params)
            for each in rel.group(1).split() if rel else []:
                found.setdefault(each, {"url": target})
        return found


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the answer (the API sends none): the token goes to the address given and no other."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _send(api: str | None, token: str, method: str, path: str, body: Any = None) -> _Answer:
    """The response of ``method path`` on the API at ``api`` (or the one a ``.env`` file names).

    The standard library's HTTP client (proxies taken from the environment, as httpx did): a command sends a
    few requests, and httpx's import alone was some 100 ms of the 280 ms an API command took.

    Raises:
        ApiCallError: API_UNREACHABLE when no answer came.
    """
    if api is None or not token:  # a .env file may name them (the options read the environment only)
        from api.settings import load_api_settings

        settings = load_api_settings()
        api = api or settings.api_url or settings.listen_url
        if not token and settings.token is not None:
            token = settings.token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    url = api.rstrip("/") + path
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if url.lower().startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=tls_context()))
    try:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with urllib.request.build_opener(*handlers).open(request, timeout=120) as answer:
            return _Answer(answer.status, answer.read(), answer.headers)
    except urllib.error.HTTPError as refused:  # an answer all the same: 3xx, 4xx, 5xx
        with refused:
            return _Answer(refused.code, refused.read(), refused.headers)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ApiCallError(f"the API at {api} did not answer: {reason}", code="API_UNREACHABLE") from None


def department_codes(api: str | None, token: str, as_json: bool) -> dict[int, str]:
    """Each admitted department's code by its id (``GET /departments``), for the lines people read: they know
    a department by its code, and every department option of ``dxl`` takes one. None for ``--json``, which
    keeps the API's ids; none either when the list cannot be read: the lines then name departments by id
    (:func:`department`), still true, rather than fail a command whose own answer came."""
    if as_json:
        return {}
    try:
        return {int(d["id"]): str(d["code"]) for d in every_page(api, token, "/departments")}
    except ApiCallError:
        return {}


def department(codes: Mapping[int, str], department_id: int) -> str:
    """A department as a line names it: its code (``HRSS``), or ``department 4`` when its code is unknown."""
    return codes.get(department_id) or f"department {department_id}"


def _demand_line(d: dict[str, Any], codes: Mapping[int, str]) -> str:
    doc = d.get("document") or {}
    to = department(codes, d["addressee"]) if d.get("addressee") else "anyone"
    state = d["status"]
    answer = d.get("answer") or {}
    if answer.get("resource_id"):
        state += f" (resource {answer['resource_id']})"
    elif answer.get("decline_reason"):
        state += f" ({answer['decline_reason']})"
    rejected = d.get("rejections") or []
    if rejected:
        state += f"; {len(rejected)} answer{'s' if len(rejected) > 1 else ''} rejected"
    # The due date always: people plan by it, the addressee most of all before it passes.
    state += f"; {'OVERDUE: ' if d.get('overdue') else ''}due {iso_time(d['due_by'])}"
    verified = "verified" if d.get("verified") else "UNVERIFIED"
    return (f"demand {d['id']}: {doc.get('title', '?')} — from {department(codes, d['publisher'])} to {to}; "
            f"{state}; text {verified}")  # fmt: skip


@demand_app.command("publish")
def publish_command(
    title: Annotated[str, typer.Option(help="What data is needed.")],
    purpose: Annotated[str, typer.Option(help="Why it is needed.")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="The law or regulation it serves.")],
    due: Annotated[
        str, typer.Option(help="Answer wanted by (ISO date/time, UTC): a week from now at the earliest.")
    ],
    to: Annotated[str | None, typer.Option("--to", help="Code of the department asked (if known).")] = None,
    description: Annotated[str | None, typer.Option(help="Longer description.")] = None,
    field: Annotated[
        list[str] | None, typer.Option("--field", help="A data item wanted (repeatable).")
    ] = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Publish a demand of your department: its text is stored by the service, its hash on the ledger."""
    with exits_on_error(as_json):
        document: dict[str, Any] = {"title": title, "purpose": purpose, "legal_basis": legal_basis}
        if description:
            document["description"] = description
        if field:
            document["fields"] = field
        body: dict[str, Any] = {"document": document, "due_by": parse_time(due, "due")}
        if to:
            body["addressee"] = to.upper()
        written = call_api(api, token, "POST", "/demands", body)
    line = _demand_line(written["record"], department_codes(api, token, as_json))
    emit(written, as_json, f"published {line} (tx {written['transaction']['hash']})")


@demand_app.command("answer")
def answer_command(
    demand_id: Annotated[int, typer.Argument(help="The demand.")],
    new_resource: Annotated[
        int | None, typer.Option("--new-resource", help="A resource catalogued after the demand meets it.")
    ] = None,
    existing_resource: Annotated[
        int | None, typer.Option("--existing-resource", help="A resource already catalogued meets it.")
    ] = None,
    decline: Annotated[
        str | None,
        typer.Option(
            help="Decline with a reason: not_held, held_elsewhere, legally_restricted, "
            "insufficient_legal_basis, purpose_not_justified. Only a demand addressed to your department: "
            "one addressed to no department is answered with a resource or left to one that holds the data."
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note kept with the answer.")] = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Answer a demand made of your department: one of --new-resource, --existing-resource, --decline."""
    chosen = [x for x in (new_resource, existing_resource, decline) if x is not None]
    with exits_on_error(as_json):
        if len(chosen) != 1:
            raise ApiCallError(
                "give exactly one of --new-resource, --existing-resource, --decline", code="USAGE_ERROR"
            )
        body: dict[str, Any]
        if new_resource is not None:
            body = {"answer": "new_resource", "resource_id": new_resource}
        elif existing_resource is not None:
            body = {"answer": "existing_resource", "resource_id": existing_resource}
        else:
            body = {"answer": "declined", "decline_reason": decline}
        if note:
            body["note"] = note
        written = call_api(api, token, "POST", f"/demands/{demand_id}/answer", body)
    # What was recorded, as publish says it: the demand, the transaction, and the note as the service kept it.
    record = written["record"]
    line = _demand_line(record, department_codes(api, token, as_json))
    text = f"answered {line} (tx {written['transaction']['hash']})" + _answer_note(record)
    emit(written, as_json, text)


@demand_app.command("reject")
def reject_command(
    demand_id: Annotated[int, typer.Argument(help="Your demand.")],
    reason: Annotated[
        str,
        typer.Option(
            help="Why the resource does not meet it: "
            + ", ".join(r.name.lower() for r in RejectionReason)
            + "."
        ),
    ],
    note: Annotated[str | None, typer.Option(help="A note kept with the rejection.")] = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Reject the resource your demand was answered with, as not meeting it: the demand waits for another
    answer (one addressed to no department, from any department but the one rejected)."""
    body: dict[str, Any] = {"reason": reason} | ({"note": note} if note else {})
    with exits_on_error(as_json):
        written = call_api(api, token, "POST", f"/demands/{demand_id}/reject", body)
    record = written["record"]
    line = _demand_line(record, department_codes(api, token, as_json))
    kept = _kept_text("rejection note", (record.get("rejections") or [{}])[-1].get("note"), "note")
    emit(written, as_json, f"rejected the answer of {line} (tx {written['transaction']['hash']})" + kept)


@demand_app.command("withdraw")
def withdraw_command(
    demand_id: Annotated[int, typer.Argument(help="Your demand, not answered.")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Withdraw a demand of your department that no one answered: it takes no answer any more, and counts
    against no department, unmet or overdue."""
    with exits_on_error(as_json):
        written = call_api(api, token, "POST", f"/demands/{demand_id}/withdraw")
    line = _demand_line(written["record"], department_codes(api, token, as_json))
    emit(written, as_json, f"withdrew {line} (tx {written['transaction']['hash']})")


@demand_app.command("list")
def list_command(
    open_only: Annotated[
        bool, typer.Option("--open", help="Only demands waiting for an answer (not answered, not withdrawn).")
    ] = False,
    publisher: Annotated[
        str | None, typer.Option(help="Only this department's demands (its code, HRSS, or id).")
    ] = None,
    addressee: Annotated[
        str | None, typer.Option(help="Only demands addressed to this department (its code or id).")
    ] = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """The demand lists, newest first."""
    # A department by code or id, as the API's filter takes it (and as `demand publish --to` takes a code).
    query = {"open": "true" if open_only else "false"}
    query |= {"publisher": publisher.upper()} if publisher else {}
    query |= {"addressee": addressee.upper()} if addressee else {}
    with exits_on_error(as_json):
        found = every_page(api, token, "/demands?" + urllib.parse.urlencode(query))
    codes = department_codes(api, token, as_json)
    emit(found, as_json, "\n".join(_demand_line(d, codes) for d in found) or "no demands")


@demand_app.command("show")
def show_command(
    demand_id: Annotated[int, typer.Argument(help="The demand.")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """One demand with its full text."""
    with exits_on_error(as_json):
        found = call_api(api, token, "GET", f"/demands/{demand_id}")
    codes = department_codes(api, token, as_json)
    text = _demand_line(found, codes) + "\n"
    text += json.dumps(found.get("document"), ensure_ascii=False, indent=2)
    for r in found.get("rejections") or []:
        text += (f"\nrejected: resource {r['resource_id']} of {department(codes, r['answered_by'])}, "
                 f"{r['reason']}, at {iso_time(r['rejected_at'])}")  # fmt: skip
        text += _kept_text("rejection note", r.get("note"), "note")
    if found.get("withdrawn_at"):
        text += f"\nwithdrawn by its publisher at {iso_time(found['withdrawn_at'])}"
    emit(found, as_json, text + _answer_note(found))


def _answer_note(demand: dict[str, Any]) -> str:
    """The line of the answer's note (after a newline), or nothing if the answer has none."""
    return _kept_text("answer note", (demand.get("answer") or {}).get("note"), "note")


def _kept_text(label: str, kept: dict[str, Any] | None, key: str) -> str:
    """The line (after a newline) of a text the service keeps and the chain holds the hash of (an answer's
    note, an evaluation's comment: ``document[key]``), shown verified or not as a demand's own; nothing when
    there is none."""
    if not kept:
        return ""
    said = (kept.get("document") or {}).get(key)
    if said is None:
        return f"\n{label}: not held by this service (hash {kept['hash']})"
    return f"\n{label}: {said} (text {'verified' if kept.get('verified') else 'UNVERIFIED'})"


@evaluation_app.command("add")
def evaluate_command(
    agreement_id: Annotated[int, typer.Argument(help="The agreement.")],
    delivery: Annotated[str, typer.Option(help="A delivery id under the agreement (0x...).")],
    timeliness: Annotated[int | None, typer.Option(help="Consumer scoring the provider: 1-5.")] = None,
    completeness: Annotated[int | None, typer.Option(help="Consumer scoring the provider: 1-5.")] = None,
    accuracy: Annotated[int | None, typer.Option(help="Consumer scoring the provider: 1-5.")] = None,
    purpose_compliance: Annotated[
        int | None, typer.Option("--purpose-compliance", help="Provider scoring the consumer: 1-5.")
    ] = None,
    comment: Annotated[str | None, typer.Option(help="A comment kept off chain (its hash on chain).")] = None,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Score the other party of an agreement, once per evaluation period."""
    body: dict[str, Any] = {"delivery_id": delivery}
    for key, value in (("timeliness", timeliness), ("completeness", completeness), ("accuracy", accuracy),
                       ("purpose_compliance", purpose_compliance), ("comment", comment)):  # fmt: skip
        if value is not None:
            body[key] = value
    with exits_on_error(as_json):
        written = call_api(api, token, "POST", f"/agreements/{agreement_id}/evaluations", body)
    record = written["record"]
    scores = ", ".join(f"{k}={v}" for k, v in record["scores"].items())
    scored = department(department_codes(api, token, as_json), record["scored"])
    said = (f"agreement {agreement_id}: {record['scored_side']} {scored} scored {scores} "
            f"(period {record['period']}, tx {written['transaction']['hash']})")  # fmt: skip
    # The comment as the service kept it, as dxl demand answer says its note.
    emit(written, as_json, said + _kept_text("comment", record.get("comment"), "comment"))


@evaluation_app.command("list")
def evaluations_command(
    agreement_id: Annotated[int, typer.Argument(help="The agreement.")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """The scores given under an agreement."""
    with exits_on_error(as_json):
        found = every_page(api, token, f"/agreements/{agreement_id}/evaluations")
    # Each comment under its scores, verified or not, as dxl evaluation add says it.
    codes = department_codes(api, token, as_json)
    lines = [
        f"period {e['period']}: {e['scored_side']} {department(codes, e['scored'])} scored by "
        f"{department(codes, e['scorer'])}: "
        + ", ".join(f"{k}={v}" for k, v in e["scores"].items())
        + _kept_text("  comment", e.get("comment"), "comment")
        for e in found
    ]
    emit(found, as_json, "\n".join(lines) or "no evaluations")


@evaluation_app.command("period")
def evaluation_period_command(
    api: ApiOption = None, token: TokenOption = "", as_json: JsonOption = False
) -> None:
    """The evaluation period of the deployed contract: its length and the current period, by the chain's
    clock (a side of an agreement scored in it is scored again from the next)."""
    with exits_on_error(as_json):
        p = call_api(api, token, "GET", "/evaluation-period")
    text = f"period {p['current']}: {iso_time(p['starts_at'])} to {iso_time(p['ends_at'])} "
    text += f"({p['length_seconds']} s a period; chain time {iso_time(p['chain_time'])})"
    emit(p, as_json, text)


inspection_app = typer.Typer(
    help="Sampling inspections: open, draw, present, record outcomes; recompute a sample from the chain.",
    no_args_is_help=True,
)


def _inspection_text(i: dict[str, Any], codes: Mapping[int, str]) -> str:
    # Times as people read them; --json keeps the API's Unix seconds.
    lines = [
        f"inspection {i['id']}: {i['status']}; deliveries in [{iso_time(i['period_from'])}, "
        f"{iso_time(i['period_to'])}), sample of {i['sample_size']} seeded by block {i['seed_block']}; "
        f"present by {iso_time(i['present_by'])}"
    ]
    if i.get("seed"):
        lines.append(f"  seed {i['seed']}, population {i['population_size']}")
    for s in i.get("sample", []):
        # A drawn receipt's id is its slot, which names no delivery: say which receipt it is.
        receipt = ""
        if s.get("grant_id") is not None:
            receipt = f" (receipt: grant {s['grant_id']}, sequence {s['sequence']})"
        lines.append(
            f"  {s['delivery_id']} provider {department(codes, s['provider'])}{receipt}: "
            f"presented {s['presented'] or '-'}, outcome {s['outcome'] or '-'}"
        )
    return "\n".join(lines)


def _inspected_bounds(grid: Mapping[str, Any], period: str | None, periods: int) -> tuple[int, int]:
    """The bounds of ``periods`` whole evaluation periods in a row, the last of them ``period``: ``last`` (the
    last closed one by the chain's clock, ``grid`` being ``GET /evaluation-period``) or the one a date/time
    falls in.

    Raises:
        InvalidQueryError: ``period`` is neither ``last`` nor an ISO date or date-time.
    """
    length = int(grid["length_seconds"])
    if period is None or period == "last":
        end = int(grid["starts_at"])  # the current period's start: the one before it is over
    else:
        moment = parse_time(period, "period")
        assert moment is not None
        end = moment - moment % length + length
    return end - periods * length, end


def _accepted(grid: Mapping[str, Any], period_from: int, period_to: int) -> str:
    """The bounds the ledger would take nearest ``[period_from, period_to)``, in the options' words: the whole
    periods covering it, cut at the last closed one."""
    length, last_end = int(grid["length_seconds"]), int(grid["starts_at"])
    to = min(-(-period_to // length) * length, last_end)
    start = min(period_from - period_from % length, to - length)
    n = (to - start) // length
    chain, plural = iso_time(int(grid["chain_time"])), "s" if n > 1 else ""
    return (
        f"the ledger takes whole evaluation periods of {length} s from the epoch, over by the chain's clock "
        f"({chain}): the nearest are --from {iso_time(start)} --to {iso_time(to)} ({n} period{plural}); "
        f"the last closed one, --period last, is {iso_time(last_end - length)} to {iso_time(last_end)}"
    )


@inspection_app.command("open")
def open_inspection_command(
    sample_size: Annotated[int, typer.Option("--sample-size", help="Deliveries to draw.")],
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="The (last) evaluation period inspected: `last`, the last closed one by the chain's clock "
            "(the default), or a date/time in it (ISO, UTC).",
        ),
    ] = None,
    periods: Annotated[
        int, typer.Option("--periods", min=1, help="Evaluation periods in a row, back from --period.")
    ] = 1,
    period_from: Annotated[
        str | None,
        typer.Option(
            "--from", help="Exact start, instead of --period: a period's start (ISO, UTC; inclusive)."
        ),
    ] = None,
    period_to: Annotated[
        str | None,
        typer.Option("--to", help="Exact end, with --from: a closed period's end (ISO, UTC; exclusive)."),
    ] = None,
    seed_delay: Annotated[
        int, typer.Option("--seed-delay", help="Blocks after the head whose hash seeds the sample.")
    ] = 2,
    present_within: Annotated[
        int,
        typer.Option(
            "--present-within",
            help=f"Seconds sampled providers have to present: at least {MIN_PRESENT_WITHIN_S} (the "
            f"{PRESENTATION_NOTICE_S // 86400} days' notice they are given from the draw, and a day); the "
            "API refuses less.",
        ),
    ] = 7 * 86400,
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Open a sampling inspection of whole, closed evaluation periods (auditors): by default the last closed
    one; `--period 2026-11-20 --periods 3` the one that day falls in and the two before it; `--from`/`--to`
    exact bounds (`dxl evaluation period` says the current period's). A refusal says the bounds the ledger
    would take."""
    exact = period_from is not None or period_to is not None
    if exact and (period_from is None or period_to is None):
        raise typer.BadParameter("--from and --to go together", param_hint="--from/--to")
    if exact and (period is not None or periods != 1):
        raise typer.BadParameter("exact bounds, or --period/--periods, not both", param_hint="--period")
    with exits_on_error(as_json):
        grid = None if exact else call_api(api, token, "GET", "/evaluation-period")
        if grid is None:
            start, end = parse_time(period_from, "from"), parse_time(period_to, "to")
            assert start is not None and end is not None
        else:
            start, end = _inspected_bounds(grid, period, periods)
        body = {
            "period_from": start, "period_to": end,
            "sample_size": sample_size, "seed_delay_blocks": seed_delay, "present_within": present_within,
        }  # fmt: skip
        try:
            written = call_api(api, token, "POST", "/inspections", body)
        except ApiCallError as exc:
            if exc.code != "INVALID_INSPECTION":
                raise
            grid = grid or call_api(api, token, "GET", "/evaluation-period")
            raise ApiCallError(f"{exc.message}; {_accepted(grid, start, end)}", code=exc.code) from None
    emit(written, as_json, _inspection_text(written["record"], department_codes(api, token, as_json)))


@inspection_app.command("draw")
def draw_command(
    inspection_id: Annotated[int, typer.Argument(help="The inspection.")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Fix the sample's seed once the seed block is mined (any department or auditor; within 256 blocks of
    the seed block, after which the inspection is expired and can never be drawn). The service draws due
    inspections itself (DXL_INSPECTION_DRAW_INTERVAL); a drawn inspection answers the draw that fixed it."""
    with exits_on_error(as_json):
        written = call_api(api, token, "POST", f"/inspections/{inspection_id}/draw")
    emit(written, as_json, _inspection_text(written["record"], department_codes(api, token, as_json)))


@inspection_app.command("show")
def show_inspection_command(
    inspection_id: Annotated[int, typer.Argument(help="The inspection.")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """An inspection with its sample, presentations and outcomes."""
    with exits_on_error(as_json):
        found = call_api(api, token, "GET", f"/inspections/{inspection_id}")
    emit(found, as_json, _inspection_text(found, department_codes(api, token, as_json)))


@inspection_app.command("present")
def present_command(
    inspection_id: Annotated[int, typer.Argument(help="The inspection.")],
    payload: Annotated[Path, typer.Option(help="The delivered payload.", exists=True, dir_okay=False)],
    manifest: Annotated[Path, typer.Option(help="Its manifest (dxl commit wrote it).", exists=True)],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Present a sampled delivery of your department: payload and manifest, checked against the chain. A
    receipt (``dxl`` delivered it at volume) is drawn by its slot, its grant and sequence: the receipt the
    manifest names is looked up to present it under that slot."""
    from verifier import jsontext

    try:
        document = jsontext.loads(manifest.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError(f"{manifest} holds no JSON object")
        delivery = str(document.get("delivery_id", ""))
        body = {
            "delivery_id": _drawn_as(api, token, inspection_id, delivery),
            "manifest": document,
            "payload_base64": base64.b64encode(payload.read_bytes()).decode("ascii"),
        }
        answered = call_api(api, token, "POST", f"/inspections/{inspection_id}/presentations", body)
    except (OSError, ValueError) as exc:
        raise cli_error(
            ApiCallError(f"cannot read the manifest: {exc}", code="USAGE_ERROR"), as_json
        ) from None
    except DxlError as exc:
        raise cli_error(exc, as_json) from None
    emit(answered, as_json, f"delivery {answered['delivery_id']}: {answered['verdict']['status']}")


def _drawn_as(api: str | None, token: str, inspection_id: int, delivery: str) -> str:
    """What the inspection drew ``delivery`` as: the delivery id itself, or for a receipt its slot
    (``verifier.sampling.receipt_slot``), read from the receipt journal (``GET /receipts/{id}``) when the id
    is not in the sample as it stands. Anything else is sent as it is, for the API to say why not.

    Raises:
        ApiCallError: the API does not answer the inspection.
    """
    from verifier.sampling import receipt_slot

    sampled = {
        s["delivery_id"] for s in call_api(api, token, "GET", f"/inspections/{inspection_id}")["sample"]
    }
    if delivery.lower() in sampled:
        return delivery
    try:
        receipt = call_api(api, token, "GET", f"/receipts/{delivery}")
    except ApiCallError:
        return delivery  # no receipt of the caller's by that id
    if not isinstance(receipt, dict) or receipt.get("sequence") is None:
        return delivery  # not anchored yet: in no batch, drawn by no slot
    slot = "0x" + receipt_slot(int(receipt["grant_id"]), int(receipt["sequence"])).hex()
    return slot if slot in sampled else delivery


@inspection_app.command("outcome")
def outcome_command(
    inspection_id: Annotated[int, typer.Argument(help="The inspection.")],
    delivery: Annotated[str, typer.Option(help="The sampled delivery (0x...).")],
    api: ApiOption = None,
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Record a sampled delivery's outcome on chain (auditors): passed, failed, or not presented."""
    with exits_on_error(as_json):
        written = call_api(
            api, token, "POST", f"/inspections/{inspection_id}/outcomes", {"delivery_id": delivery}
        )
    emit(written, as_json, _inspection_text(written["record"], department_codes(api, token, as_json)))


@inspection_app.command("sample")
def sample_command(
    inspection_id: Annotated[int, typer.Argument(help="The inspection.")],
    rpc: Annotated[
        str | None,
        typer.Option(
            help="Node JSON-RPC URL (default: of DXL_RPC_URL and DXL_RPC_FAILOVER_URLS the first that answers"
            " and does not lag behind, else the embedded node)."
        ),
    ] = None,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger address (default: the deployment record).")
    ] = None,
    practice: Annotated[
        str | None, typer.Option(help="SharingPractice address (default: the deployment record).")
    ] = None,
    from_block: Annotated[
        int | None, typer.Option("--from-block", help="First block to read logs from.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute an inspection's sample from a node alone (verifier.sampling; no API, no keys); the output
    names the node read and its head block as the sample was read, the block every read of it is of."""
    from dxl.payload import rpc_timeout
    from node.endpoint import pin_to_head
    from verifier.onchain import LedgerReader
    from verifier.sampling import derive_sample

    with exits_on_error(as_json):
        if rpc is None or ledger is None or practice is None:
            from node.deploy import load_deployment
            from node.settings import load_settings

            settings = load_settings()
            deployment = load_deployment(settings.home)
            if rpc is None:
                from node.endpoint import configured_node

                rpc = configured_node(settings, chain_id=deployment.chain_id).rpc_url
            ledger = ledger or deployment.address
            if practice is None:
                if deployment.sharing_practice is None:
                    raise ApiCallError("the deployment record names no sharing practice contract")
                practice = deployment.sharing_practice.address
            from_block = deployment.block_number if from_block is None else from_block
        reader = LedgerReader(rpc, ledger, from_block=from_block or 0, timeout=rpc_timeout())
        head = pin_to_head(reader.rpc)
        derived = derive_sample(reader, practice, inspection_id)
    data = {**derived.to_dict(), "node": head.to_dict()}
    # The derivation version says which rule drew the sample (verifier.sampling), as --json does.
    lead = f"inspection {inspection_id}: seed {data['seed']} (block {data['seed_block']}), population "
    lead += f"{data['population_size']}, derivation version {data['version']}, sample:\n"
    text = lead + "\n".join(f"  {d}" for d in data["sample"])
    text += f"\nread from {head} (its head as the sample was read)"
    emit(data, as_json, text)


def register(app: typer.Typer) -> None:
    app.add_typer(demand_app, name="demand")
    app.add_typer(evaluation_app, name="evaluation")
    app.add_typer(inspection_app, name="inspection")
