"""A scorecard (:func:`node.audit.scorecard.compute_scorecard`) as a PDF file an auditor can file and send:
the department, the period, the chain position the figures were computed at, the charts' data as vector bar
charts and every indicator of the console's CSV export, in English or Chinese.

One generator for ``GET /audit/scorecard?format=pdf``, ``dxl audit scorecard --pdf FILE`` and the console's
PDF button (which fetches the API's): the same card at the same block gives the same bytes (reportlab's
invariant mode: no creation time, a document id derived from the content).

Chinese is written in the PDF's standard CID font ``STSong-Light`` (Adobe-GB1, not embedded: every PDF
reader carries it), so no font file ships with dxl. reportlab is imported when a PDF is made, not with this
module's callers: ``dxl --help`` and the service's start do not pay for it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from verifier.text import iso_time

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

#: The media type of the file, as the API answers it.
PDF_MEDIA_TYPE = "application/pdf"

DAY = 86400


class Language(StrEnum):
    """The language of the file's words (figures and indicator names are the same in both)."""

    EN = "en"
    ZH = "zh"


@dataclass(frozen=True)
class ChainPosition:
    """Where the scorecard's figures were read: the ledger contract on a chain, at a block and its time (the
    card's evaluation ``now``), as the index held it (:meth:`node.audit.service.AuditContext.caught_up`)."""

    chain_id: int
    ledger: str
    block: int
    block_time: int


# The file's words, by language; the console's (api/console/js/strings) where it says the same thing.
_WORDS: dict[Language, dict[str, str]] = {
    Language.EN: {
        "title": "Scorecard",
        ":": ": ",
        "department": "Department",
        "consortium": "Consortium (all departments)",
        "period": "Period",
        "period_text": "{start} to {end} (end excluded), evaluated at {at}",
        "chain": "Computed at",
        "chain_text": "chain {chain_id}, ledger {ledger}, block {block} ({time})",
        "deadline": "Response deadline",
        "deadline_text": "{n} working days",
        "charts": "Charts",
        "indicators": "All indicators",
        "indicator": "indicator",
        "value": "value",
        "unconditional": "unconditional",
        "conditional": "conditional",
        "not_shared": "not shared",
        "shareTypes": "Catalogued resources by share type",
        "shareRateByType": "Share rate by share type (resources with an agreement or delivery in the period)",
        "requests": "Requests received",
        "received": "received",
        "approved": "approved",
        "autoApproved": "approved on arrival",
        "rejected": "rejected",
        "pending": "pending",
        "withdrawn": "withdrawn",
        "overdue": "overdue",
        "responseTime": "Response time ({n} decisions), days; deadline {d} working days",
        "median": "median",
        "p90": "90th percentile",
        "deliveries": "Deliveries",
        "sent": "sent",
        "receivedDeliveries": "received",
        "acknowledged": "acknowledged",
        "disputed": "disputed",
        "refused": "refused",
        "rates": "Acknowledgement and dispute rates",
        "ackRate": "acknowledgement rate",
        "disputeRate": "dispute rate",
        "demand": "Demand met, by requesting department",
        "demandsReceived": "Demands received",
        "demandsAnswered": "answered with a resource",
        "demandsMet": "met (delivered since)",
        "declined": "declined",
        "demandsOpen": "not answered yet",
        "evaluations": "Evaluations (1-5)",
        "timeliness": "timeliness",
        "completeness": "completeness",
        "accuracy": "accuracy",
        "purpose_compliance": "purpose compliance",
        "inspections": "Inspections",
        "passed": "passed",
        "failed": "failed",
        "not_presented": "not presented",
        "inspectionsOverdue": "sampled and overdue",
        "none": "none in the period",
    },
    Language.ZH: {
        "title": "考核评分",
        ":": "：",
        "department": "部门",
        "consortium": "联盟（全部部门）",
        "period": "期间",
        "period_text": "{start} 至 {end}（不含截止时刻），评估时刻 {at}",
        "chain": "计算依据",
        "chain_text": "链 {chain_id}，账本合约 {ledger}，区块 {block}（{time}）",
        "deadline": "响应时限",
        "deadline_text": "{n} 个工作日",
        "charts": "图表",
        "indicators": "全部指标",
        "indicator": "指标",
        "value": "值",
        "unconditional": "无条件共享",
        "conditional": "有条件共享",
        "not_shared": "不予共享",
        "shareTypes": "目录资源按共享类型",
        "shareRateByType": "各共享类型的实际共享率（本期有协议或交付的资源）",
        "requests": "收到的申请",
        "received": "收到",
        "approved": "批准",
        "autoApproved": "即时批准",
        "rejected": "拒绝",
        "pending": "待处理",
        "withdrawn": "已撤回",
        "overdue": "超期",
        "responseTime": "响应时间（{n} 次审批），天；时限 {d} 个工作日",
        "median": "中位数",
        "p90": "第 90 百分位",
        "deliveries": "数据交付",
        "sent": "发出",
        "receivedDeliveries": "收到",
        "acknowledged": "已确认",
        "disputed": "有异议",
        "refused": "被拒绝",
        "rates": "确认率与异议率",
        "ackRate": "确认率",
        "disputeRate": "异议率",
        "demand": "需求满足情况（按申请部门）",
        "demandsReceived": "收到的需求",
        "demandsAnswered": "以资源答复",
        "demandsMet": "已满足（答复后已交付）",
        "declined": "已拒绝",
        "demandsOpen": "尚未答复",
        "evaluations": "评分（1-5）",
        "timeliness": "及时性",
        "completeness": "完整性",
        "accuracy": "准确性",
        "purpose_compliance": "用途合规",
        "inspections": "抽查",
        "passed": "通过",
        "failed": "未通过",
        "not_presented": "未提交",
        "inspectionsOverdue": "抽中且逾期",
        "none": "本期没有",
    },
}

