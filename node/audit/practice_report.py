"""The practice section of an audit report: demands, evaluations and inspections of the period, read from the
``SharingPractice`` contract's logs, and their re-check against any node.

A report reads the practice contract's events from its logs, not from the audit index (which keeps them apart,
``audit_practice_events``, for the API's lists), and carries them as ``practice`` =
``{"address": ..., "rows": [...]}``, each row an event with its chain location and decoded fields, selected
like the report's rows: block time in the period and, for a department's report, the department is a party
(a demand's publisher or addressee, also for its withdrawal; an answer's answerer and its demand's
publisher, also for the answer's rejection; an evaluated
agreement's provider or consumer; an inspected delivery's provider; openings and draws of inspections belong
to no department), by the one rule of every row of a report (:func:`node.audit.verify.covers`). ``dxl audit
verify`` derives the same rows from the node and names each missing, added or changed one, and one of another
department's padded into a department's report by ``NOT_THE_DEPARTMENTS``, as a row of the ledger's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node.audit.events import EventCodec
from node.audit.verify import covers, not_the_departments, same_value
from node.rpc import JsonRpc, quantity
from node.types import InspectionOutcome
from verifier.abi import decode, encode, selector
from verifier.sampling import BLOCKHASH_WINDOW, Population, draw_sample, slot_of
from verifier.text import counted, iso_time

#: Per-row keys of a practice row, in order.
PRACTICE_COLUMNS = (
    "event",
    "time",
    "block_time",
    "block_number",
    "block_hash",
    "tx_hash",
    "log_index",
    "fields",
)


def practice_abi() -> list[dict[str, Any]]:
    """The events of ``SharingPractice``, from its build artifact."""
    from node.compiler import load_artifact

    return [e for e in load_artifact("SharingPractice").abi if e.get("type") == "event"]


@functools.cache
def _demand_view() -> dict[str, Any]:
    """The ``demand(uint64)`` view of ``SharingPractice``, from its build artifact."""
    from node.compiler import load_artifact

    return next(e for e in load_artifact("SharingPractice").abi if e.get("name") == "demand")


class _DemandParties:
    """Who published each demand and whom it addressed (0: no one): from the ``DemandPublished`` logs read,
    else the contract's ``demand`` view (a demand published before the blocks read; neither ever changes)."""

    def __init__(self, rpc: JsonRpc, practice: str) -> None:
        self.rpc, self.practice, self.known = rpc, practice, dict[int, tuple[int, int]]()

    def __call__(self, demand_id: int) -> tuple[int, int]:
        if demand_id not in self.known:
            view = _demand_view()
            data = selector(view) + encode(view["inputs"], [demand_id])
            raw = self.rpc.call("eth_call", {"to": self.practice, "data": "0x" + data.hex()}, "latest")
            (record,) = decode(view["outputs"], bytes.fromhex(str(raw)[2:]))
            self.known[demand_id] = (int(record[0]), int(record[1]))  # Demand.publisher, .addressee
        return self.known[demand_id]


def _parties(
    name: str,
    fields: dict[str, Any],
    agreement_parties: Callable[[int], set[int]],
    grant_provider: Callable[[int], int | None],
    demand_parties: Callable[[int], tuple[int, int]],
) -> set[int]:
    if name == "DemandPublished":
        return {int(fields["publisher"]), int(fields["addressee"])} - {0}
    # An answer, and its rejection, are its demand's publisher's as much as the answerer's.
    if name in ("DemandAnswered", "DemandAnswerRejected"):
        return {int(fields["answeredBy"]), demand_parties(int(fields["demandId"]))[0]}
    if name == "DemandWithdrawn":  # the addressee's as much: it no longer owes an answer
        return set(demand_parties(int(fields["demandId"]))) - {0}
    if name == "EvaluationRecorded":
        return agreement_parties(int(fields["agreementId"])) | {int(fields["scorer"])}
    if name == "InspectionOutcomeRecorded":
        slot = slot_of(bytes.fromhex(str(fields["deliveryId"])[2:]))
        if slot is not None:  # a drawn receipt: its grant's provider
            provider = grant_provider(slot[0])
            return set() if provider is None else {provider}
        return {int(str(fields["deliveryId"])[2:10], 16)}  # the delivery id's namespace is its provider
    return set()


