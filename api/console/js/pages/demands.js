// Demand lists: what departments need from each other, with each answer, due date and overdue mark. A
// department sees the demands it published and those it may answer (addressed to it, or to no one); it
// publishes a demand and answers one addressed to it, rejects a resource answer to its own demand that does
// not meet it and withdraws its own demand while unanswered. Auditors (and governors, who read the lists as every
// member does) see every demand and are offered no form: the API takes both writes from departments only.
import { api, ApiError, every } from "../api.js";
import { add, errorBox, fill, h, paged, PageError, theirs, when } from "../dom.js";
import { num, t } from "../i18n.js";
import { departmentsById, deptLabel, isoDateEnd, refusedField, resourceTitle, statusBadge } from "./common.js";

const ANSWERS = ["existing_resource", "new_resource", "declined"];
// node.types.DeclineReason, by the name the API takes.
const DECLINE_REASONS = ["not_held", "held_elsewhere", "legally_restricted", "insufficient_legal_basis", "purpose_not_justified"];

// node.types.RejectionReason, by the name the API takes.
const REJECTION_REASONS = ["not_the_data_asked", "incomplete", "not_current", "conditions_unmeetable"];

/**
 * Whether department `me` may answer `d`: addressed to it, or to no one, published by another and no answer
 * of `me` rejected by its publisher (ANSWERER_REJECTED).
 */
export function answerable(d, me) {
  if (d.status !== "open") return false;
  if (d.addressee === me) return true;
  return d.addressee === null && d.publisher !== me && !(d.rejections || []).some((r) => r.answered_by === me);
}

function dueMark(d) {
  return h("span", { class: "due" }, t("demand.due", { when: when(d.due_by) }),
    d.overdue ? [" ", h("span", { class: "badge status-overdue", "data-overdue": "true" }, t("status.overdue"))] : null);
}

function documentFacts(doc) {
  if (!doc) return null;
  const rows = [
    [t("terms.purpose"), doc.purpose],
    [t("resource.legalBasis"), doc.legal_basis],
    [t("resource.description"), doc.description],
    [t("terms.fields"), (doc.fields || []).join(", ")],
  ].filter(([, v]) => v);
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
}

function rejectionsView(d, depts) {
  return (d.rejections || []).map((r) => {
    const note = r.note && r.note.document ? r.note.document.note : null;
    return h("div", { class: "rejection", "data-rejected": r.resource_id },
      h("p", {}, t("demand.rejectedAnswer", { when: when(r.rejected_at), resource: r.resource_id, who: deptLabel(depts, r.answered_by), reason: t(`rejection.${r.reason}`) })),
      note ? h("p", { class: "note" }, t("demand.note"), " ", theirs(note)) : null);
  });
}

function answerView(d, depts) {
  const a = d.answer;
  if (d.withdrawn_at) return h("p", { class: "muted answer", "data-answer": "withdrawn" }, t("demand.withdrawnAt", { when: when(d.withdrawn_at) }));
  if (!a) return h("p", { class: "muted answer", "data-answer": "none" }, t("demand.unanswered"));
  const note = a.note && a.note.document ? a.note.document.note : null;
  return h("div", { class: "answer", "data-answer": a.answer },
    h("p", {}, statusBadge(a.answer), " ", t("demand.answeredBy", { who: deptLabel(depts, a.answered_by), when: when(a.answered_at) }),
      a.resource_id ? [" · ", h("a", { href: `#/resource/${a.resource_id}`, class: "resource-link" }, t("timeline.resource", { id: a.resource_id }))] : null,
      a.decline_reason ? [" · ", t(`decline.${a.decline_reason}`)] : null),
    note ? h("p", { class: "note" }, t("demand.note"), " ", theirs(note)) : null);
}

/**
 * The department's resources the ledger takes as answer `kind` to `d`: its own and shared, and registered by
 * the demand's publication (an existing resource) or after it (a new one); it refuses any other (RESOURCE_UNFIT).
 */
export function fitting(d, mine, kind) {
  const isNew = (r) => Number(r.id) > d.catalog_size;
  return mine.filter((r) => r.share_type !== "not_shared" && isNew(r) === (kind === "new_resource"));
}

/** The answers the ledger takes to `d`: a demand addressed to no one is answered with a resource, never declined. */
function answersTo(d) {
  return d.addressee === null ? ANSWERS.filter((v) => v !== "declined") : ANSWERS;
}