_SHARE_TYPES = ("unconditional", "conditional", "not_shared")


def indicator_text(value: Any) -> str:
    """A scorecard value as its CSV cell (the console's ``flatten`` in ``pages/scorecards.js``, which writes
    JavaScript's ``String(value)``): null empty, booleans lower case, a whole float without ``.0``, never
    an exponent, a list of plain values joined by spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text else text
    if isinstance(value, list):
        return " ".join(indicator_text(v) for v in value)
    return str(value)


def indicator_rows(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every value of the card as (indicator, value), indicators by path (``requests.rejected``): the rows of
    the console's CSV export. A list of records (the inspections covered, the overdue deliveries) gives each
    item's fields by index, ``path[0].field``."""
    rows: list[tuple[str, str]] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                walk(item, f"{prefix}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}.{key}" if prefix else str(key))
        else:
            rows.append((prefix, indicator_text(value)))

    walk(card, "")
    return rows


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if 0 <= ts < 253402300800 else str(ts)


def pdf_filename(card: Mapping[str, Any]) -> str:
    """``scorecard-HEALTH-2026-01-01-2026-02-01.pdf``: the department's code (``consortium`` for the whole
    consortium) and the period's first and end days (UTC), as ``Content-Disposition`` names the file."""
    department = card["department"]
    code = "consortium" if department is None else department["code"] or f"department-{department['id']}"
    period = card["period"]
    # Codes are [A-Z0-9_-] on the ledger; anything else is dropped rather than quoted in a header.
    safe = "".join(ch for ch in str(code) if ch.isascii() and (ch.isalnum() or ch in "-_")) or "department"
    return f"scorecard-{safe}-{_day(period['from'])}-{_day(period['to'])}.pdf"


@dataclass(frozen=True)
class _Bar:
    label: str
    value: float
    text: str


@dataclass(frozen=True)
class _Chart:
    title: str
    bars: Sequence[_Bar]
    max: float | None = None
    marker: float | None = None


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _days(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / DAY:.2f}"


def _count(label: str, value: int) -> _Bar:
    return _Bar(label, value, str(value))


