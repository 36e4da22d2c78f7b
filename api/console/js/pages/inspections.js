// Sampling inspections: every inspection with its sample, presentations, outcomes and what is overdue. An
// auditor reads every sampled delivery, opens an inspection and records each outcome; a department reads the
// sampled deliveries it provided, which it must present by the deadline (the API answers it no other).
import { api, ApiError, every } from "../api.js";
import { add, errorBox, fill, h, mono, PageError, pagedTable, when } from "../dom.js";
import { num, t } from "../i18n.js";
import { accountLabel, departmentsById, deptLabel, idArg, statusBadge } from "./common.js";

const DAY = 86400;

// Not statusBadge: an open proposal and an open inspection read differently in Chinese.
function inspectionStatus(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status }, t(`insp.status.${status}`));
}

function overdueBadge() {
  return h("span", { class: "badge status-overdue", "data-overdue": "true" }, t("status.overdue"));
}

/** A presentation's verdict (MATCH, MISMATCH, ...) in the user's words, the verifier's code in its title. */
function presentedBadge(code) {
  if (code === null || code === undefined) return "—";
  const text = t(`presented.${code}`);
  return h("span", { class: `badge status-${code === "MATCH" ? "passed" : "failed"}`, title: code, "data-presented": code },
    text === `presented.${code}` ? code : text);
}

/** The sampled delivery as named on chain: a delivery id, or a receipt's grant and sequence. */
function sampled(s) {
  return s.grant_id === null || s.grant_id === undefined ? mono(s.delivery_id)
    : h("span", {}, mono(s.delivery_id), " ", t("insp.receipt", { grant: s.grant_id, sequence: s.sequence }));
}

// A sample asked larger than its population draws the whole population.
function sampleOf(i) {
  return t("insp.sampleOf", { n: num(Math.min(i.sample_size, i.population_size)), population: num(i.population_size), asked: num(i.sample_size) });
}

// An inspection's period as the form offered it, in UTC days (it read two midnights, the second not covered).
function period(i) {
  return span(i.period_from, i.period_to);
}

// The closed evaluation periods offered, newest first: two years of the default 30-day grid.
const PERIODS_OFFERED = 24;

/** A span of whole periods in UTC days, its last day included (bounds at midnight UTC), else in times. */
function span(from, to) {
  if (from % DAY || to % DAY || to <= from) return t("insp.period", { from: when(from), to: when(to) });
  const first = isoDay(from);
  const last = isoDay(to - DAY);
  return first === last ? first : t("insp.period", { from: first, to: last });
}

function isoDay(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

/**
 * The ledger takes only bounds on its evaluation-period grid, over by the chain's clock (openInspection: whole
 * periods, from the epoch): the form offers the closed periods read from GET /evaluation-period, the last one
 * to cover and how many in a row back from it, so that it can send no bound the ledger refuses.
 */
function openForm(go, grid) {
  const length = grid.length_seconds;
  // The current period starts at or before the chain's latest block time: the one before it is over.
  const ends = [];
  for (let end = grid.starts_at; end - length >= 0 && ends.length < PERIODS_OFFERED; end -= length) ends.push(end);
  if (ends.length === 0) return h("p", { class: "muted", id: "insp-no-period" }, t("insp.noClosedPeriod"));
  const last = h("select", { name: "period", id: "insp-period", required: true },
    ends.map((end) => h("option", { value: String(end) }, span(end - length, end))));
  const count = h("input", { type: "number", name: "periods", id: "insp-periods", min: 1, max: ends.length, value: 1, required: true });
  const covers = h("output", { id: "insp-covers", for: "insp-period insp-periods" });
  const bounds = () => {
    const to = Number(last.value);
    const n = Math.trunc(Number(count.value));
    return { to, from: to - n * length, n };
  };
  const show = () => {
    const { from, to, n } = bounds();
    covers.textContent = n >= 1 && from >= 0 ? t("insp.covers", { span: span(from, to) }) : "";
  };
  last.addEventListener("change", show);
  count.addEventListener("input", show);
  show();
  const size = h("input", { type: "number", name: "sample_size", id: "insp-size", min: 1, max: 1000, value: 10, required: true });
  // The ledger gives each provider a notice from the draw to present, and the draw comes some blocks after the
  // opening: the API refuses a shorter time to present than it says here (GET /evaluation-period, read with the
  // grid), for no one could ever be found not presenting. Read, not copied: the form and the API agree.
  const tooShort = t("insp.tooShort", { notice: grid.presentation_notice_seconds / DAY, least: Math.ceil(grid.min_present_within_seconds / DAY) });
  const within = h("input", { type: "number", name: "present_within", id: "insp-within", min: 1, max: 365, value: 7, required: true,
    title: tooShort });
  const out = h("div", { class: "outcome" });
  const button = h("button", { type: "submit", id: "insp-open" }, t("insp.open"));
  const form = h("form", { class: "filters card", id: "insp-form" },
    h("label", {}, t("insp.lastPeriod"), last), h("label", {}, t("insp.periods"), count), covers,
    h("label", {}, t("insp.sampleSize"), size), h("label", {}, t("insp.presentWithin"), within), button, out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { from, to, n } = bounds();
      if (!(n >= 1) || from < 0) throw new PageError(t("insp.periodsRange", { max: ends.length }));
      if (Number(within.value) * DAY < grid.min_present_within_seconds) throw new PageError(tooShort);
      button.disabled = true;
      const written = await api("/inspections", { method: "POST", body: {
        period_from: from, period_to: to, sample_size: Number(size.value), present_within: Number(within.value) * DAY,
      } });
      go(`#/inspection/${written.record.id}`);
    } catch (error) {
      button.disabled = false;
      fill(out, errorBox(error));
    }
  });
  return form;
}