def practice_rows(
    rpc: JsonRpc,
    practice: str,
    first: int,
    last: int,
    *,
    period: dict[str, Any],
    department: int | None,
    agreement_parties: Callable[[int], set[int]],
    grant_provider: Callable[[int], int | None] = lambda _grant: None,
    batch_blocks: int = 2000,
    inspections: dict[int, InspectionLogs] | None = None,
    others: dict[tuple[int, int], set[int]] | None = None,
) -> list[dict[str, Any]]:
    """The practice rows of blocks ``first..last`` selected by ``period`` and ``department``, in chain order.
    ``inspections``, if given, is filled with every inspection's logs in those blocks, selected or not;
    ``others``, with the parties of each event of the period ``department`` is no party to, by (block number,
    log index). The outcome of a drawn receipt (keyed by its slot) belongs to its grant's provider,
    ``grant_provider``.

    Raises:
        NodeError: the node fails.
        AuditError: a log does not decode.
    """
    codec = EventCodec(practice_abi())
    demands = _DemandParties(rpc, practice)
    rows: list[dict[str, Any]] = []
    for log, header in rpc.logs_with_headers(practice, first, last, batch_blocks=batch_blocks):
        number = quantity(log["blockNumber"])
        block_time = quantity(header["timestamp"])
        name, fields = codec.decode(log["topics"], log["data"])
        if name == "DemandPublished":
            demands.known[int(fields["demandId"])] = (int(fields["publisher"]), int(fields["addressee"]))
        if inspections is not None and name.startswith("Inspection"):
            inspections.setdefault(int(fields["inspectionId"]), InspectionLogs()).add(
                name, fields, (number, quantity(log["logIndex"]))
            )
        if not period["from"] <= block_time < period["to"]:
            continue
        # A consortium's report holds every row: no demand's parties are read for it.
        parties = set() if department is None else _parties(
            name, fields, agreement_parties, grant_provider, demands
        )  # fmt: skip
        if not covers(department, parties):
            if others is not None:
                others[(number, quantity(log["logIndex"]))] = parties
            continue
        rows.append(
            {
                "event": name,
                "time": iso_time(block_time),
                "block_time": block_time,
                "block_number": number,
                "block_hash": str(header["hash"]).lower(),
                "tx_hash": str(log["transactionHash"]).lower(),
                "log_index": quantity(log["logIndex"]),
                # Through JSON, as the report file holds it (lists, not tuples).
                "fields": json.loads(json.dumps(fields)),
            }
        )
    return rows


@dataclass
class InspectionLogs:
    """One inspection as the practice contract's logs tell it: its opening, its seed, its outcomes."""

    opened: dict[str, Any] | None = None
    seed: str | None = None
    #: (block number, log index) of each outcome -> the delivery id it is about.
    outcomes: dict[tuple[int, int], str] = field(default_factory=dict)
    #: (block number, log index) of each outcome -> the outcome (``InspectionOutcome``) and evidence hash.
    recorded: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)

    def add(self, name: str, fields: dict[str, Any], location: tuple[int, int]) -> None:
        if name == "InspectionOpened":
            self.opened = fields
        elif name == "InspectionDrawn":
            self.seed = str(fields["seed"]).lower()
        elif name == "InspectionOutcomeRecorded":
            self.outcomes[location] = str(fields["deliveryId"]).lower()
            self.recorded[location] = (int(fields["outcome"]), str(fields["evidenceHash"]).lower())


def sample_problems(
    inspections: dict[int, InspectionLogs],
    selected: set[tuple[int, int]],
    *,
    population: Callable[[int, int], Population],
    block_hash: Callable[[int], str],
    version: int,
) -> list[str]:
    """Outcomes among ``selected`` (the report's practice rows, by location) that the inspection's sample does
    not support: the contract records an outcome for any delivery it knows, so an auditor's key could score
    a delivery that was never drawn. The sample is recomputed as :mod:`verifier.sampling` derives it, from
    the seed the chain holds (checked to be the hash of the committed block) and ``population(from, to)``,
    the deliveries the ledger recorded in the period and (versions 2 and 3) the receipts anchored in it,
    sorted, drawn by derivation ``version`` (the practice contract's ``sampleVersion()``).
    """
    problems = []
    for number, logs in sorted(inspections.items()):
        outcomes = {at: d for at, d in logs.outcomes.items() if at in selected}
        if not outcomes:
            continue
        if logs.opened is None or logs.seed is None:
            problems.append(f"inspection {number}: outcomes recorded, but no opening and draw of it on chain")
            continue
        opened = logs.opened
        if block_hash(int(opened["seedBlock"])) != logs.seed:
            problems.append(
                f"inspection {number}: its seed {logs.seed} is not the hash of block {opened['seedBlock']}"
            )
            continue
        pool = population(int(opened["periodFrom"]), int(opened["periodTo"]))
        sample = {"0x" + d.hex() for d in draw_sample(bytes.fromhex(logs.seed[2:]), number, pool,
                                                     int(opened["sampleSize"]), version=version)}  # fmt: skip
        for (block, index), delivery in sorted(outcomes.items()):
            if delivery not in sample:
                problems.append(
                    f"inspection {number}: the outcome at block {block} log {index} is about delivery "
                    f"{delivery}, which its sample ({len(sample)} of "
                    f"{counted(pool.size, 'delivery', 'deliveries')}, drawn from block "
                    f"{opened['seedBlock']}'s hash) does not hold"
                )
    return problems