def _charts(card: Mapping[str, Any], w: Mapping[str, str], codes: Mapping[int, str]) -> list[_Chart]:
    """The console's charts (``charts`` in ``pages/scorecards.js``), their data as bars."""
    by_type = card["resources"]["by_share_type"]
    shared = card["catalog_shared"]["by_share_type"]
    q, rt, d = card["requests"], card["response_time_seconds"], card["deliveries"]
    deadline = card["response_deadline_working_days"]
    charts = [
        _Chart(w["shareTypes"], [_count(w[k], by_type.get(k, 0)) for k in _SHARE_TYPES]),
        _Chart(
            w["shareRateByType"],
            [
                _Bar(w[k], x["rate"] or 0, f"{x['shared']}/{x['total']} ({_pct(x['rate'])})")
                if (x := shared.get(k))
                else _Bar(w[k], 0, "—")
                for k in _SHARE_TYPES
            ],
            max=1,
        ),
        _Chart(
            w["requests"],
            [
                _count(w[label], q[key])
                for label, key in (
                    ("received", "received"),
                    ("approved", "approved"),
                    ("autoApproved", "auto_approved"),
                    ("rejected", "rejected"),
                    ("pending", "pending"),
                    ("withdrawn", "withdrawn"),
                    ("overdue", "overdue"),
                )
            ],
        ),
        _Chart(
            w["responseTime"].format(n=rt["decisions"], d=deadline),
            [_Bar(w[k], (rt[k] or 0) / DAY, _days(rt[k])) for k in ("median", "p90")],
            # Working days as calendar days, as the console draws its deadline line.
            marker=deadline * 7 / 5,
        ),
        _Chart(
            w["deliveries"],
            [
                _count(w["sent"], d["sent"]),
                _count(w["receivedDeliveries"], d["received"]),
                _count(w["acknowledged"], d["acknowledged"]),
                _count(w["disputed"], d["disputed"]),
                _count(w["refused"], card["refused_deliveries"]["total"]),
            ],
        ),
        _Chart(
            w["rates"],
            [
                _Bar(w["ackRate"], d["acknowledgement_rate"] or 0, _pct(d["acknowledgement_rate"])),
                # Of the deliveries sent in the period, as the acknowledgement rate is.
                _Bar(
                    w["disputeRate"],
                    d["disputed"] / d["sent"] if d["sent"] else 0,
                    _pct(d["disputed"] / d["sent"]) if d["sent"] else "—",
                ),
            ],
            max=1,
        ),
    ]
    practice = card.get("practice")
    if practice is not None:
        received, insp = practice["demands_received"], practice["inspections"]
        given, taken = practice["evaluations"]["as_provider"], practice["evaluations"]["as_consumer"]

        def score(name: str, scores: Mapping[str, Any]) -> _Bar:
            v = scores[name]
            return _Bar(f"{w[name]} ({scores['count']})", v or 0, "—" if v is None else f"{v:.2f}")

        charts += [
            _Chart(
                w["demandsReceived"],
                [
                    _count(w["demandsReceived"], received["total"]),
                    _count(w["demandsAnswered"], received["new_resource"] + received["existing_resource"]),
                    _count(w["demandsMet"], received["met"]),
                    _count(w["declined"], received["declined"]),
                    _count(w["demandsOpen"], received["open"]),
                    _count(w["overdue"], received["overdue"]),
                ],
            ),
            _Chart(
                w["evaluations"],
                [
                    *(score(k, given) for k in ("timeliness", "completeness", "accuracy")),
                    score("purpose_compliance", taken),
                ],
                max=5,
            ),
            _Chart(
                w["inspections"],
                [_count(w[k], insp[k]) for k in ("passed", "failed", "not_presented")]
                + [_count(w["inspectionsOverdue"], insp["overdue"])],
            ),
        ]
    demand = card["demand_satisfaction"]
    charts.append(
        _Chart(
            w["demand"],
            [
                _Bar(
                    codes.get(int(k), f"#{k}"),
                    v["rate"] or 0,
                    f"{v['satisfied']}/{v['requested']} ({_pct(v['rate'])})",
                )
                for k, v in demand.items()
            ],
            max=1,
        )
    )
    return charts