function answerForm(d, mine, reload) {
  const kind = h("select", { name: "answer", class: "answer-kind" }, answersTo(d).map((v) => h("option", { value: v }, t(`status.${v}`))));
  const resource = h("select", { name: "resource_id", class: "answer-resource" });
  const reason = h("select", { name: "decline_reason", class: "answer-reason" }, DECLINE_REASONS.map((v) => h("option", { value: v }, t(`decline.${v}`))));
  const note = h("input", { name: "note", class: "answer-note", maxlength: 2000, size: 40 });
  const resourceLabel = h("label", {}, t("demand.resource"), resource);
  const reasonLabel = h("label", {}, t("demand.reason"), reason);
  const shown = () => {
    resourceLabel.hidden = kind.value === "declined";
    reasonLabel.hidden = kind.value !== "declined";
    fill(resource, fitting(d, mine, kind.value).map((r) => h("option", { value: r.id }, `#${r.id} ${resourceTitle(r)}`)));
  };
  kind.addEventListener("change", shown);
  shown();
  const out = h("div", { class: "outcome" });
  const button = h("button", { type: "submit" }, t("demand.answer"));
  const form = h("form", { class: "filters answer-form", "data-demand": d.id },
    h("label", {}, t("demand.answerKind"), kind), resourceLabel, reasonLabel, h("label", {}, t("demand.note"), note), button, out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const declined = kind.value === "declined";
    if (!declined && !resource.value) return fill(out, errorBox(new PageError(t("demand.noResource"))));
    button.disabled = true;
    try {
      await api(`/demands/${d.id}/answer`, { method: "POST", body: {
        answer: kind.value, resource_id: declined ? undefined : Number(resource.value),
        decline_reason: declined ? reason.value : undefined, note: note.value.trim() || undefined,
      } });
      await reload(h("p", { class: "ok", id: "answered", role: "status" }, t("demand.answered", { id: d.id })));
    } catch (error) {
      button.disabled = false;
      fill(out, errorBox(error));
      // Answered meanwhile (elsewhere, or by another department for a demand addressed to no one): the list
      // as it stands now, this demand without the form the API would refuse again.
      if (error instanceof ApiError && error.status === 409) await reload(errorBox(error));
    }
  });
  return form;
}

/** The publisher's say in its demand: reject a resource answer, or withdraw it while unanswered. */
function publisherForm(d, reload) {
  const out = h("div", { class: "outcome" });
  const send = async (button, path, body, done) => {
    button.disabled = true;
    try {
      await api(`/demands/${d.id}/${path}`, { method: "POST", body });
      await reload(h("p", { class: "ok", id: path === "reject" ? "rejected" : "withdrawn", role: "status" }, done));
    } catch (error) {
      button.disabled = false;
      fill(out, errorBox(error));
      if (error instanceof ApiError && error.status === 409) await reload(errorBox(error));
    }
  };
  if (d.status === "open") {
    const button = h("button", { type: "button", class: "withdraw" }, t("demand.withdraw"));
    button.addEventListener("click", () => send(button, "withdraw", undefined, t("demand.withdrawnNote", { id: d.id })));
    return h("div", { class: "filters publisher-form", "data-demand": d.id }, button, out);
  }
  if (!d.answer || !d.answer.resource_id) return null;
  const reason = h("select", { name: "reason", class: "reject-reason" }, REJECTION_REASONS.map((v) => h("option", { value: v }, t(`rejection.${v}`))));
  const note = h("input", { name: "note", class: "reject-note", maxlength: 2000, size: 40 });
  const button = h("button", { type: "submit" }, t("demand.reject"));
  const form = h("form", { class: "filters publisher-form reject-form", "data-demand": d.id },
    h("span", {}, t("demand.rejectTitle")), h("label", {}, t("demand.reason"), reason), h("label", {}, t("demand.note"), note), button, out);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(button, "reject", { reason: reason.value, note: note.value.trim() || undefined }, t("demand.rejected", { id: d.id }));
  });
  return form;
}

