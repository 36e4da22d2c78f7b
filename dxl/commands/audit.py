"""``dxl audit``: index the ledger's events, check the index against the chain, query history and provenance,
compute scorecards, export audit reports and verify them against any node.

Exit codes: 0 success; 1 the check or verification found differences; 2 bad input or an unusable
node/database/report.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dxl.commands.common import JsonOption, exits_on_error
from node.audit.scorecard_pdf import Language
from verifier.text import counted, iso_time, noun

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from node.audit.indexer import CompanionSource
    from node.endpoint import NodeEndpoint
    from node.settings import Settings
    from verifier.receipts import ReceiptProof

audit_app = typer.Typer(
    help="Audit trail: index, check, history, provenance, scorecards, reports.", no_args_is_help=True
)
FromOption = Annotated[
    str | None, typer.Option("--from", help="Period start (ISO date/time, UTC; inclusive).")
]
ToOption = Annotated[str | None, typer.Option("--to", help="Period end (ISO date/time, UTC; exclusive).")]
DeptOption = Annotated[str | None, typer.Option("--department", help="Department code (or id).")]


def parse_time(value: str | None, name: str) -> int | None:
    """An ISO date (``2026-01-31``, midnight UTC) or date-time (UTC unless an offset is given) as Unix time.

    Raises:
        InvalidQueryError: anything else.
    """
    from node.audit.errors import InvalidQueryError

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidQueryError(name, f"{value!r} is not an ISO date or date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def period_bound(value: str | None, name: str, default: int) -> int:
    """:func:`parse_time`, or ``default`` when the option is not given (a given epoch, 0, stays 0)."""
    parsed = parse_time(value, name)
    return default if parsed is None else parsed


def _department(engine: Engine, code_or_id: str | None) -> int | None:
    """The id of a ``--department``-style option's department, None if the option was not given.

    Raises:
        NotFoundError: no such department in the audit trail.
    """
    from node.audit.queries import department_id

    return department_id(engine, code_or_id) if code_or_id else None


def _out(data: Any, as_json: bool, text: str | None = None) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json or text is None else text)


def _lines(data: Any, key: str = "") -> list[str]:
    """A nested answer as ``key.sub: value`` lines, one a value, to read (``--json`` gives the document):
    a list of plain values on one line, a list of objects by index (``key[0].sub``), nothing as ``-``."""
    if isinstance(data, dict) and data:
        return [line for k, v in data.items() for line in _lines(v, f"{key}.{k}" if key else str(k))]
    if isinstance(data, list) and any(isinstance(v, dict | list) for v in data):
        return [line for i, v in enumerate(data) for line in _lines(v, f"{key}[{i}]")]
    if isinstance(data, list):
        shown = ", ".join(map(str, data)) if data else "-"
    else:
        shown = "-" if data is None or data == {} else str(data)
    return [f"{key}: {shown}"]


@audit_app.command("index")
def index_cmd(
    to_block: Annotated[
        int | None, typer.Option(help="Stop at this block (default: head - confirmations).")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Drop the index and re-read the chain from the deployment.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Follow the ledger's events into the audit database (resumes where the last run stopped)."""
    from node.audit.indexer import reset_store
    from node.audit.service import open_context
    from node.settings import load_settings

    with exits_on_error(as_json):
        ctx = open_context(load_settings())
        if rebuild:
            reset_store(ctx.engine)
        with ctx.rpc() as rpc:
            result = ctx.indexer(rpc).sync(to_block=to_block)
    if result.from_block > result.to_block:  # no block to read: "indexed blocks 585..584" said it backwards
        text = f"nothing new to index: the index is at block {result.to_block}"
    else:
        text = (
            f"indexed blocks {result.from_block}..{result.to_block}: {counted(result.events, 'event')}, "
            f"{counted(result.refusals, 'refused delivery', 'refused deliveries')} in {result.seconds:.1f}s"
        )
    _out(result.to_dict(), as_json, text)