export const inspections = {
  id: "inspections",
  title: "nav.inspections",
  requires: ["GET /inspections"],
  async render(view, { caps, go }) {
    const list = await every("/inspections");
    const auditor = caps.role === "auditor";
    add(view, h("h1", {}, t("nav.inspections")),
      h("p", { class: "muted" }, auditor ? t("insp.introAuditor") : t("insp.introDepartment")));
    if (caps.can("POST /inspections") && caps.can("GET /evaluation-period")) {
      const grid = await api("/evaluation-period");
      add(view, h("details", { class: "no-print", id: "open-inspection" }, h("summary", {}, t("insp.openTitle")), openForm(go, grid)));
    }
    // A department's own obligations first: its sampled deliveries without an outcome, by deadline.
    if (!auditor) {
      const due = list.flatMap((i) => i.sample.filter((s) => s.outcome === null).map((s) => ({ i, s })));
      add(view, h("h2", {}, t("insp.toPresent")), due.length === 0 ? h("p", { class: "muted", id: "to-present-none" }, t("insp.nothingToPresent"))
        : pagedTable([
          [t("insp.inspection"), ({ i }) => h("a", { href: `#/inspection/${i.id}` }, `#${i.id}`)],
          [t("insp.delivery"), ({ s }) => sampled(s)],
          [t("insp.presented"), ({ s }) => presentedBadge(s.presented)],
          [t("insp.presentBy"), ({ i, s }) => h("span", {}, when(i.present_by), s.overdue ? [" ", overdueBadge()] : null)],
        ], due, { id: "to-present" }));
    }
    add(view, h("h2", {}, t("insp.all")), list.length === 0 ? h("p", { class: "muted", id: "inspections-none" }, t("insp.none")) : pagedTable([
      [t("insp.inspection"), (i) => h("a", { href: `#/inspection/${i.id}`, class: "inspection-link" }, `#${i.id}`)],
      [t("timeline.status"), (i) => inspectionStatus(i.status)],
      [t("insp.periodHead"), period],
      [t("insp.sampleHead"), (i) => (i.population_size === null ? num(i.sample_size) : sampleOf(i))],
      [auditor ? t("insp.sampled") : t("insp.yours"), (i) => num(i.sample.length)],
      [t("insp.recorded"), (i) => num(i.sample.filter((s) => s.outcome !== null).length)],
      [t("insp.presentBy"), (i) => when(i.present_by)],
      [t("insp.overdueHead"), (i) => {
        const n = i.sample.filter((s) => s.overdue).length;
        return n ? h("span", { class: "badge status-overdue", "data-overdue": String(n) }, num(n)) : num(0);
      }],
    ], list, { id: "inspection-list" }));
  },
};

