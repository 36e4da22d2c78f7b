// Scorecards: the assessment indicators of one department (or the consortium) over a period, as charts,
// with CSV export, the service's PDF of the same card (GET /audit/scorecard?format=pdf) and a print layout.
import { api, file } from "../api.js";
import { add, download, errorBox, fill, h, save } from "../dom.js";
import { bars, pct } from "../charts.js";
import { heading, lang, num, t } from "../i18n.js";
import { checkPeriod, departmentsById, deptLabel, isoDate, isoDateEnd, periodError, shareTypeLabel } from "./common.js";

const DAY = 86400;

/**
 * The scorecard as (indicator, value) rows: every number in it, by its path. A list of records (the inspections
 * covered, the overdue deliveries) gives each item's fields by its index, `path[0].field`: joined into one cell
 * they read "[object Object]".
 */
export function flatten(value, prefix = "", rows = []) {
  const records = Array.isArray(value) && value.some((v) => v !== null && typeof v === "object");
  if (records) {
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, rows));
  } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, rows);
  } else {
    rows.push([prefix, Array.isArray(value) ? value.join(" ") : value === null ? "" : String(value)]);
  }
  return rows;
}

function csv(rows) {
  const cell = (v) => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  return rows.map((r) => r.map((v) => cell(String(v))).join(",")).join("\r\n") + "\r\n";
}

function days(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 3600) return `${Math.round(seconds)} ${t("score.seconds")}`;
  if (seconds < DAY) return `${(seconds / 3600).toFixed(1)} ${t("score.hours")}`;
  return `${(seconds / DAY).toFixed(2)} ${t("score.days")}`;
}

const SHARE_TYPES = ["unconditional", "conditional", "not_shared"];

function charts(card, depts) {
  const byType = card.resources.by_share_type || {};
  const sharedByType = card.catalog_shared.by_share_type || {};
  const requests = card.requests;
  const rt = card.response_time_seconds;
  const deadlineDays = card.response_deadline_working_days;
  const d = card.deliveries;
  const demand = Object.entries(card.demand_satisfaction || {});
  return h("div", { class: "charts" },
    h("figure", { class: "card" },
      h("figcaption", {}, t("score.shareTypes"), " · ", t("score.shareRate"), ": ", h("strong", { id: "share-rate" }, pct(card.catalog_shared.rate))),
      bars(SHARE_TYPES.map((k) => ({ label: shareTypeLabel(k), value: byType[k] || 0, cls: `share-${k}` })), { title: t("score.shareTypes") })),
    h("figure", { class: "card", id: "share-rate-by-type" },
      h("figcaption", {}, t("score.shareRateByType")),
      // Of each share type's resources, those with an agreement or a delivery in the period (the API's figures).
      bars(SHARE_TYPES.map((k) => {
        const x = sharedByType[k];
        return { label: shareTypeLabel(k), value: x?.rate ?? 0, text: x ? `${num(x.shared)}/${num(x.total)} (${pct(x.rate)})` : "—", cls: `share-${k}` };
      }), { max: 1, title: t("score.shareRateByType") })),
    h("figure", { class: "card" },
      h("figcaption", {}, t("score.requests")),
      bars([
        { label: t("score.received"), value: requests.received },
        { label: t("score.approved"), value: requests.approved, cls: "good" },
        { label: t("score.autoApproved"), value: requests.auto_approved, cls: "good" },
        { label: t("score.rejected"), value: requests.rejected, cls: "bad" },
        { label: t("score.pending"), value: requests.pending },
        { label: t("score.overdue"), value: requests.overdue, cls: "bad" },
      ], { title: t("score.requests") })),
    h("figure", { class: "card" },
      h("figcaption", {}, t("score.responseTime", { n: num(rt.decisions) })),
      bars([
        { label: t("score.median"), value: (rt.median || 0) / DAY, text: days(rt.median) },
        { label: t("score.p90"), value: (rt.p90 || 0) / DAY, text: days(rt.p90) },
      ], { marker: { value: (deadlineDays * 7) / 5, label: t("score.deadline", { n: deadlineDays }) }, title: t("score.responseTime", { n: num(rt.decisions) }) })),
    h("figure", { class: "card" },
      h("figcaption", {}, t("score.deliveries")),
      bars([
        { label: t("score.sent"), value: d.sent },
        { label: t("score.receivedDeliveries"), value: d.received },
        { label: t("score.acknowledged"), value: d.acknowledged, cls: "good" },
        { label: t("score.disputed"), value: d.disputed, cls: "bad" },
        { label: t("score.refused"), value: card.refused_deliveries.total, cls: "bad" },
      ], { title: t("score.deliveries") }),
      bars([
        { label: t("score.ackRate"), value: d.acknowledgement_rate ?? 0, text: pct(d.acknowledgement_rate), cls: "good" },
        // Of the deliveries sent in the period, as the acknowledgement rate is (node/audit/scorecard.py).
        { label: t("score.disputeRate"), value: d.sent ? d.disputed / d.sent : 0, text: d.sent ? pct(d.disputed / d.sent) : "—", cls: "bad" },
      ], { max: 1, title: t("score.rates") })),
    practice(card.practice),
    h("figure", { class: "card" },
      h("figcaption", {}, t("score.demand")),
      demand.length === 0 ? h("p", { class: "muted" }, t("score.noDemand")) : bars(demand.map(([consumer, v]) => ({
        label: deptLabel(depts, consumer), value: v.rate ?? 0, text: `${num(v.satisfied)}/${num(v.requested)} (${pct(v.rate)})`,
      })), { max: 1, title: t("score.demand") })));
}