def outcomes_without_verdict(
    inspections: dict[int, InspectionLogs], selected: set[tuple[int, int]]
) -> list[dict[str, Any]]:
    """Passes and failures among ``selected`` (the report's practice rows, by location) recorded with a zero
    evidence hash: no verdict on a presentation stands behind them. The service records the SHA-256 of the
    verdict it kept (zero only with not presented); the contract takes anything from an auditor's key. Not a
    problem of the report, which holds what the chain does; a fact of its auditor's conduct to show."""
    zero = "0x" + "00" * 32
    judged = (int(InspectionOutcome.PASSED), int(InspectionOutcome.FAILED))
    return [
        {"inspection_id": number, "delivery_id": logs.outcomes[at], "block_number": at[0], "log_index": at[1],
         "outcome": InspectionOutcome(outcome).name.lower()}
        for number, logs in sorted(inspections.items())
        for at, (outcome, evidence) in sorted(logs.recorded.items())
        if at in selected and outcome in judged and evidence == zero
    ]  # fmt: skip


def expired_inspections(inspections: dict[int, InspectionLogs], last_block: int) -> list[int]:
    """Inspections opened in the logs read up to ``last_block`` and never drawn though no block after it can
    draw them any more (``last_block`` is at least 256 past the seed block): their sample was never fixed. Not
    a problem of the report, which holds what the chain does; a fact of its auditor's conduct to show."""
    return [
        number for number, logs in sorted(inspections.items())
        if logs.opened is not None and logs.seed is None
        and int(logs.opened["seedBlock"]) + BLOCKHASH_WINDOW <= last_block
    ]  # fmt: skip


def practice_problems(
    stated: Any,
    expected: list[dict[str, Any]],
    address: str,
    *,
    department: int | None = None,
    others: dict[tuple[int, int], set[int]] | None = None,
) -> list[str]:
    """Where a report's ``practice`` section differs from the rows derived from the chain: a row the chain
    does not have, a column that differs in value or JSON type, a key that is no column, a row out of chain
    order or given twice, and a row of the chain the report lacks. A row of ``others`` (by location: the
    parties of the period's events ``department`` is no party to, from :func:`practice_rows`) is named
    ``NOT_THE_DEPARTMENTS``."""
    if not isinstance(stated, dict) or not isinstance(stated.get("rows"), list):
        return ["practice: must be an object with an address and a list of rows"]
    if str(stated.get("address", "")).lower() != address.lower():
        return [f"practice: address {stated.get('address')!r} is not the verified {address}"]
    # A claim beside the address and rows (a tally, a label) passed as verified.
    problems = [
        f"practice: {key} is not a field of a report's practice, and nothing in it is verified"
        for key in sorted(set(stated) - {"address", "rows"})
    ]
    by_location = {(r["block_number"], r["log_index"]): r for r in expected}
    seen = set()
    previous: tuple[int, int] | None = None
    for i, row in enumerate(stated["rows"]):
        stated_key = (row.get("block_number"), row.get("log_index")) if isinstance(row, dict) else None
        # Integers only: True would find the log at index 1, as 1 == True in a dict key.
        key: tuple[int, int] | None = None
        if stated_key is not None and type(stated_key[0]) is int and type(stated_key[1]) is int:
            key = (stated_key[0], stated_key[1])
        found = by_location.get(key) if key is not None else None
        if found is None and others is not None and key in others:
            problems.append(not_the_departments(f"practice row {i}", department, others[key]))
            continue
        if key is None or found is None or not isinstance(row, dict):
            problems.append(
                f"practice row {i}: no practice event of the selection at block/log {stated_key} on chain"
            )
            continue
        if previous is not None and key <= previous:
            # A row given twice or moved: the report's rows are in chain order, each event once.
            what = "given twice" if key in seen else "out of chain order"
            problems.append(
                f"practice row {i} ({found['event']}): {what} (block {key[0]} log {key[1]} comes before or "
                "equals the previous row's)"
            )
        previous = key if previous is None else max(previous, key)
        seen.add(key)
        unknown = sorted(set(row) - set(PRACTICE_COLUMNS))
        if unknown:
            problems.append(f"practice row {i} ({found['event']}): {', '.join(unknown)} not a column")
        for column in PRACTICE_COLUMNS:
            if column not in row or not same_value(row[column], found[column]):
                problems.append(
                    f"practice row {i} ({found['event']}): {column} is {row.get(column)!r}, "
                    f"the chain says {found[column]!r}"
                )
    for key, r in by_location.items():
        if key not in seen:
            problems.append(
                f"missing practice row: {r['event']} at block {r['block_number']} log {r['log_index']} "
                f"(tx {r['tx_hash']}) is on chain but not in the report"
            )
    return problems