export const inspection = {
  id: "inspection",
  title: "nav.inspections",
  nav: false,
  requires: ["GET /inspections/{inspection_id}", "GET /departments"],
  async render(view, { caps, args }) {
    const id = idArg(args);
    const depts = await departmentsById();
    const body = h("div", { id: "inspection" });
    add(view, h("p", {}, h("a", { href: "#/inspections" }, "← " + t("nav.inspections"))), body);
    const canRecord = caps.can("POST /inspections/{inspection_id}/outcomes");
    const canDraw = caps.can("POST /inspections/{inspection_id}/draw");
    const show = (i, note) => {
      const outcomeCell = (s) => {
        if (s.outcome !== null) {
          const recorded = h("span", { class: "outcome-recorded" }, statusBadge(s.outcome));
          // Recorded around the service's check (the contract takes any outcome from an auditor's key).
          if (s.outcome_as_checked !== false) return recorded;
          return h("span", {}, recorded, " ", h("span", { class: "badge status-overdue", "data-not-as-checked": "true", title: t("insp.notAsCheckedTitle") }, t("insp.notAsChecked")));
        }
        // Offered when the API would take it: a presentation to judge, or none by the deadline.
        if (!canRecord || (s.presented === null && !s.overdue)) return "—";
        const verdict = s.presented === null ? "not_presented" : s.presented === "MATCH" ? "passed" : "failed";
        const button = h("button", { type: "button", class: "record-outcome", "data-delivery": s.delivery_id }, t("insp.record", { outcome: t(`status.${verdict}`) }));
        button.addEventListener("click", async () => {
          button.disabled = true;
          try {
            const written = await api(`/inspections/${i.id}/outcomes`, { method: "POST", body: { delivery_id: s.delivery_id } });
            show(written.record, h("p", { class: "ok", id: "recorded", role: "status" }, t("insp.recordedNote", { block: written.transaction.block_number })));
          } catch (error) {
            button.disabled = false;
            if (error instanceof ApiError && error.status === 409) return show(await api(`/inspections/${i.id}`), errorBox(error));
            button.after(errorBox(error));
          }
        });
        return button;
      };
      const draw = canDraw && i.status === "open" ? h("button", { type: "button", id: "draw" }, t("insp.draw")) : null;
      draw?.addEventListener("click", async () => {
        draw.disabled = true;
        try {
          show((await api(`/inspections/${i.id}/draw`, { method: "POST" })).record);
        } catch (error) {
          draw.disabled = false;
          draw.after(errorBox(error));
        }
      });
      const overdue = i.sample.filter((s) => s.overdue).length;
      fill(body, note || null,
        h("h1", { id: "inspection-title" }, t("insp.heading", { id: i.id }), " ", inspectionStatus(i.status)),
        h("dl", { class: "facts" },
          h("dt", {}, t("insp.periodHead")), h("dd", { id: "inspection-period" }, period(i)),
          h("dt", {}, t("insp.sampleHead")), h("dd", {}, i.population_size === null ? num(i.sample_size) : sampleOf(i)),
          h("dt", {}, t("insp.seedBlock")), h("dd", {}, String(i.seed_block)),
          h("dt", {}, t("insp.seed")), h("dd", {}, i.seed ? mono(i.seed, 14) : t("insp.notDrawn")),
          h("dt", {}, t("insp.presentBy")), h("dd", { id: "present-by" }, when(i.present_by)),
          h("dt", {}, t("insp.auditor")), h("dd", { id: "opened-by" }, accountLabel(i.auditor, depts, "auditor"))),
        i.status === "open" ? h("p", { class: "muted" }, t("insp.openNote", { block: i.seed_block }), " ", draw) : null,
        i.status === "expired" ? h("p", { class: "error" }, t("insp.expiredNote")) : null,
        overdue ? h("p", { class: "error", id: "inspection-overdue" }, t("insp.overdueNote", { n: num(overdue) })) : null,
        i.status !== "drawn" ? null : [
          h("h2", {}, caps.role === "auditor" ? t("insp.sample") : t("insp.yourSample")),
          caps.role === "auditor" ? null : h("p", { class: "muted", id: "present-how" }, t("insp.presentHow", { id: i.id, when: when(i.present_by) })),
          i.sample.length === 0 ? h("p", { class: "muted", id: "sample-none" }, caps.role === "auditor" ? t("insp.emptySample") : t("insp.noneOfYours"))
            : pagedTable([
              [t("insp.delivery"), sampled],
              [t("timeline.provider"), (s) => deptLabel(depts, s.provider)],
              [t("insp.presented"), (s) => presentedBadge(s.presented)],
              [t("insp.outcome"), (s) => h("span", {}, outcomeCell(s), s.overdue ? [" ", overdueBadge()] : null)],
            ], i.sample, { id: "sample" }),
        ]);
    };
    show(await api(`/inspections/${id}`));
  },
};