// The sharing practice: demands answered and overdue, evaluation averages (1-5) as provider and consumer, and
// inspection outcomes with the sampled deliveries overdue, each overdue one linked to where it is seen.
function practice(p) {
  if (!p) return null;
  const received = p.demands_received;
  const given = p.evaluations.as_provider;
  const taken = p.evaluations.as_consumer;
  const insp = p.inspections;
  const score = (label, v) => ({ label, value: v ?? 0, text: v === null || v === undefined ? "—" : v.toFixed(2), cls: "good" });
  return h("figure", { class: "card", id: "score-practice" },
    h("figcaption", {}, t("score.practice")),
    // Every demand received is answered with a resource, declined or not answered yet; one answered with a
    // resource is met once that resource is delivered to its publisher.
    bars([
      { label: t("score.demandsReceived"), value: received.total },
      { label: t("score.demandsAnswered"), value: received.new_resource + received.existing_resource },
      { label: t("score.demandsMet"), value: received.met, cls: "good" },
      { label: t("status.declined"), value: received.declined, cls: "bad" },
      { label: t("score.demandsOpen"), value: received.open },
      { label: t("score.demandsOverdue"), value: received.overdue, cls: "bad" },
    ], { title: t("score.demandsReceived") }),
    bars([
      score(`${t("eval.timeliness")} (${num(given.count)})`, given.timeliness),
      score(`${t("eval.completeness")} (${num(given.count)})`, given.completeness),
      score(`${t("eval.accuracy")} (${num(given.count)})`, given.accuracy),
      score(`${t("eval.purpose_compliance")} (${num(taken.count)})`, taken.purpose_compliance),
    ], { max: 5, title: t("eval.title") }),
    bars([
      { label: t("status.passed"), value: insp.passed, cls: "good" },
      { label: t("status.failed"), value: insp.failed, cls: "bad" },
      { label: t("status.not_presented"), value: insp.not_presented, cls: "bad" },
      { label: t("score.inspectionsOverdue"), value: insp.overdue, cls: "bad" },
    ], { title: t("nav.inspections") }),
    received.overdue_demand_ids.length === 0 && insp.overdue_deliveries.length === 0 ? null : h("p", { id: "score-overdue" },
      received.overdue_demand_ids.length ? [t("score.overdueDemands"), " ", h("a", { href: "#/demands" }, received.overdue_demand_ids.map((id) => `#${id}`).join(", "))] : null,
      insp.overdue_deliveries.length ? [" ", t("score.overdueInspections"), " ",
        [...new Set(insp.overdue_deliveries.map((d) => d.inspection_id))].map((id) => [h("a", { href: `#/inspection/${id}`, class: "overdue-inspection" }, `#${id}`), " "])] : null));
}

