"""Editing an audit report as a forger would, one column of one row of each kind at a time, in its JSON
document or as a spreadsheet edits its CSV file's cells; and what ``dxl audit verify`` must then say."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from node.audit.verify import REPORT_COLUMNS, load_report
from verifier.text import iso_time


def other(value: Any) -> Any:
    """A different value of the same JSON type (hex stays hex)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def changed(column: str, row: dict[str, Any]) -> Any:
    """A different value of the same kind for ``row``'s cell in ``column``."""
    value = row[column]
    if column == "time":
        return iso_time(row["block_time"] + 1)
    if column == "event":
        return "DeliveryDisputed" if value != "DeliveryDisputed" else "DeliveryAcknowledged"
    if column == "fields":
        name = sorted(value)[0]
        return {**value, name: other(value[name])}
    if value is None:
        return "0x" + "11" * 32 if column in ("delivery_id", "commitment") else 7
    return other(value)


def expected_fragment(column: str) -> str:
    if column == "row":
        return "stands at position"
    if column in ("block_number", "log_index"):
        return "on chain"
    if column == "fields":
        return "field "
    return f"{column} is "


def one_row_per_kind(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for row in rows:
        kinds.setdefault(row["event"], row)
    return list(kinds.values())


def assert_each_named(problems: list[str], rows: list[dict[str, Any]], column: str) -> None:
    for row in rows:
        label = f"row {row['row']}: "
        assert any(p.startswith(label) and expected_fragment(column) in p for p in problems), (
            row["event"],
            column,
            problems,
        )


def rewrite_csv(path: Path, column: str) -> list[dict[str, Any]]:
    """Edit ``column`` in one row of each kind of ``path`` as a spreadsheet would: the cell's text."""
    text = path.read_bytes().decode("utf-8")
    preamble = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    rows = list(csv.DictReader(io.StringIO(text[len(preamble) :], newline="")))
    typed = load_report(path)["rows"]
    seen: set[str] = set()
    edited = []
    for cells, row in zip(rows, typed, strict=True):
        if row["event"] in seen:
            continue
        seen.add(row["event"])
        new = changed(column, row)
        cells[column] = new if isinstance(new, str) else json.dumps(new, separators=(",", ":"))
        edited.append({**row, column: new})
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(preamble + out.getvalue(), encoding="utf-8", newline="")
    return edited