function publishForm(depts, me, reload) {
  const field = (name, attrs = {}) => h("input", { name, id: `demand-${name}`, maxlength: 500, size: 36, ...attrs });
  const title = field("title", { required: true });
  const purpose = field("purpose", { required: true, maxlength: 2000 });
  const legal = field("legal_basis", { required: true, maxlength: 2000 });
  const description = h("textarea", { name: "description", id: "demand-description", rows: 2, cols: 36, maxlength: 10000 });
  const fields = h("textarea", { name: "fields", id: "demand-fields", rows: 2, cols: 24 });
  const addressee = h("select", { name: "addressee", id: "demand-addressee" },
    h("option", { value: "" }, t("demand.anyone")),
    [...depts.values()].filter((x) => x.id !== me && x.status === "active").map((x) => h("option", { value: x.code }, `${x.code} — ${x.name}`)));
  const due = h("input", { type: "date", name: "due", id: "demand-due", required: true });
  const out = h("div", { class: "outcome" });
  const button = h("button", { type: "submit", id: "demand-publish" }, t("demand.publish"));
  const form = h("form", { class: "filters card", id: "demand-form" },
    h("label", {}, t("demand.title"), title), h("label", {}, t("terms.purpose"), purpose),
    h("label", {}, t("resource.legalBasis"), legal), h("label", {}, t("resource.description"), description),
    h("label", {}, t("demand.fieldsOnePerLine"), fields), h("label", {}, t("demand.addressee"), addressee),
    h("label", {}, t("demand.dueDay"), due), button, out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const items = fields.value.split("\n").map((x) => x.trim()).filter(Boolean);
      button.disabled = true;
      const written = await api("/demands", { method: "POST", body: {
        document: {
          title: title.value.trim(), purpose: purpose.value.trim(), legal_basis: legal.value.trim(),
          description: description.value.trim() || undefined, fields: items.length ? items : undefined,
        },
        addressee: addressee.value || undefined,
        // Due by the end of the chosen day (UTC), as a period's To day includes its day.
        due_by: Date.parse(isoDateEnd(due.value)) / 1000,
      } });
      await reload(h("p", { class: "ok", id: "published", role: "status" }, t("demand.published", { id: written.record.id })));
    } catch (error) {
      button.disabled = false;
      // A due day less than a week ahead by the chain's clock, which the API judges: the browser's may be
      // days off it.
      fill(out, errorBox(refusedField(error, "INVALID_FIELD", "due_by", t("demand.dueTooSoon"))));
    }
  });
  return form;
}

export default {
  id: "demands",
  title: "nav.demands",
  requires: ["GET /demands", "GET /departments"],
  async render(view, { caps }) {
    const depts = await departmentsById();
    const me = caps.role === "department" ? caps.me.department_id : null;
    const canAnswer = me !== null && caps.can("POST /demands/{demand_id}/answer");
    const canReject = me !== null && caps.can("POST /demands/{demand_id}/reject");
    // A department's own resources, to answer with (read once: the catalog changes rarely under a page).
    const mine = canAnswer ? await every("/resources", { owner: me }) : [];
    const list = h("div", { id: "demands" });
    add(view, h("h1", {}, t("nav.demands")),
      h("p", { class: "muted" }, me === null ? t("demand.introAll") : t("demand.introDepartment")));
    if (me !== null && caps.can("POST /demands")) {
      add(view, h("details", { class: "no-print", id: "publish" }, h("summary", {}, t("demand.publishTitle")),
        publishForm(depts, me, (note) => load(note))));
    }
    add(view, list);
    const card = (d) => {
      const doc = d.document;
      return h("article", { class: "card demand", "data-demand": d.id, "data-status": d.status, "data-overdue": String(d.overdue) },
        h("h2", {}, t("demand.heading", { id: d.id }), " ", doc ? theirs(doc.title) : h("span", { class: "muted" }, t("demand.noText"))),
        h("p", {}, deptLabel(depts, d.publisher), " → ", d.addressee === null ? t("demand.anyone") : deptLabel(depts, d.addressee),
          " · ", t("demand.publishedAt", { when: when(d.published_at) }), " · ", dueMark(d), " · ",
          doc ? (d.verified ? h("span", { class: "ok" }, "✓ " + t("demand.textMatches")) : h("span", { class: "error" }, t("demand.textDiffers"))) : null),
        documentFacts(doc),
        rejectionsView(d, depts),
        answerView(d, depts),
        canAnswer && answerable(d, me) ? answerForm(d, mine, (note) => load(note)) : null,
        canReject && d.publisher === me ? publisherForm(d, (note) => load(note)) : null);
    };
    const section = (heading, id, items) => [
      heading ? h("h2", {}, heading) : null,
      items.length === 0 ? h("p", { class: "muted", id: `${id}-none` }, t("demand.none"))
        : paged(items, (slice) => h("div", { id }, slice.map(card)), "pager.demands"),
    ];
    const load = async (note) => {
      const all = await every("/demands");
      if (me === null) {
        const summary = t("demand.summary", { n: num(all.length), overdue: num(all.filter((d) => d.overdue).length) });
        fill(list, note || null, h("p", { id: "demand-summary" }, summary), section(null, "demand-list", all));
        return;
      }
      // Every member may read every demand; a department is shown its own: those it may answer (an answered
      // one addressed to no one stays with its answerer) and those it published.
      const toUs = all.filter((d) => d.addressee === me || (d.addressee === null && d.publisher !== me && (d.answer === null || d.answer.answered_by === me)));
      const byUs = all.filter((d) => d.publisher === me);
      const summary = t("demand.summary", { n: num(toUs.length + byUs.length), overdue: num([...toUs, ...byUs].filter((d) => d.overdue).length) });
      fill(list, note || null, h("p", { id: "demand-summary" }, summary),
        section(t("demand.toUs"), "demands-to-us", toUs), section(t("demand.byUs"), "demands-by-us", byUs));
    };
    await load();
  },
};