class _Page:
    """A cursor down A4 pages: text lines, bar charts and table rows, a new page when one would not fit."""

    MARGIN = 48.0

    def __init__(self, canvas: Canvas, font: str, size: tuple[float, float], none: str) -> None:
        self.c, self.font, self.none = canvas, font, none
        self.width, self.height = size
        self.y = self.height - self.MARGIN

    def room(self, needed: float) -> None:
        if self.y - needed < self.MARGIN:
            self.c.showPage()
            self.y = self.height - self.MARGIN

    def text(self, value: str, size: float = 9, x: float | None = None, gap: float = 4) -> None:
        self.room(size + gap)
        self.y -= size + gap
        self.c.setFont(self.font, size)
        self.c.drawString(self.MARGIN if x is None else x, self.y, value)

    def wrapped(self, value: str, size: float, x: float, width: float) -> list[str]:
        """``value`` cut into lines no wider than ``width`` (at any character: hashes and id lists have no
        spaces worth keeping)."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        lines, line = [], ""
        for ch in value:
            if line and stringWidth(line + ch, self.font, size) > width:
                lines.append(line)
                line = ""
            line += ch
        return [*lines, line]

    def chart(self, chart: _Chart) -> None:
        from reportlab.lib import colors

        size, row = 8.0, 13.0
        left, label_width, value_width = self.MARGIN, 190.0, 110.0
        plot = self.width - 2 * self.MARGIN - label_width - value_width
        self.room(size + 8 + row * max(1, len(chart.bars)) + 10)
        self.text(chart.title, size=9, gap=10)
        if not chart.bars:
            self.text(self.none, size=size, x=left + label_width)
        top = self.y - 3
        scale = max([chart.max or 0, chart.marker or 0, *(b.value for b in chart.bars)]) or 1
        for bar in chart.bars:
            self.y -= row
            self.c.setFont(self.font, size)
            self.c.drawRightString(left + label_width - 6, self.y + 2, bar.label)
            self.c.setFillColor(colors.HexColor("#e6e9ef"))
            self.c.rect(left + label_width, self.y, plot, row - 4, stroke=0, fill=1)
            self.c.setFillColor(colors.HexColor("#2f6fb0"))
            self.c.rect(
                left + label_width, self.y, plot * max(0.0, bar.value) / scale, row - 4, stroke=0, fill=1
            )
            self.c.setFillColor(colors.black)
            self.c.drawString(left + label_width + plot + 6, self.y + 2, bar.text)
        if chart.marker is not None and chart.bars:
            x = left + label_width + plot * chart.marker / scale
            self.c.setStrokeColor(colors.HexColor("#c0392b"))
            self.c.line(x, top, x, self.y - 1)
            self.c.setStrokeColor(colors.black)
        self.y -= 6


def scorecard_pdf(
    card: Mapping[str, Any],
    *,
    at: ChainPosition,
    language: Language = Language.EN,
    department_codes: Mapping[int, str] | None = None,
) -> bytes:
    """The PDF of ``card`` (as :func:`node.audit.scorecard.compute_scorecard` returned it) computed at
    ``at``; ``department_codes`` names the requesting departments of the demand chart (by id without it).
    The same arguments give the same bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen.canvas import Canvas

    w = _WORDS[language]
    if language is Language.ZH:
        font = "STSong-Light"
        if font not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(font))
    else:
        font = "Helvetica"
    out = io.BytesIO()
    width, height = A4
    # invariant: no creation date and a fixed document id, so that the file is a function of its inputs.
    canvas = Canvas(out, pagesize=A4, invariant=True, pageCompression=True)
    department = card["department"]
    subject = (
        w["consortium"]
        if department is None
        else f"{department['code'] or ''} (id {department['id']})".strip()
    )
    canvas.setTitle(f"{w['title']}{w[':']}{subject}")
    canvas.setAuthor("dxl")
    canvas.setCreator("dxl")
    page = _Page(canvas, font, (width, height), w["none"])
    period = card["period"]
    page.text(w["title"], size=16, gap=0)
    page.text(f"{w['department']}{w[':']}{subject}", gap=14)
    page.text(
        f"{w['period']}{w[':']}"
        + w["period_text"].format(
            start=iso_time(period["from"]), end=iso_time(period["to"]), at=iso_time(period["evaluated_at"])
        )
    )
    page.text(
        f"{w['chain']}{w[':']}"
        + w["chain_text"].format(
            chain_id=at.chain_id, ledger=at.ledger, block=at.block, time=iso_time(at.block_time)
        )
    )
    page.text(
        f"{w['deadline']}{w[':']}" + w["deadline_text"].format(n=card["response_deadline_working_days"])
    )
    page.text(w["charts"], size=12, gap=16)
    for chart in _charts(card, w, department_codes or {}):
        page.chart(chart)
    canvas.showPage()
    page.y = height - page.MARGIN
    page.text(w["indicators"], size=12, gap=0)
    name_x, value_x = page.MARGIN, page.MARGIN + 250
    page.text(w["indicator"], size=8, x=name_x, gap=8)
    canvas.drawString(value_x, page.y, w["value"])
    for name, value in indicator_rows(card):
        lines = page.wrapped(value, 8, value_x, width - value_x - page.MARGIN)
        # Paths run to some 200 points (practice.inspections.overdue_deliveries[10].inspection_id); a longer
        # one is set smaller rather than across the value.
        size = min(8.0, 8.0 * (value_x - name_x - 6) / pdfmetrics.stringWidth(name, font, 8.0))
        page.text(name, size=size, x=name_x, gap=11 - size)
        canvas.setFont(font, 8)
        canvas.drawString(value_x, page.y, lines[0])
        for more in lines[1:]:
            page.text(more, size=8, x=value_x, gap=3)
    canvas.showPage()
    canvas.save()
    return out.getvalue()
