"""Re-checking an audit report against any node, without the dxl service or its database.

This module imports only the pure decoder (:mod:`node.audit.events`) and the bare JSON-RPC client
(:mod:`node.rpc`): an auditor can run it against their own node. It re-derives, from the chain's logs
alone, every event the report's period and department select over the report's block range, then checks:

* each row exists on chain at its block number and log index, and every column of it is what the chain says:
  block hash, transaction hash and index, the ledger's address, event name, decoded fields, block time and its
  ISO spelling, and the lineage columns (request, agreement, grant, resource, provider, consumer, subject,
  delivery id, commitment) resolved from the chain's earlier events as the indexer resolves them; values
  compare by value and JSON type;
* what the report says about itself: ``row_count``, the period's ISO spelling, the department's code, and
  no section it writes or leaves out (receipts, practice) found null instead (:data:`NEVER_NULL`);
* rows are in chain order (a reordered row is named);
* completeness: every event the chain has for the selection is in the report (a dropped row is named by its
  chain location, and by the gap in row numbers), and no contract serving the ledger whose events it would
  hold is left unread: with no receipt anchors or sharing practice address given or named by the report, the
  chain's logs of the range are searched for their events, and each emitter whose ``ledger()`` is this ledger
  is named (a report that dropped its anchors, with every batch row, verified as the ledger's alone).

Anchored receipt batches (events of the ``ReceiptAnchors`` contract beside the ledger, ``anchors``) are rows
like any other: grant, first sequence, leaf count, root, parties and block are re-derived from the chain. A
report may also carry the receipts themselves (``receipt_batches``: each batch's grant, first sequence and its
receipts' leaf fields, in leaf order); then every anchored batch among its rows must be listed (with
``"receipts": null`` if its author does not hold them, which is counted and said), and each carried batch's
root is recomputed from its receipts (the verifier's tree) and compared with the root and
leaf count on chain, so a receipt omitted, added, altered or moved is detected (:data:`REPORT_PROBLEMS`); a
carried receipt no single delivery could be, or whose delivery id the report meets twice (among the carried
receipts and its single deliveries), is named though its batch's root holds.

Cost: one ``eth_getLogs`` per 2,000 blocks from the deployment block to the report's last block (department
filters need the lineage from the start), plus one header per block holding events.

Callers MUST take the contract address from a trusted source (``--contract``) rather than the report itself
when the report's author is not trusted: a forged report could name a forged contract. The anchors contract
is checked to serve that ledger (its ``ledger()`` view); take its address from a trusted source too
(``--anchors``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from node.audit.errors import AuditError, ReportFormatError
from node.audit.events import BATCH_ANCHORED, EventCodec, EventRecord, Lineage, seq_of
from node.errors import DxlError, NodeError
from node.rpc import JsonRpc, quantity
from verifier import jsontext
from verifier.errors import InvalidProofError, ProofError
from verifier.receipts import Receipt, batch_root, undeliverable_fields
from verifier.rpc import SET_ONCE
from verifier.text import counted, iso_time

REPORT_FORMAT = "dxl-audit-report/1"
#: Every column of a report row, in the CSV file's order. Each one is re-derived from the chain and compared.
REPORT_COLUMNS = (
    "row",
    "event",
    "time",
    "block_time",
    "block_number",
    "block_hash",
    "tx_hash",
    "tx_index",
    "log_index",
    "address",
    "request_id",
    "agreement_id",
    "grant_id",
    "resource_id",
    "provider_id",
    "consumer_id",
    "subject_id",
    "delivery_id",
    "commitment",
    "fields",
)
_INT_COLUMNS = frozenset(
    {
        "row",
        "block_time",
        "block_number",
        "tx_index",
        "log_index",
        "request_id",
        "agreement_id",
        "grant_id",
        "resource_id",
        "provider_id",
        "consumer_id",
        "subject_id",
    }
)
#: The report's own fields, written above the CSV header as ``# key: JSON value`` lines.
REPORT_HEADER = (
    "format",
    "generated_at",
    "chain_id",
    "contract",
    "period",
    "department",
    "block_range",
    "row_count",
    "anchors",
    "receipt_batches",
    "practice",
)
#: Header fields a report may lack: reports made before receipt anchors, reports without receipts, and
#: reports of a ledger without the sharing practice contract (demands, evaluations, inspections).
OPTIONAL_HEADER = frozenset({"anchors", "receipt_batches", "practice"})
#: The sections a report leaves out rather than writes null, with what a null one stands in for. Read as left
#: out, a null section (a file edited by hand or cut short) verified with nothing of it checked.
NEVER_NULL: dict[str, str] = {
    "receipt_batches": "a report lists its anchored batches (each with its receipts, null if not carried) "
    "or leaves the field out; no receipt of it is recomputed",
    "practice": "a report holds the sharing practice contract's address and rows or leaves the field out; "
    "none of its demands, evaluations and inspections is checked",
}
#: What a report's rows and carried receipts can get wrong, by code; each problem line reads
#: ``receipts of batch (grant G, first sequence F): CODE: message`` or ``row N: CODE: message``.
REPORT_PROBLEMS: dict[str, str] = {
    # A department's report holds the exchanges it is a party to (:func:`covers`): another's, however
    # correct, would pad it with exchanges that are not its own.
    "NOT_THE_DEPARTMENTS": "an exchange of departments {parties}, not of the report's department "
    "{department}",
    "RECEIPT_BATCH_MALFORMED": "{detail}",
    "RECEIPT_BATCH_UNKNOWN": "no such batch is anchored on chain (within the report's block range)",
    "RECEIPT_BATCH_DUPLICATED": "carried twice",
    # {carried} and the {anchored} of RECEIPTS_MISSING come with their noun ("1 receipt", "3 receipts").
    "RECEIPTS_MISSING": "the report carries receipts but none of this batch (row {row}), anchored with "
    "{anchored}",
    "RECEIPTS_OMITTED": "the report carries {carried}, the chain anchored {anchored}: {count} omitted",
    "RECEIPTS_ADDED": "the report carries {carried}, the chain anchored {anchored}: {count} added",
    "RECEIPT_OTHER_GRANT": "receipt {index} names grant {grant}",
    "RECEIPT_NOT_PROVIDERS": "receipt {index}'s delivery id {delivery_id} is not in the namespace of the "
    "batch's provider, department {provider}: no receipt of it (receiptIncluded)",
    "RECEIPT_ZERO_COMMITMENT": "receipt {index}'s commitment is zero, which the ledger refuses a delivery: "
    "no receipt (receiptIncluded)",
    "RECEIPT_UNKNOWN_HASH_ALGORITHM": "receipt {index}'s hash algorithm {hash_algorithm} is none the ledger "
    "accepts (1 SHA-256, 2 SM3): no receipt (receiptIncluded)",
    "RECEIPT_DUPLICATE": "receipt {index}'s delivery id {delivery_id} is also {other}: the ledger records "
    "an id once",
    "RECEIPT_ALTERED": "the receipts recompute root {computed}, the chain anchored root {anchored}: a "
    "receipt was altered, replaced or reordered",
}
#: The problem code of each field :func:`verifier.receipts.undeliverable_fields` names.
_UNDELIVERABLE_CODES = {
    "commitment": "RECEIPT_ZERO_COMMITMENT",
    "hash_algorithm": "RECEIPT_UNKNOWN_HASH_ALGORITHM",
    "delivery_id": "RECEIPT_NOT_PROVIDERS",
}
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")
#: The fields of each section of a report's header that holds an object (the practice section's are held by
#: :func:`node.audit.practice_report.practice_problems`).
_SECTION_FIELDS = {
    "period": frozenset({"from", "to", "from_iso", "to_iso"}),
    "block_range": frozenset({"from", "to"}),
    "department": frozenset({"id", "code"}),
}


def audit_abi() -> list[dict[str, Any]]:
    """The ABI the audit trail decodes: the ledger's, plus the events of the ``ReceiptAnchors`` contract
    deployed beside it (anchored receipt batches are exchanges too). From the build artifacts."""
    from node.compiler import load_artifact

    ledger = list(load_artifact("DataExchangeLedger").abi)
    anchors = [e for e in load_artifact("ReceiptAnchors").abi if e.get("type") == "event"]
    return [*ledger, *anchors]


def receipt_problem(grant_id: Any, first_sequence: Any, code: str, **values: Any) -> str:
    """One problem line about the carried receipts of a batch (see :data:`REPORT_PROBLEMS`)."""
    where = f"receipts of batch (grant {grant_id}, first sequence {first_sequence})"
    return report_problem(where, code, **values)


def report_problem(where: str, code: str, **values: Any) -> str:
    """One problem line about ``where`` in the report (a row, a carried batch): ``where: CODE: message``."""
    return f"{where}: {code}: {REPORT_PROBLEMS[code].format(**values)}"


def covers(department: int | None, parties: set[int]) -> bool:
    """Whether a report of ``department`` (None: the consortium's) holds an exchange of ``parties``: the one
    test of the rows the verifier re-derives, of the rows a report states, of the batches it carries and of
    its practice rows (:func:`node.audit.practice_report.practice_rows`)."""
    return department is None or department in parties


def not_the_departments(where: str, department: int | None, parties: set[int]) -> str:
    """The NOT_THE_DEPARTMENTS line of ``where``, an exchange of ``parties`` in a report of ``department``."""
    named = " and ".join(str(p) for p in sorted(parties)) or "none"
    return report_problem(where, "NOT_THE_DEPARTMENTS", parties=named, department=department)


@dataclass
class VerifyResult:
    rows: int
    chain_events: int
    problems: list[str] = field(default_factory=list)
    #: Receipts recomputed into the anchored roots of the batches the report carries.
    receipts_checked: int = 0
    #: Anchored batches the report lists with ``"receipts": null`` (declared not carried).
    batches_uncarried: int = 0
    #: Practice events (demands, evaluations, inspections) re-derived from the practice contract's logs.
    practice_events: int = 0
    #: Inspections opened in the blocks read and never drawn while their seed block's hash was known.
    expired_inspections: list[int] = field(default_factory=list)
    #: Passes and failures of the report recorded with a zero evidence hash: no verdict stands behind them.
    outcomes_without_verdict: list[dict[str, Any]] = field(default_factory=list)
    #: Contracts whose address was read from the report itself (``ledger``, ``anchors``, ``practice``), not
    #: given by the caller: a forged report can name forged contracts that emit what it says.
    addresses_from_report: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "chain_events": self.chain_events,
            "receipts_checked": self.receipts_checked,
            "batches_uncarried": self.batches_uncarried,
            "practice_events": self.practice_events,
            "expired_inspections": self.expired_inspections,
            "outcomes_without_verdict": self.outcomes_without_verdict,
            "addresses_from_report": self.addresses_from_report,
            "problems": self.problems,
        }


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report: ``report.json``, ``report.csv``, or the directory holding them (its JSON file is read).

    A CSV report is read back into the JSON document's shape: the ``# key: value`` lines above its header
    give the report's fields, empty cells are ``null``, integer columns hold integers only when spelled
    canonically (anything else stays text, so an edited cell is compared, and reported, as written) and
    ``fields`` is JSON.

    Raises:
        ReportFormatError: unreadable, not JSON or CSV, or not a dxl audit report.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ReportFormatError(f"cannot read audit report {p}: {exc}") from exc
    if p.suffix.lower() == ".csv" or text.startswith("#"):
        report: Any = _parse_csv_report(p, text)
    else:
        try:
            report = jsontext.loads(text)
        except ValueError as exc:
            raise ReportFormatError(f"cannot read audit report {p}: {exc}") from exc
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise ReportFormatError(f"{p} is not a {REPORT_FORMAT} document")
    for key in ("chain_id", "contract", "period", "block_range", "rows"):
        if key not in report:
            raise ReportFormatError(f"{p} lacks {key!r}")
    if not isinstance(report["rows"], list) or not all(isinstance(r, dict) for r in report["rows"]):
        raise ReportFormatError(f"{p}: rows must be a list of objects")
    # The header is read before any row is compared: a value of the wrong type there ended the verification
    # with a traceback (a number for the contract's address) or a node's error (a negative block).
    if type(report["chain_id"]) is not int:
        raise ReportFormatError(f"{p}: chain_id must be an integer")
    if not isinstance(report["contract"], str):
        raise ReportFormatError(f"{p}: contract must be an address")
    for key, bounds in (("period", ("from", "to")), ("block_range", ("from", "to"))):
        value = report[key]
        if not isinstance(value, dict) or any(type(value.get(b)) is not int for b in bounds):
            raise ReportFormatError(f"{p}: {key} must be an object with integer from and to")
    if any(report["block_range"][b] < 0 for b in ("from", "to")):
        raise ReportFormatError(f"{p}: block_range must not name a negative block")
    department = report.get("department")
    # The id selects the rows verified: one of another type (the text "1") selected none, so a report of
    # department 1 cut to no rows verified, and a list or an object ended the check in a traceback.
    if department is not None and (
        not isinstance(department, dict)
        or type(department.get("id")) is not int
        or not isinstance(department.get("code"), str | None)
    ):
        raise ReportFormatError(f"{p}: department must be null or an object with an integer id and a code")
    if report.get("anchors") is not None and not isinstance(report["anchors"], str):
        raise ReportFormatError(f"{p}: anchors must be an address or null")
    return report


def _parse_csv_report(p: Path, text: str) -> dict[str, Any]:
    lines = text.splitlines(keepends=True)
    report: dict[str, Any] = {}
    given_on: dict[str, int] = {}
    body = 0
    while body < len(lines) and lines[body].startswith("#"):
        key, sep, value = lines[body][1:].strip().partition(":")
        key = key.strip()
        if not sep or key not in REPORT_HEADER:
            raise ReportFormatError(f"{p}: line {body + 1} is not a '# key: value' line of a report header")
        # A field given twice is refused, as a JSON document naming a key twice is (verifier.jsontext): a
        # person reads the first line, the re-check would take the last, and a forged period or department
        # above the true one would be shown while the rows of the other were verified.
        if key in given_on:
            raise ReportFormatError(f"{p}: line {body + 1} gives {key} again (first on line {given_on[key]})")
        given_on[key] = body + 1
        try:
            report[key] = jsontext.loads(value)
        except ValueError as exc:
            raise ReportFormatError(f"{p}: line {body + 1}: {key} is not JSON: {exc}") from exc
        body += 1
    reader = csv.reader(io.StringIO("".join(lines[body:]), newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(header) != REPORT_COLUMNS:
            raise ReportFormatError(f"{p}: the header row must be {','.join(REPORT_COLUMNS)}")
        rows = []
        for number, cells in enumerate(reader, start=body + 2):
            if len(cells) != len(REPORT_COLUMNS):
                raise ReportFormatError(
                    f"{p}: line {number} has {len(cells)} cells, expected {len(REPORT_COLUMNS)}"
                )
            rows.append({c: _csv_value(c, v) for c, v in zip(REPORT_COLUMNS, cells, strict=True)})
    except csv.Error as exc:  # a cell past the csv module's bound (128 KiB): no report writes one
        raise ReportFormatError(f"{p}: line {body + reader.line_num}: {exc}") from exc
    report["rows"] = rows
    return report


def _csv_value(column: str, cell: str) -> Any:
    if cell == "":
        return None
    if column in _INT_COLUMNS and _CANONICAL_INT.fullmatch(cell):
        try:
            return int(cell)
        except ValueError:  # past the interpreter's 4,300 digits: no block or id, compared as written
            return cell
    if column == "fields":
        try:
            return jsontext.loads(cell)
        except ValueError:
            return cell
    return cell


def same_value(a: Any, b: Any) -> bool:
    """Equal in value and JSON type: ``1``, ``1.0`` and ``true`` are three different cells."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _expected_row(record: EventRecord, position: int) -> dict[str, Any]:
    return {
        "row": position,
        "event": record.event,
        "time": iso_time(record.block_time),
        "block_time": record.block_time,
        "block_number": record.block_number,
        "block_hash": record.block_hash,
        "tx_hash": record.tx_hash,
        "tx_index": record.tx_index,
        "log_index": record.log_index,
        "address": record.address.lower(),
        "request_id": record.request_id,
        "agreement_id": record.agreement_id,
        "grant_id": record.grant_id,
        "resource_id": record.resource_id,
        "provider_id": record.provider_id,
        "consumer_id": record.consumer_id,
        "subject_id": record.subject_id,
        "delivery_id": record.delivery_id,
        "commitment": record.commitment,
        "fields": record.fields,
    }


def _selected(record: EventRecord, period: dict[str, Any], department: int | None) -> bool:
    if not period["from"] <= record.block_time < period["to"]:
        return False
    return covers(department, record.departments())


def verify_report(
    report: dict[str, Any],
    rpc: JsonRpc,
    abi: list[dict[str, Any]],
    *,
    contract: str | None = None,
    anchors: str | None = None,
    practice: str | None = None,
    batch_blocks: int = 2000,
) -> VerifyResult:
    """Check ``report`` against the chain behind ``rpc`` (see the module docstring). ``abi`` holds the events
    of the ledger and of its receipt anchors; ``anchors`` defaults to the report's.

    Raises:
        AuditError: the node serves another chain than the report's, the block range is beyond its head, or
            the anchors contract does not serve the ledger.
        NodeError: the node fails.
    """
    chain_id = rpc.chain_id()
    if chain_id != report["chain_id"]:
        raise AuditError(f"the report is for chain {report['chain_id']}, the node serves chain {chain_id}")
    address = (contract or report["contract"]).lower()
    first, last = int(report["block_range"]["from"]), int(report["block_range"]["to"])
    head = rpc.block_number()
    if last > head:
        raise AuditError(f"the report covers blocks up to {last}, beyond the node's head")
    scan, range_problems = _scan_range(rpc, address, first, last, head, report["period"])
    anchors_address = anchors or report.get("anchors")
    addresses = [address]
    if anchors_address is not None:
        _check_anchors_serve(rpc, str(anchors_address), address)
        addresses.append(str(anchors_address).lower())
    department = (report.get("department") or {}).get("id")
    codec = EventCodec(abi)
    lineage = Lineage(remember_deliveries=10**9)
    chain: dict[int, EventRecord] = {}
    #: The parties of each event of the report's period its department is no party to: a row stating one is
    #: named for it (NOT_THE_DEPARTMENTS), not as a row the chain lacks.
    others: dict[int, set[int]] = {}
    #: Every batch anchored in the range, selected or not: carried receipts are checked against it.
    anchored: dict[tuple[int, int], EventRecord] = {}
    #: Every delivery recorded in the range (record time, id): the population inspections draw from.
    recorded: list[tuple[int, bytes]] = []
    for log, header in rpc.logs_with_headers(addresses, scan.first, scan.last, batch_blocks=batch_blocks):
        number = quantity(log["blockNumber"])
        name, fields = codec.decode(log["topics"], log["data"])
        record = lineage.resolve(
            EventRecord(
                block_number=number,
                block_hash=str(header["hash"]).lower(),
                block_time=quantity(header["timestamp"]),
                tx_hash=str(log["transactionHash"]).lower(),
                tx_index=quantity(log["transactionIndex"]),
                log_index=quantity(log["logIndex"]),
                address=str(log["address"]),
                event=name,
                fields=fields,
            )
        )
        due = scan.due(record.block_number, record.block_time)
        if due and _selected(record, report["period"], department):
            chain[record.seq] = record
        elif due and _selected(record, report["period"], None):
            others[record.seq] = record.departments()
        if record.event == BATCH_ANCHORED:
            anchored[(record.fields["grantId"], record.fields["firstSequence"])] = record
        elif record.event == "DeliveryRecorded":
            recorded.append((record.fields["recordedAt"], bytes.fromhex(record.fields["deliveryId"][2:])))

    result = VerifyResult(rows=len(report["rows"]), chain_events=len(chain))
    result.addresses_from_report = [
        name
        for name, given, stated in (
            ("ledger", contract, report["contract"]),
            ("anchors", anchors, report.get("anchors")),
            ("practice", practice, report.get("practice")),
        )
        if given is None and stated is not None
    ]
    problems = result.problems
    problems.extend(range_problems)
    problems.extend(_header_problems(report, lineage))
    problems.extend(_stated_addresses(report, address, anchors_address))
    seen: set[int] = set()
    previous: int | None = None
    for position, row in enumerate(report["rows"]):
        label = f"row {row.get('row')}"
        unknown = sorted(set(row) - set(REPORT_COLUMNS))
        if unknown:
            problems.append(f"{label}: {', '.join(unknown)} not a column of a report row")
        block_number, log_index = row.get("block_number"), row.get("log_index")
        if type(block_number) is not int or type(log_index) is not int:
            problems.append(
                f"{label}: block_number {block_number!r} / log_index {log_index!r} do not locate a log "
                "(integers expected)"
            )
            continue
        seq = seq_of(block_number, log_index)
        if seq in seen:
            problems.append(
                f"{label}: given twice (block {block_number} log {log_index} is an earlier row's too)"
            )
        elif previous is not None and seq <= previous:
            problems.append(
                f"{label}: out of chain order (block {block_number} log {log_index} "
                "comes before or equals the previous row's)"
            )
        previous = seq if previous is None else max(previous, seq)
        found = chain.get(seq)
        if found is None and seq in others:
            problems.append(not_the_departments(label, department, others[seq]))
            continue
        if found is None:
            problems.append(
                f"{label}: no {row.get('event')} of the report's selection at block {block_number} "
                f"log {log_index} on chain"
            )
            continue
        seen.add(seq)
        problems.extend(_row_problems(label, row, _expected_row(found, position)))
    for seq in sorted(set(chain) - seen):
        r = chain[seq]
        where = "" if r.block_number <= last else f", in its period after its last block {last}"
        problems.append(
            f"missing row: {r.event} at block {r.block_number} log {r.log_index} (tx {r.tx_hash}) is on "
            f"chain but not in the report{where}"
        )
    if report.get("receipt_batches") is not None:
        problems.extend(_receipt_problems(report, anchored, chain, result, department))
    if anchors_address is None:
        # Neither given nor named by the report: a report that left its anchors out, with every batch row,
        # verified as the ledger's alone. The chain tells whether receipts were anchored for this ledger.
        topics = [codec.topic_of(BATCH_ANCHORED)]
        problems.extend(_unread_contracts(rpc, address, topics, scan, batch_blocks, "--anchors"))
    if report.get("practice") is not None or practice:
        from node.audit.practice_report import (
            InspectionLogs,
            expired_inspections,
            outcomes_without_verdict,
            practice_problems,
            practice_rows,
            sample_problems,
        )

        # A trusted --practice checks the report's practice even when it has no such section: leaving the
        # section out would otherwise hide every demand, evaluation and inspection of the period.
        stated = report.get("practice")
        if stated is None:
            stated = {"address": practice, "rows": []}
        practice = practice or (str(stated.get("address", "")) if isinstance(stated, dict) else "")
        expected = []
        inspections: dict[int, InspectionLogs] = {}
        #: The parties of each practice event of the period the department is no party to, by location.
        practice_others: dict[tuple[int, int], set[int]] = {}
        if practice:
            _check_anchors_serve(rpc, practice, address, "the sharing practice contract --practice")

            def parties(agreement_id: int) -> set[int]:
                known = lineage.agreements.get(agreement_id)
                return set() if known is None else {known[2], known[3]}

            expected = practice_rows(
                rpc, practice, scan.first, scan.last, period=report["period"], department=department,
                agreement_parties=parties, batch_blocks=batch_blocks, inspections=inspections,
                grant_provider=lambda g: grant.provider if (grant := lineage.grants.get(g)) else None,
                others=practice_others,
            )  # fmt: skip
            expected = [r for r in expected if scan.due(r["block_number"], r["block_time"])]
        problems.extend(
            practice_problems(stated, expected, practice, department=department, others=practice_others)
        )

        from verifier.onchain import ChainCheckError
        from verifier.sampling import AnchoredBatch, Population, sample_version

        # Versions 2 and 3 draw the receipts of the practice contract's anchors too: read with the ledger's
        # logs when they are the anchors this verification reads, else the samples cannot be recomputed here.
        try:
            version, drawn_anchors = sample_version(rpc, practice) if practice else (1, None)
        except ChainCheckError as exc:
            raise NodeError(exc.message) from None
        if drawn_anchors is not None and drawn_anchors.lower() != str(anchors_address or "").lower():
            problems.append(
                f"the sharing practice contract draws the receipts anchored by {drawn_anchors}, which this "
                f"verification did not read: pass --anchors {drawn_anchors} to recompute its samples"
            )

        def population(period_from: int, period_to: int) -> Population:
            deliveries = [d for at, d in recorded if period_from <= at < period_to]
            if drawn_anchors is None:
                return Population(deliveries)
            fields = ("grantId", "firstSequence", "leafCount", "provider", "consumer", "anchoredAt")
            batches = [
                AnchoredBatch(*(int(r.fields[f]) for f in fields))
                for r in anchored.values()
                if period_from <= int(r.fields["anchoredAt"]) < period_to
            ]
            return Population(deliveries, batches)

        problems.extend(
            sample_problems(
                inspections, {(r["block_number"], r["log_index"]) for r in expected}, population=population,
                block_hash=lambda n: str(rpc.blocks([n])[0]["hash"]).lower(), version=version,
            )
        )  # fmt: skip
        result.practice_events = len(expected)
        result.expired_inspections = expired_inspections(inspections, scan.last)
        located = {(r["block_number"], r["log_index"]) for r in expected}
        result.outcomes_without_verdict = outcomes_without_verdict(inspections, located)
    if not practice:
        from node.audit.practice_report import practice_abi

        topics = list(EventCodec(practice_abi()).names.values())
        problems.extend(_unread_contracts(rpc, address, topics, scan, batch_blocks, "--practice"))
    return result


def _unread_contracts(
    rpc: JsonRpc, ledger: str, topics: list[str], scan: _Scan, batch_blocks: int, option: str
) -> list[str]:
    """A problem for each contract serving ``ledger`` (its ``ledger()`` view) that emitted one of ``topics``
    in the blocks read, when the verification read no such contract: its events belong in the report."""
    emitters: set[str] = set()
    for start in range(scan.first, scan.last + 1, batch_blocks):
        end = min(start + batch_blocks - 1, scan.last)
        found = rpc.call("eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(end), "topics": [topics]})
        emitters |= {str(log["address"]).lower() for log in found if not log.get("removed")}
    unread = []
    for emitter in sorted(emitters):
        try:
            _check_anchors_serve(rpc, emitter, ledger)
        except AuditError:
            continue  # another ledger's, or not a contract beside any ledger
        unread.append(
            f"{emitter} serves ledger {ledger} and has events in blocks {scan.first}..{scan.last}, which "
            f"this verification did not read: the report names no such contract; pass {option} {emitter}"
        )
    return unread


_LEDGER_SELECTOR = "0x" + keccak(text="ledger()")[:4].hex()


@dataclass(frozen=True)
class _Scan:
    """The blocks the verifier reads for a report of blocks up to ``report_last``, and which of their events
    the report must hold."""

    first: int
    last: int
    report_last: int
    #: The time of the report's last block, when blocks after it are read.
    report_last_time: int | None = None

    def due(self, block_number: int, block_time: int) -> bool:
        """Whether an event of the report's selection at ``block_number`` must be in the report: up to its
        last block, and after it only when stamped with a later second. Blocks sharing the last block's
        second came after the report (a node stamps several blocks with one second), and the period of a
        report ends a second after its last block (:func:`node.audit.reports.build_report`): a report cut
        there by its author is the honest report of that block."""
        if block_number <= self.report_last or self.report_last_time is None:
            return True
        return block_time > self.report_last_time


def _scan_range(
    rpc: JsonRpc, ledger: str, first: int, last: int, head: int, period: dict[str, Any]
) -> tuple[_Scan, list[str]]:
    """The blocks to read, and what the report's ``block_range`` leaves out of its period and history.

    A report holds every event of its period up to its last block, from the ledger's deployment on (its
    lineage starts there). Its own block range cannot be taken on trust: raised, it would leave out the
    period's first rows and the grants they resolve through; lowered, its last rows. So the range is widened
    to the chain's start when the ledger had code before ``first`` (or this node keeps no state that old to
    tell), and to the head when a block after ``last`` is still inside the period: every event the wider
    range brings that the report must hold (:meth:`_Scan.due`) is then named as a missing row.
    """
    problems = []
    scan_from = first
    if first > 0:
        try:
            code = str(rpc.call("eth_getCode", ledger, hex(first - 1)))
        except DxlError:
            code = None  # a node without that block's state: read the ledger's history from the start
        if code not in ("0x", "0x0"):
            scan_from = 0
        if code is not None and code not in ("0x", "0x0"):
            problems.append(
                f"block_range starts at block {first}, but the ledger {ledger} has code at block "
                f"{first - 1}: its earlier history is left out"
            )
    if last < head and rpc.block_time(last + 1) < period["to"]:
        return _Scan(scan_from, head, last, rpc.block_time(last)), problems
    return _Scan(scan_from, last, last), problems


def _check_anchors_serve(
    rpc: JsonRpc, anchors: str, ledger: str, what: str = "the receipt anchors contract --anchors"
) -> None:
    """Asked at the block the re-check reads, else at the head (:data:`~verifier.rpc.SET_ONCE`): ``ledger()``
    is set once, at deployment, and a node keeps no state of old blocks (the embedded node keeps 64, Besu and
    geth 128 unless they archive), so asking at the report's last block failed for any report made more than
    a minute before on the embedded node.

    Raises:
        AuditError: ``anchors`` is not a contract beside ``ledger`` (its ``ledger()`` view); ``what`` names
            the kind of contract and the option that gives a trusted address.
    """
    try:
        answer = rpc.call("eth_call", {"to": anchors, "data": _LEDGER_SELECTOR}, SET_ONCE)
    except DxlError as exc:
        raise AuditError(f"{anchors} does not answer ledger(): {exc}") from None
    word = bytes.fromhex(str(answer).removeprefix("0x"))
    if len(word) != 32 or "0x" + word[12:].hex() != ledger.lower():
        kind, option = what.rsplit(" ", 1)
        raise AuditError(
            f"{anchors} is not {kind} of ledger {ledger}; give the trusted address with {option}"
        )


_BATCH_KEYS = frozenset({"grant_id", "first_sequence", "receipts"})
_RECEIPT_KEYS = frozenset(Receipt._fields)


def _carried_receipts(entry: Any) -> tuple[Any, Any, list[Receipt] | None]:
    """A carried batch's grant, first sequence and receipts (None: declared not carried).

    Raises:
        ProofError: the entry or one of its receipts is malformed.
    """
    # Exactly the keys a report writes: anything else would be carried along as if verified, and a batch
    # without "receipts" would pass for one declared not carried.
    if (
        not isinstance(entry, dict)
        or set(entry) != _BATCH_KEYS
        or not (entry["receipts"] is None or isinstance(entry["receipts"], list))
    ):
        raise InvalidProofError(
            "a carried batch is an object with grant_id, first_sequence and receipts (null if not carried), "
            "and nothing else"
        )
    grant, first = entry.get("grant_id"), entry.get("first_sequence")
    if type(grant) is not int or type(first) is not int:
        raise InvalidProofError("grant_id and first_sequence must be integers")
    carried: list[Any] | None = entry["receipts"]
    if carried is None:
        return grant, first, None
    receipts = []
    for i, raw in enumerate(carried):
        if not isinstance(raw, dict) or set(raw) != _RECEIPT_KEYS:
            raise InvalidProofError(f"receipt {i} holds other keys than a receipt's {sorted(_RECEIPT_KEYS)}")
        try:
            receipts.append(Receipt.from_json(raw))
        except ProofError as exc:
            raise InvalidProofError(f"receipt {i} is malformed: {exc.message}") from None
    return grant, first, receipts


def _receipt_problems(
    report: dict[str, Any],
    anchored: dict[tuple[int, int], EventRecord],
    chain: dict[int, EventRecord],
    result: VerifyResult,
    department: int | None,
) -> list[str]:
    """The carried receipts of each batch against its anchoring on chain (root and leaf count)."""
    carried = report["receipt_batches"]
    if not isinstance(carried, list):
        return [receipt_problem("?", "?", "RECEIPT_BATCH_MALFORMED", detail="receipt_batches is not a list")]
    problems: list[str] = []
    seen: set[tuple[int, int]] = set()
    # Where each delivery id was met first: a single delivery among the rows, or a carried receipt. The chain
    # cannot tell an id anchored twice (the contract never sees a batch's leaves, and the ledger's duplicate
    # check never sees the anchors'); only the leaves can, and only those this report carries.
    first_use: dict[bytes, str] = {}
    for row in report["rows"]:
        if isinstance(row, dict) and row.get("event") == "DeliveryRecorded":
            try:
                recorded = bytes.fromhex(str(row.get("delivery_id"))[2:])
            except ValueError:
                continue  # the row's own check names a malformed id
            first_use.setdefault(recorded, f"the delivery of row {row.get('row')}")
    for position, entry in enumerate(carried):
        try:
            grant, first, receipts = _carried_receipts(entry)
        except ProofError as exc:
            problems.append(
                receipt_problem(f"#{position}", "?", "RECEIPT_BATCH_MALFORMED", detail=exc.message)
            )
            continue
        key = (grant, first)
        if key in seen:
            problems.append(receipt_problem(grant, first, "RECEIPT_BATCH_DUPLICATED"))
            continue
        seen.add(key)
        on_chain = anchored.get(key)
        if on_chain is None:
            problems.append(receipt_problem(grant, first, "RECEIPT_BATCH_UNKNOWN"))
            continue
        where = f"receipts of batch (grant {grant}, first sequence {first})"
        if not covers(department, on_chain.departments()):
            problems.append(not_the_departments(where, department, on_chain.departments()))
            continue
        if receipts is None:
            # Declared, not hidden: the report's author does not hold these receipts (another service
            # anchored them). Counted and said in the result; an entry left out altogether is a problem.
            result.batches_uncarried += 1
            continue
        provider = on_chain.fields["provider"]
        for i, receipt in enumerate(receipts):
            if receipt.grant_id != grant:
                problems.append(
                    receipt_problem(grant, first, "RECEIPT_OTHER_GRANT", index=i, grant=receipt.grant_id)
                )
            # A leaf the contract anchored but would not prove: its root alone does not make it a receipt.
            delivery_id = "0x" + receipt.delivery_id.hex()
            for name in undeliverable_fields(receipt, provider):
                values = {
                    "delivery_id": delivery_id,
                    "provider": provider,
                    "hash_algorithm": receipt.hash_algorithm,
                }
                problems.append(receipt_problem(grant, first, _UNDELIVERABLE_CODES[name], index=i, **values))
            here = f"receipt {i} of batch (grant {grant}, first sequence {first})"
            other = first_use.setdefault(receipt.delivery_id, here)
            if other != here:
                duplicate = receipt_problem(
                    grant, first, "RECEIPT_DUPLICATE", index=i, delivery_id=delivery_id, other=other
                )
                problems.append(duplicate)
        leaf_count, root = on_chain.fields["leafCount"], on_chain.fields["root"]
        counts = {
            "carried": counted(len(receipts), "receipt"),
            "anchored": leaf_count,
            "count": abs(leaf_count - len(receipts)),
        }
        if len(receipts) < leaf_count:
            problems.append(receipt_problem(grant, first, "RECEIPTS_OMITTED", **counts))
            continue
        if len(receipts) > leaf_count:
            problems.append(receipt_problem(grant, first, "RECEIPTS_ADDED", **counts))
            continue
        computed = "0x" + batch_root([r.leaf_hash() for r in receipts]).hex()
        if computed != root:
            altered = receipt_problem(grant, first, "RECEIPT_ALTERED", computed=computed, anchored=root)
            problems.append(altered)
        else:
            result.receipts_checked += len(receipts)
    for record in chain.values():
        key = (record.fields.get("grantId"), record.fields.get("firstSequence"))
        if record.event == BATCH_ANCHORED and key not in seen:
            row = next(
                (
                    r.get("row")
                    for r in report["rows"]
                    if r.get("block_number") == record.block_number and r.get("log_index") == record.log_index
                ),
                None,
            )
            where = row if row is not None else "not in the report"
            count = record.fields["leafCount"]
            missing = receipt_problem(*key, "RECEIPTS_MISSING", row=where, anchored=counted(count, "receipt"))
            problems.append(missing)
    return problems


def _row_problems(label: str, row: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """One line per column of ``row`` that differs from what the chain says (``expected``)."""
    problems = []
    for column in REPORT_COLUMNS:
        if column not in row:
            problems.append(f"{label}: column {column} is missing (on chain: {expected[column]!r})")
            continue
        actual, want = row[column], expected[column]
        if column == "address" and isinstance(actual, str):
            actual = actual.lower()  # one address, whatever its checksum casing
        if column == "row" and not same_value(actual, want):
            problems.append(
                f"{label}: stands at position {want} (rows dropped, added or renumbered before it)"
            )
        elif column == "fields" and isinstance(actual, dict):
            for name in sorted(set(want) | set(actual)):
                if name not in actual or name not in want or not same_value(actual[name], want[name]):
                    problems.append(
                        f"{label}: field {name} is {actual.get(name)!r} in the report, "
                        f"{want.get(name)!r} on chain"
                    )
        elif not same_value(actual, want):
            problems.append(f"{label}: {column} is {actual!r} in the report, {want!r} on chain")
    return problems


def _stated_addresses(report: dict[str, Any], ledger: str, anchors: Any) -> list[str]:
    """The report's ``contract`` and ``anchors`` where they name other contracts than the ones verified (given
    from a trusted source): its rows are those of the contracts read, and its header would pass them off as
    another's. A report without ``anchors`` (made before them) names none. The practice section's address is
    held the same way (:func:`node.audit.practice_report.practice_problems`)."""
    problems = []
    for key, kind, option, verified in (
        ("contract", "ledger", "--contract", ledger),
        ("anchors", "receipt anchors", "--anchors", anchors),
    ):
        stated = report.get(key)
        if stated is not None and verified is not None and str(stated).lower() != str(verified).lower():
            problems.append(
                f"{key}: the report names the {kind} {stated}, the verification read {str(verified).lower()} "
                f"({option}): its rows are not that contract's"
            )
    return problems


def _header_problems(report: dict[str, Any], lineage: Lineage) -> list[str]:
    """What the report says about itself that the chain or its own rows contradict."""
    problems = []
    rows = report["rows"]
    for key in sorted(set(report) - {*REPORT_HEADER, "rows"}):
        problems.append(f"{key}: not a field of a report, and nothing in it is verified")
    problems.extend(
        f"{key} is null: {why}" for key, why in NEVER_NULL.items() if key in report and report[key] is None
    )
    # Inside a section too: a label or a name written beside its fields passed as verified.
    for section, fields in _SECTION_FIELDS.items():
        value = report.get(section)
        for key in sorted(set(value) - fields) if isinstance(value, dict) else ():
            problems.append(
                f"{section}: {key} is not a field of a report's {section}, and nothing in it is verified"
            )
    if "row_count" in report and not same_value(report["row_count"], len(rows)):
        problems.append(
            f"row_count is {report['row_count']!r} in the report, it holds {counted(len(rows), 'row')}"
        )
    period = report["period"]
    for bound in ("from", "to"):
        # Left out by reports that never wrote it; given, it must spell the bound (null included).
        if f"{bound}_iso" not in period:
            continue
        stated = period[f"{bound}_iso"]
        if stated != iso_time(period[bound]):
            shown = "null" if stated is None else repr(stated)
            problems.append(f"period {bound}_iso is {shown}, {period[bound]} is {iso_time(period[bound])!r}")
    department = report.get("department")
    if department is not None and department.get("code") is not None:
        code = lineage.departments.get(department.get("id"))
        if department["code"] != code:
            problems.append(
                f"department {department.get('id')} is {code!r} on chain, "
                f"{department['code']!r} in the report"
            )
    return problems