export default {
  id: "scorecards",
  title: "nav.scorecards",
  requires: ["GET /audit/scorecard", "GET /departments"],
  async render(view, { caps, params, go }) {
    const depts = await departmentsById();
    // A department reads its own scorecard and the consortium's; an auditor reads every department's.
    const choices = caps.role === "auditor" ? [...depts.values()] : [...depts.values()].filter((x) => x.code === caps.me.department);
    const subject = h("select", { name: "department", id: "score-department" },
      h("option", { value: "" }, t("score.consortium")),
      choices.map((x) => h("option", { value: x.code }, `${x.code} — ${x.name}`)));
    const from = h("input", { type: "date", name: "from", id: "score-from" });
    const to = h("input", { type: "date", name: "to", id: "score-to" });
    subject.value = params.get("department") ?? (caps.role === "department" ? caps.me.department : "");
    from.value = params.get("from") || "";
    to.value = params.get("to") || "";
    const form = h("form", { class: "filters no-print", id: "score-filters" },
      h("label", {}, t("score.subject"), subject),
      h("label", {}, t("score.from"), from),
      h("label", {}, t("score.to"), to),
      h("button", { type: "submit" }, t("score.show")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      go(`#/scorecards?${new URLSearchParams({ department: subject.value, from: from.value, to: to.value })}`);
    });
    const body = h("div", { id: "scorecard" });
    add(view, h("h1", {}, t("nav.scorecards")), form, body);
    checkPeriod(from.value, to.value);
    const query = { department: subject.value || undefined, from: isoDate(from.value), to: isoDateEnd(to.value) };
    const card = await api("/audit/scorecard", { query }).catch((error) => { throw periodError(error, from.value, to.value); });
    const name = subject.value || t("score.consortium");
    const rows = [["indicator", "value"], ...flatten(card)];
    const csvButton = h("button", { type: "button", id: "export-csv", class: "secondary" }, t("score.exportCsv"));
    csvButton.addEventListener("click", () => download(`scorecard-${subject.value || "consortium"}.csv`, csv(rows)));
    // The PDF is the service's (node/audit/scorecard_pdf.py): the same file `dxl audit scorecard --pdf` writes,
    // with the block the figures were read at, in the page's language.
    const pdfButton = h("button", { type: "button", id: "export-pdf", class: "secondary" }, t("score.exportPdf"));
    pdfButton.addEventListener("click", async () => {
      pdfButton.disabled = true;
      try {
        const { blob, name: saved } = await file("/audit/scorecard", {
          accept: "application/pdf",
          query: { ...query, format: "pdf", lang: lang() },
        });
        save(saved || `scorecard-${subject.value || "consortium"}.pdf`, blob);
      } catch (error) {
        pdfButton.after(errorBox(error));
      } finally {
        pdfButton.disabled = false;
      }
    });
    const printButton = h("button", { type: "button", id: "print", class: "secondary" }, t("score.print"));
    printButton.addEventListener("click", () => window.print());
    fill(body,
      // Without a From day the card counts from the ledger's first block.
      h("h2", { id: "score-title" }, t(from.value ? "score.heading" : "score.headingUpTo", { name, from: from.value, to: to.value || t("score.now") })),
      h("p", { class: "no-print" }, csvButton, " ", pdfButton, " ", printButton, " ", h("span", { class: "muted" }, t("score.printHint"))),
      charts(card, depts),
      h("details", { class: "no-print" }, h("summary", {}, t("score.allIndicators")),
        h("table", { id: "score-table" }, h("tbody", {}, rows.slice(1).map(([k, v]) => h("tr", {}, h("td", {}, h("code", {}, k)), h("td", {}, v)))))));
    if (caps.role === "auditor") {
      add(body, await comparison([...depts.values()], { from: isoDate(from.value), to: isoDateEnd(to.value) }));
    }
  },
};