@audit_app.command("check")
def check_cmd(as_json: JsonOption = False) -> None:
    """Re-derive the audit trail from chain logs and list every database row that differs (exit 1 if any)."""
    from node.audit.check import check_store
    from node.audit.service import open_context
    from node.settings import load_settings

    with exits_on_error(as_json):
        ctx = open_context(load_settings())
        with ctx.rpc() as rpc:
            result = check_store(
                ctx.engine,
                rpc,
                ctx.codec,
                batch_blocks=ctx.settings.audit_batch_blocks,
                expected=ctx.indexed_contracts(),
            )
    lines = [d.describe() for d in result.differences]
    checked = counted(result.events_checked, "event")
    differ = f"{counted(len(lines), 'row')} {'differs' if len(lines) == 1 else 'differ'}"
    summary = f"checked {checked} in blocks {result.from_block}..{result.to_block}: " + (
        "database matches the chain" if result.ok else differ
    )
    _out(result.to_dict(), as_json, "\n".join([*lines, summary]))
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("history")
def history_cmd(
    department: DeptOption = None,
    counterpart: Annotated[
        str | None, typer.Option(help="The other party's code (with --department).")
    ] = None,
    resource: Annotated[int | None, typer.Option(help="Resource id.")] = None,
    agreement: Annotated[int | None, typer.Option(help="Agreement id.")] = None,
    event: Annotated[list[str] | None, typer.Option(help="Event type (repeatable).")] = None,
    period_from: FromOption = None,
    period_to: ToOption = None,
    cursor: Annotated[str | None, typer.Option(help="Cursor from the previous page.")] = None,
    limit: Annotated[int, typer.Option(help="Page size (1..500).")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Exchange history, oldest first, one page at a time."""
    from node.audit.queries import HistoryFilter, history
    from node.audit.service import open_context
    from node.settings import load_settings

    with exits_on_error(as_json):
        ctx = open_context(load_settings())
        flt = HistoryFilter(
            department=_department(ctx.engine, department),
            counterpart=_department(ctx.engine, counterpart),
            resource=resource,
            agreement=agreement,
            events=tuple(event or ()),
            from_time=parse_time(period_from, "from"),
            to_time=parse_time(period_to, "to"),
        )
        page = history(ctx.engine, flt, known_events=ctx.codec.event_names, cursor=cursor, limit=limit)
    text = "\n".join(
        f"{i['time']} {i['event']:<22} block {i['location']['block_number']} "
        f"log {i['location']['log_index']} tx {i['location']['tx_hash']}"
        for i in page.items
    ) + (f"\nnext page: --cursor {page.next_cursor}" if page.next_cursor else "")
    _out(page.to_dict(), as_json, text)


@audit_app.command("provenance")
def provenance_cmd(
    commitment: Annotated[str | None, typer.Argument(help="Payload commitment (0x + 64 hex).")] = None,
    delivery: Annotated[str | None, typer.Option(help="Delivery id instead of a commitment.")] = None,
    payload: Annotated[Path | None, typer.Option("--file", help="Payload file (with --manifest).")] = None,
    manifest: Annotated[Path | None, typer.Option(help="The payload's delivery manifest.")] = None,
    batch: Annotated[
        str | None, typer.Option(help="An anchored receipt batch instead: GRANT/FIRST_SEQUENCE (e.g. 3/0).")
    ] = None,
    receipt: Annotated[
        Path | None,
        typer.Option(
            help="One anchored receipt instead: the JSON of GET /receipts/{id} (or its `proof`), its proof "
            "checked against the batch the chain anchored; with --file and --manifest, the payload it "
            "records."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Where a payload comes from: delivery, agreement, grant, parties, times, acknowledgement, location (or,
    with --batch, the same for an anchored receipt batch, with its leaf count, root and disputes; with
    --receipt, for one anchored receipt and its batch, from the receipt's proof and the chain alone)."""
    from node.audit.errors import InvalidQueryError
    from node.audit.queries import batch_provenance, provenance, provenance_of_file, receipt_provenance
    from node.audit.service import open_context
    from node.settings import load_settings

    with exits_on_error(as_json):
        ctx = open_context(load_settings())
        ctx.heal()
        if receipt is not None and (batch, commitment, delivery) != (None, None, None):
            raise InvalidQueryError("receipt", "give --receipt alone, or with --file and --manifest")
        if batch is not None:
            grant, sep, first = batch.partition("/")
            if not sep or not grant.isdigit() or not first.isdigit():
                raise InvalidQueryError("batch", f"{batch!r} is not GRANT/FIRST_SEQUENCE (two integers)")
            result: Any = batch_provenance(ctx.engine, int(grant), int(first))
        elif payload is not None or manifest is not None:
            if payload is None or manifest is None:
                raise InvalidQueryError("file", "--file and --manifest go together")
            if receipt is None:
                with _pointing_to_receipts():
                    result = provenance_of_file(ctx.engine, payload, manifest)
            else:
                proof = _receipt_proof(receipt, ctx.anchors)
                result = provenance_of_file(ctx.engine, payload, manifest, receipt=proof)
        elif receipt is not None:
            result = receipt_provenance(ctx.engine, _receipt_proof(receipt, ctx.anchors))
        elif commitment is None and delivery is None:
            raise InvalidQueryError("commitment", "give a commitment, --delivery or --file with --manifest")
        else:
            with _pointing_to_receipts():
                result = provenance(ctx.engine, commitment, delivery_id=delivery)
    _out(result, as_json, "\n".join(_lines(result)))


@contextlib.contextmanager
def _pointing_to_receipts() -> Iterator[None]:
    """A delivery or commitment the audit trail does not hold says how a receipt is traced: the chain finds
    a single delivery by its id or commitment, never a receipt (it holds its batch's root)."""
    from node.audit.errors import AuditError, NotFoundError

    try:
        yield
    except NotFoundError as exc:
        raise AuditError(
            f"{exc.message}; a delivery sent as a receipt is traced with --receipt ANSWER.json (its "
            "GET /receipts/{id} answer): the chain holds each batch's root, not its receipts",
            code=exc.code,
        ) from None


def _receipt_proof(path: Path, anchors: CompanionSource | None) -> ReceiptProof:
    """The inclusion proof in the receipt answer at ``path``, held to the anchors this deployment records.

    Raises:
        ConfigurationError: the file cannot be read as JSON, or the deployment records no receipt anchors.
        InvalidProofError: it holds no proof, or states a field otherwise than its proof, or names other
            anchors.
    """
    from node.errors import ConfigurationError
    from verifier import jsontext
    from verifier.receipts import ReceiptProof

    if anchors is None:
        raise ConfigurationError("the deployment record names no receipt anchors: there is no batch to trace")
    try:
        raw = jsontext.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"cannot read {path}: {e}") from None
    return ReceiptProof.from_answer(raw, anchors=anchors.address)


@audit_app.command("scorecard")
def scorecard_cmd(
    department: DeptOption = None,
    period_from: FromOption = None,
    period_to: ToOption = None,
    deadline_days: Annotated[int | None, typer.Option(help="Response deadline in working days.")] = None,
    pdf: Annotated[
        Path | None,
        typer.Option(
            "--pdf",
            help="Also write the scorecard as a PDF file (charts and every indicator; the API's "
            "GET /audit/scorecard?format=pdf, byte for byte).",
            dir_okay=False,
        ),
    ] = None,
    lang: Annotated[Language, typer.Option("--lang", help="The PDF's language.")] = Language.EN,
    as_json: JsonOption = False,
) -> None:
    """Indicators of one department (or the consortium) over a period (default: all time up to the head
    block's time, the chain's now). The output names the node read and the block the card holds at: the
    last block the index holds, as near the head as the confirmation depth lets it."""
    from node.audit.scorecard import compute_scorecard, load_facts
    from node.audit.scorecard_pdf import ChainPosition, scorecard_pdf
    from node.audit.service import open_context
    from node.endpoint import NodeHead
    from node.settings import load_settings

    with exits_on_error(as_json):
        ctx = open_context(load_settings())
        # The index brought up to the head, then the practice contract, cut back to the index's last block.
        block, now = ctx.caught_up()
        practice = _practice_facts(ctx.rpc_url, ctx.chain_id, ctx.settings)
        facts = load_facts(ctx.engine, through_block=block)
        card = compute_scorecard(
            facts,
            department=_department(ctx.engine, department),
            period_from=period_bound(period_from, "from", 0),
            period_to=period_bound(period_to, "to", now + 1),
            now=now,
            deadline_days=deadline_days
            if deadline_days is not None
            else ctx.settings.audit_response_deadline_days,
            practice=practice,
            at_block=block,
        )
        read = NodeHead(ctx.rpc_url, block, now)
        if pdf is not None:
            document = scorecard_pdf(
                card,
                at=ChainPosition(chain_id=ctx.chain_id, ledger=ctx.contract, block=block, block_time=now),
                language=lang,
                department_codes=facts.department_codes,
            )
            try:
                pdf.write_bytes(document)
            except OSError as e:
                from node.errors import ConfigurationError

                raise ConfigurationError(f"cannot write {pdf}: {e.strerror or e}") from None
    # The period's bounds as people read them; --json keeps the Unix seconds the API answers.
    shown = {**card, "period": {k: iso_time(v) for k, v in card["period"].items()}}
    written = [] if pdf is None else [f"PDF written to {pdf}"]
    _out(
        {**card, "node": read.to_dict()}, as_json, "\n".join([*_lines(shown), f"read from {read}", *written])
    )


def _practice_facts(rpc_url: str, chain_id: int, settings: Settings) -> Any:
    """Demands, evaluations and inspections from the recorded ``SharingPractice`` (None when the deployment
    record names none: the scorecard's ``practice`` is then null)."""
    from node.deploy import DeploymentMismatchError, ledger_client, load_deployment, practice_client
    from node.endpoint import NodeEndpoint
    from node.practice import PracticeReader

    endpoint, home, wait = NodeEndpoint(rpc_url, chain_id), settings.home, settings.rpc_timeout
    deployment = load_deployment(home)
    record = deployment.sharing_practice
    if record is None:
        return None
    try:
        practice = practice_client(endpoint, home, request_timeout=wait)
    except DeploymentMismatchError:
        return None
    reader = PracticeReader(
        practice, ledger_client(endpoint, home, request_timeout=wait), from_block=record.block_number,
        ledger_from_block=deployment.block_number,
    )  # fmt: skip
    return reader.facts()


@audit_app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option("--out", help="Directory for report.json and report.csv.")],
    period_from: FromOption = None,
    period_to: ToOption = None,
    department: DeptOption = None,
    receipts: Annotated[
        bool,
        typer.Option(
            "--receipts",
            help="Carry the receipts of every anchored batch among the rows (from this service's receipt "
            "journal), so that `dxl audit verify` recomputes each batch's root.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Export the period's events (of one department, if given) as JSON and CSV, each row with its chain
    location; anchored receipt batches are rows with their leaf counts. Re-check it anywhere with
    `dxl audit verify`. The output names the node read and the report's last block (the last the index
    holds)."""
    from node.audit.reports import attach_receipts, build_report, write_report
    from node.audit.service import open_context
    from node.endpoint import NodeHead
    from node.settings import load_settings

    with exits_on_error(as_json):
        settings = load_settings()
        ctx = open_context(settings)
        with ctx.rpc() as rpc:
            report = build_report(
                ctx.engine,
                period_from=period_bound(period_from, "from", 0),
                period_to=ctx.head_time() + 1 if period_to is None else period_bound(period_to, "to", 0),
                department=_department(ctx.engine, department),
                block_time=rpc.block_time,
            )
            last = int(report["block_range"]["to"])
            read = NodeHead(ctx.rpc_url, last, rpc.block_time(last))
        carried = attach_receipts(report, _journaled_receipts()) if receipts else None
        _attach_practice(report, ctx)
        paths = write_report(report, out)
    batches = ""
    if carried is not None:
        batches = ", receipts of " + counted(carried, "anchored batch", "anchored batches")
    _out(
        {"rows": report["row_count"], "receipt_batches": carried, "files": [str(p) for p in paths],
         "node": read.to_dict()},
        as_json,
        counted(report["row_count"], "row")
        + batches
        + f" -> {paths[0]}, {paths[1]}; read from {read} (the last block indexed)",
    )  # fmt: skip


def _attach_practice(report: dict[str, Any], ctx: Any) -> None:
    """Add the demands, evaluations and inspections of the report's selection (``practice``) when the
    deployment has a sharing practice contract."""
    from node.audit.indexer import load_lineage
    from node.audit.practice_report import practice_rows
    from node.deploy import load_deployment

    record = load_deployment(ctx.settings.home).sharing_practice
    if record is None:
        return
    lineage = load_lineage(ctx.engine)
    agreements = lineage.agreements

    def parties(agreement_id: int) -> set[int]:
        known = agreements.get(agreement_id)
        return set() if known is None else {known[2], known[3]}

    with ctx.rpc() as rpc:
        rows = practice_rows(
            rpc, record.address, report["block_range"]["from"], report["block_range"]["to"],
            period=report["period"], department=(report.get("department") or {}).get("id"),
            agreement_parties=parties,
            grant_provider=lambda g: grant.provider if (grant := lineage.grants.get(g)) else None,
        )  # fmt: skip
    report["practice"] = {"address": record.address, "rows": rows}


def _journaled_receipts() -> Any:
    """A look-up of a batch's receipts in this service's receipt journal (the API's database)."""
    from sqlalchemy import inspect

    from api.db import make_engine
    from api.receipts.journal import receipts_table
    from api.receipts.lookups import batch_receipts
    from api.settings import load_api_settings

    engine = make_engine(load_api_settings().effective_database_url)
    if not inspect(engine).has_table(receipts_table.name):
        return lambda _grant, _first: None
    return lambda grant, first: batch_receipts(engine, grant, first)


@audit_app.command("verify")
def verify_cmd(
    report: Annotated[
        Path, typer.Argument(help="report.json or report.csv (or the directory holding them: its JSON).")
    ],
    rpc_url: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            help="JSON-RPC URL of any node of the network (default: of DXL_RPC_URL and DXL_RPC_FAILOVER_URLS "
            "the first that answers and does not lag behind, else the embedded node).",
        ),
    ] = None,
    contract: Annotated[
        str | None, typer.Option(help="Ledger address (trusted; default: the report's).")
    ] = None,
    anchors: Annotated[
        str | None,
        typer.Option(help="Receipt anchors address (trusted; default: the report's; must serve the ledger)."),
    ] = None,
    practice: Annotated[
        str | None,
        typer.Option(
            help="Sharing practice address (trusted; default: the report's; must serve the ledger)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-check every column of every row of a report (JSON or CSV) against a node, without the service or
    its database (exit 1 naming each changed, missing or reordered row). Anchored receipt batches are
    re-checked as rows; receipts the report carries are recomputed into each batch's anchored root (an
    omitted, added or altered receipt is named). The output names the node read and its head block as the
    re-check began: every read of the re-check is of that block."""
    # Only the pure re-check and the ABI: nothing of the database or the service is loaded.
    from dxl.payload import rpc_timeout
    from node.audit.verify import audit_abi, load_report, verify_report
    from node.endpoint import pin_to_head
    from node.rpc import JsonRpc

    with exits_on_error(as_json):
        document = load_report(report)
        urls = _reading_node().rpc_urls if rpc_url is None else (rpc_url,)
        with JsonRpc(urls[0], timeout=rpc_timeout(), failover_urls=urls[1:]) as rpc:
            head = pin_to_head(rpc)
            result = verify_report(
                document, rpc, audit_abi(), contract=contract, anchors=anchors, practice=practice
            )
    receipts = ""
    if result.receipts_checked:
        receipts += f", {counted(result.receipts_checked, 'receipt')} recomputed"
    if result.batches_uncarried:
        uncarried = counted(result.batches_uncarried, "anchored batch", "anchored batches")
        receipts += f", {uncarried} listed without their receipts"
    if result.practice_events:
        receipts += f", {counted(result.practice_events, 'practice event')} re-derived"
    if result.expired_inspections:
        expired = ", ".join(map(str, result.expired_inspections))
        inspections = noun(len(result.expired_inspections), "inspection")
        receipts += f", {inspections} {expired} expired undrawn (their sample was never fixed)"
    if result.outcomes_without_verdict:
        bare = ", ".join(f"{o['outcome']} {o['delivery_id']} (inspection {o['inspection_id']}, block "
                         f"{o['block_number']})" for o in result.outcomes_without_verdict)  # fmt: skip
        outcomes = noun(len(result.outcomes_without_verdict), "outcome")
        receipts += f", {outcomes} recorded without a verdict (zero evidence hash): {bare}"
    events = counted(result.chain_events, "matching event")
    summary = f"{counted(result.rows, 'row')}, {events} on chain{receipts}: " + (
        "report verified" if result.ok else counted(len(result.problems), "problem")
    )
    if result.addresses_from_report:
        options = "/".join(f"--{'contract' if n == 'ledger' else n}" for n in result.addresses_from_report)
        summary += (
            f" (against the {', '.join(result.addresses_from_report)} "
            f"{noun(len(result.addresses_from_report), 'address', 'addresses')} the report names: a forged "
            f"report can name forged contracts; give {options} from a trusted source)"
        )
    summary += f"; read from {head} (its head as the re-check began)"
    _out({**result.to_dict(), "node": head.to_dict()}, as_json, "\n".join([*result.problems, summary]))
    if not result.ok:
        raise typer.Exit(1)


def _reading_node() -> NodeEndpoint:
    """The node every reading command reads (:func:`node.endpoint.configured_node`); whether it serves the
    report's chain is the re-check's first question.

    Raises:
        ConfigurationError: bad settings.
    """
    from node.endpoint import configured_node
    from node.settings import load_settings

    return configured_node(load_settings())


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    from dxl.commands.bench import bench_app

    @bench_app.command("audit")
    def bench_audit(
        receipts: Annotated[int, typer.Option(help="Delivery receipts to index.")] = 1_000_000,
        as_json: JsonOption = False,
    ) -> None:
        """Indexing throughput and history/provenance query latency with N synthetic receipts (SQLite)."""
        from node.audit.bench import run_audit_benchmark

        _out(run_audit_benchmark(receipts), True)