// Every department side by side over the same period (auditors): one scorecard request per department. A
// count stays a number in a row, grouped where shown (sideBySide) and plain in the CSV, which a spreadsheet reads.
const COLUMNS = [
  ["score.colResources", (c) => c.resources.total],
  ["score.shareRate", (c) => pct(c.catalog_shared.rate)],
  ["score.received", (c) => c.requests.received],
  ["score.approved", (c) => c.requests.approved],
  ["score.rejected", (c) => c.requests.rejected],
  ["score.overdue", (c) => c.requests.overdue],
  ["score.median", (c) => days(c.response_time_seconds.median)],
  ["score.sent", (c) => c.deliveries.sent],
  ["score.ackRate", (c) => pct(c.deliveries.acknowledgement_rate)],
  ["score.disputed", (c) => c.deliveries.disputed],
];

// And their sharing practice (the scorecard's `practice`): demands received met and overdue, the scores received
// (average and count), inspection outcomes and sampled deliveries overdue. A second table, so that each fits
// the page; the CSV has both.
const average = (a, v) => (v === null || v === undefined ? "—" : `${v.toFixed(2)} (${num(a.count)})`);
const PRACTICE_COLUMNS = [
  ["score.colDemandsMet", (p) => `${num(p.demands_received.met)}/${num(p.demands_received.total)}`],
  ["score.colDemandsOverdue", (p) => p.demands_received.overdue],
  ["eval.timeliness", (p) => average(p.evaluations.as_provider, p.evaluations.as_provider.timeliness)],
  ["eval.completeness", (p) => average(p.evaluations.as_provider, p.evaluations.as_provider.completeness)],
  ["eval.accuracy", (p) => average(p.evaluations.as_provider, p.evaluations.as_provider.accuracy)],
  ["eval.purpose_compliance", (p) => average(p.evaluations.as_consumer, p.evaluations.as_consumer.purpose_compliance)],
  ["status.passed", (p) => p.inspections.passed],
  ["status.failed", (p) => p.inspections.failed],
  ["status.not_presented", (p) => p.inspections.not_presented],
  ["score.inspectionsOverdue", (p) => p.inspections.overdue],
];

function sideBySide(id, header, rows) {
  return h("table", { id },
    h("thead", {}, h("tr", {}, header.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", { "data-department": r[0] }, r.map((x) => h("td", {}, typeof x === "number" ? num(x) : x))))));
}

async function comparison(departments, period) {
  const cards = await Promise.all(departments.map((d) => api("/audit/scorecard", { query: { department: d.code, ...period } })));
  const header = [t("score.subject"), ...COLUMNS.map(([key]) => heading(t(key)))];
  const rows = departments.map((d, i) => [d.code, ...COLUMNS.map(([, value]) => value(cards[i]))]);
  const practiceHeader = [t("score.subject"), ...PRACTICE_COLUMNS.map(([key]) => heading(t(key)))];
  const practiceRows = departments.map((d, i) => [d.code, ...PRACTICE_COLUMNS.map(([, value]) => (cards[i].practice ? value(cards[i].practice) : "—"))]);
  const button = h("button", { type: "button", id: "export-comparison", class: "secondary no-print" }, t("score.exportCsv"));
  button.addEventListener("click", () => download("scorecards-departments.csv",
    csv([[...header, ...practiceHeader.slice(1)], ...rows.map((r, i) => [...r, ...practiceRows[i].slice(1)])])));
  return h("section", { class: "card comparison" },
    h("h2", {}, t("score.comparison")), button,
    sideBySide("score-comparison", header, rows),
    h("h3", {}, t("score.practice")),
    sideBySide("score-comparison-practice", practiceHeader, practiceRows));
}
