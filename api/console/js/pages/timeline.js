// An agreement's life on the ledger, oldest first: request -> decision -> both signatures (the agreement)
// -> grants -> deliveries -> acknowledgement or dispute, each step with its transaction, block and time and
// its proof (chain location and the event's decoded fields, as the audit trail indexed them).
import { api, ApiError, every, history } from "../api.js";
import { add, describeError, errorBox, fill, h, mono, paged, pagedTable, theirs, when } from "../dom.js";
import { num, t } from "../i18n.js";
import { actionLabel, departmentsById, deptLabel, durationText, idArg, statusBadge } from "./common.js";

const PHASE = {
  AccessRequested: "request",
  RequestApproved: "decision",
  RequestRejected: "decision",
  RequestWithdrawn: "decision",
  AgreementConcluded: "signatures",
  GrantIssued: "grant",
  GrantRevoked: "grant",
  DeliveryRecorded: "delivery",
  DeliveryAcknowledged: "settlement",
  DeliveryDisputed: "settlement",
  ReceiptBatchAnchored: "delivery",
  ReceiptBatchAcknowledged: "settlement",
  ReceiptDisputed: "settlement",
  AgreementSuspended: "status",
  AgreementReinstated: "status",
  AgreementRevoked: "status",
};
const REQUEST_EVENTS = ["AccessRequested", "RequestApproved", "RequestRejected", "RequestWithdrawn"];

function summary(event, depts) {
  const f = event.fields || {};
  switch (event.event) {
    case "AccessRequested":
      return t("timeline.sumRequested", { consumer: deptLabel(depts, f.consumer), provider: deptLabel(depts, f.provider), purpose: f.purpose ?? "" });
    case "RequestApproved":
      return f.automatic ? t("timeline.sumApprovedAuto") : t("timeline.sumApproved", { provider: deptLabel(depts, f.provider) });
    case "RequestRejected":
      return t("timeline.sumRejected", { reason: f.reasonCode });
    case "AgreementConcluded":
      return h("span", {}, t("timeline.sumConcluded", { id: f.agreementId }), h("br"),
        t("timeline.providerSignature"), " ", mono(f.providerSignature, 8), h("br"),
        t("timeline.consumerSignature"), " ", mono(f.consumerSignature, 8));
    case "GrantIssued":
      return t("timeline.sumGrant", { id: f.grantId, until: when(f.expiresAt) });
    case "DeliveryRecorded":
      return h("span", {}, t("timeline.sumDelivery", { records: num(f.recordCount), bytes: num(f.byteSize) }), " ",
        mono(f.deliveryId, 10), " ",
        h("a", { href: `#/verify?delivery=${f.deliveryId}`, class: "verify-link" }, t("timeline.verifyThis")));
    case "DeliveryAcknowledged":
      return t("timeline.sumAcknowledged");
    case "ReceiptBatchAnchored":
      return h("span", {}, t("timeline.sumBatch", { n: num(f.leafCount), first: f.firstSequence }), " ", mono(f.root, 10));
    case "ReceiptBatchAcknowledged":
      return t("timeline.sumBatchAcknowledged", { first: f.firstSequence });
    case "ReceiptDisputed":
      return h("span", {}, t("timeline.sumReceiptDisputed"), " ", mono(f.deliveryId, 10));
    case "DeliveryDisputed":
      return h("span", {}, t("timeline.sumDisputed"), " ", mono(f.consumerCommitment ?? "", 10));
    default:
      return "";
  }
}

function proof(event) {
  const loc = event.location;
  const rows = [
    [t("timeline.tx"), loc.tx_hash], [t("timeline.block"), `${loc.block_number} (${loc.block_hash})`],
    [t("timeline.logIndex"), loc.log_index], [t("timeline.contract"), loc.address],
  ];
  const body = h("div", {},
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, h("code", {}, String(v)))])),
    h("pre", { class: "fields" }, JSON.stringify(event.fields, null, 2)));
  const f = event.fields || {};
  const provenance = event.event === "DeliveryRecorded" ? `/audit/deliveries/${event.delivery_id}/provenance`
    : event.event.startsWith("ReceiptBatch") ? `/audit/receipt-batches/${f.grantId}/${f.firstSequence}/provenance`
      : null;
  if (provenance) {
    const out = h("pre", { class: "fields provenance" });
    const button = h("button", { type: "button", class: "secondary" }, t("timeline.loadProvenance"));
    button.addEventListener("click", async () => {
      try {
        out.textContent = JSON.stringify(await api(provenance), null, 2);
      } catch (error) {
        out.textContent = describeError(error).filter(Boolean).join("\n");
      }
    });
    add(body, button, out);
  }
  return h("details", { class: "proof" }, h("summary", {}, t("timeline.proof")), body);
}

// The terms both departments signed, as the service stores them: the chain holds their hash, and `verified`
// says whether the stored text still hashes to it (an edited copy is shown, marked as not matching).
function termsView(terms) {
  const head = h("h2", {}, t("terms.title"));
  if (!terms) return h("section", { id: "terms", "data-verified": "none" }, head, h("p", { class: "muted" }, t("terms.none")));
  const doc = terms.document || {};
  const duty = doc["odrl:duty"] || {};
  const list = (v) => (Array.isArray(v) ? v.map(actionLabel).join(t("app.listSeparator")) : v);
  const rows = [
    [t("terms.fields"), (doc["csvw:column"] || []).map((c) => c["csvw:name"]).join(", ")],
    [t("terms.purpose"), doc["odrl:purpose"]],
    [t("resource.legalBasis"), doc["dcatap:applicableLegislation"]],
    [t("terms.format"), doc["dcat:mediaType"]],
    [t("resource.periodicity"), doc["dct:accrualPeriodicity"] && t("terms.every", { period: durationText(doc["dct:accrualPeriodicity"]) })],
    [t("terms.maxDelay"), doc["odrl:delayPeriod"] && durationText(doc["odrl:delayPeriod"])],
    [t("terms.permitted"), list(doc["odrl:permission"])],
    [t("terms.prohibited"), list(doc["odrl:prohibition"]) || t("terms.nothing")],
    [t("terms.retention"), doc["dxl:retentionDays"] == null ? null : t(doc["dxl:retentionDays"] === 1 ? "terms.day" : "terms.days", { n: doc["dxl:retentionDays"] })],
    [t("terms.providerDuty"), duty["odrl:assigner"]],
    [t("terms.consumerDuty"), duty["odrl:assignee"]],
  ].filter(([, v]) => v != null && v !== "");
  return h("section", { id: "terms", "data-verified": String(terms.verified) }, head,
    h("p", {}, mono(terms.hash, 14), " ", terms.verified ? h("span", { class: "ok" }, "✓ " + t("terms.matches"))
      : h("span", { class: "error" }, t("terms.mismatch"))),
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
}

const PROVIDER_SCORES = ["timeliness", "completeness", "accuracy"];
const CONSUMER_SCORES = ["purpose_compliance"];

// Period n of the contract's evaluation period (GET /evaluation-period: its length in seconds), numbered
// from the epoch as the chain numbers each score's period.
function periodText(n, length) {
  return t("eval.period", { n, from: when(n * length).slice(0, 10), to: when((n + 1) * length - 1).slice(0, 10) });
}

/**
 * The scores given and received under the agreement, period by period, and the form a party may score the
 * other side with: the consumer the provider, the provider the consumer, once per period each.
 */
async function evaluationsView(agreement, depts, caps) {
  const section = h("section", { id: "evaluations" });
  const me = caps.role === "department" ? caps.me.department_id : null;
  const side = me === agreement.consumer ? "provider" : me === agreement.provider ? "consumer" : null;
  const canScore = side !== null && caps.can("POST /agreements/{agreement_id}/evaluations");
  const deliveries = canScore ? await every("/deliveries", { agreement_id: agreement.id }) : [];
  const load = async (note) => {
    const [period, found] = await Promise.all([api("/evaluation-period"), every(`/agreements/${agreement.id}/evaluations`)]);
    const list = found.sort((a, b) => b.period - a.period || b.block_number - a.block_number);
    // The current period by the chain's clock and the deployed contract's length, as the API reads them (not
    // this browser's clock, which may be hours off the chain's); a score the API refuses all the same
    // (ALREADY_SCORED: a block of the next period came meanwhile) is shown with the list as it stands.
    const scored = list.some((e) => e.scorer === me && e.period >= period.current);
    fill(section, h("h2", {}, t("eval.title")), note || null,
      list.length === 0 ? h("p", { class: "muted", id: "evaluations-none" }, t("eval.none")) : pagedTable([
        [t("eval.periodHead"), (e) => periodText(e.period, period.length_seconds)],
        [t("eval.direction"), (e) => h("span", { "data-direction": me === null ? "read" : e.scorer === me ? "given" : "received" },
          me === null ? "" : e.scorer === me ? t("eval.given") : t("eval.received"), me === null ? "" : " · ",
          t("eval.scoredBy", { scorer: deptLabel(depts, e.scorer), scored: deptLabel(depts, e.scored), side: t(`timeline.${e.scored_side}`) }))],
        [t("eval.scores"), (e) => Object.entries(e.scores).map(([k, v]) => `${t(`eval.${k}`)} ${v}`).join(" · ")],
        [t("eval.comment"), (e) => (e.comment && e.comment.document ? theirs(e.comment.document.comment) : "—")],
        [t("eval.block"), (e) => String(e.block_number)],
      ], list, { id: "evaluation-list" }),
      !canScore ? null : scored ? h("p", { class: "muted", id: "scored-this-period" }, t("eval.scoredThisPeriod"))
        : deliveries.length === 0 ? h("p", { class: "muted", id: "no-evidence" }, t("eval.noEvidence")) : form());
  };
  const form = () => {
    const names = side === "provider" ? PROVIDER_SCORES : CONSUMER_SCORES;
    const selects = names.map((n) => h("select", { name: n, id: `score-${n}` }, [5, 4, 3, 2, 1].map((v) => h("option", { value: v }, String(v)))));
    const evidence = h("select", { name: "delivery_id", id: "score-evidence" },
      deliveries.map((d) => h("option", { value: d.delivery_id }, `${d.delivery_id.slice(0, 12)}… ${when(d.recorded_at)}`)));
    const comment = h("input", { name: "comment", id: "score-comment", maxlength: 2000, size: 40 });
    const out = h("div", { class: "outcome" });
    const button = h("button", { type: "submit", id: "score-submit" }, t(`eval.score_${side}`));
    const el = h("form", { class: "filters card", id: "evaluation-form" },
      names.map((n, i) => h("label", {}, t(`eval.${n}`), selects[i])),
      h("label", {}, t("eval.evidence"), evidence), h("label", {}, t("eval.comment"), comment), button, out);
    el.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      const scores = Object.fromEntries(names.map((n, i) => [n, Number(selects[i].value)]));
      try {
        const written = await api(`/agreements/${agreement.id}/evaluations`, { method: "POST", body: {
          delivery_id: evidence.value, ...scores, comment: comment.value.trim() || undefined } });
        await load(h("p", { class: "ok", id: "scored", role: "status" }, t("eval.done", { period: written.record.period })));
      } catch (error) {
        button.disabled = false;
        fill(out, errorBox(error));
        if (error instanceof ApiError && error.status === 409) await load(errorBox(error));
      }
    });
    return el;
  };
  await load();
  return section;
}

export default {
  id: "agreement",
  title: "nav.timeline",
  nav: false,
  requires: ["GET /agreements/{agreement_id}", "GET /audit/history", "GET /departments"],
  async render(view, { args, caps }) {
    const id = idArg(args);
    const [agreement, depts] = await Promise.all([api(`/agreements/${id}`), departmentsById()]);
    // The request's answer deadline, held against its provider as the scorecard holds it (the API's overdue).
    const request = caps.can("GET /requests/{request_id}") ? await api(`/requests/${agreement.request_id}`) : null;
    // The agreement's own events, and its request's (which precede the agreement and so carry no agreement id);
    // the request's events are looked up by resource and event, not every event of a busy resource.
    const [own, requests] = await Promise.all([
      history({ agreement: id }),
      history({ resource: agreement.resource_id, event: REQUEST_EVENTS }),
    ]);
    const position = (e) => e.location.block_number * 1e6 + e.location.log_index;
    const events = [...requests.filter((e) => e.request_id === agreement.request_id), ...own]
      .sort((a, b) => position(a) - position(b));
    add(view, 
      h("h1", { id: "timeline-title" }, t("timeline.title", { id })),
      h("p", {}, `${deptLabel(depts, agreement.provider)} → ${deptLabel(depts, agreement.consumer)} · `,
        h("a", { href: `#/resource/${agreement.resource_id}` }, t("timeline.resource", { id: agreement.resource_id })), " · ",
        statusBadge(agreement.status), " · ", t("timeline.valid", { from: when(agreement.valid_from), until: when(agreement.valid_until) })),
      request ? h("p", { id: "request-deadline" }, t("timeline.requestDeadline", { id: request.id, by: when(request.answer_by), decided: when(request.decided_at) }),
        request.overdue ? [" ", h("span", { class: "badge status-overdue", "data-overdue": "true" }, t("timeline.decidedLate"))] : null) : null,
      termsView(agreement.terms),
      caps.can("GET /agreements/{agreement_id}/evaluations") ? await evaluationsView(agreement, depts, caps) : null,
      // An agreement delivering daily for years has thousands of steps: 50 at a time, oldest first.
      paged(events, (slice) => h("ol", { class: "timeline", id: "timeline" }, slice.map((e) =>
        h("li", { class: `step phase-${PHASE[e.event] || "other"}`, "data-event": e.event },
          h("div", { class: "step-head" },
            h("span", { class: "phase" }, t(`phase.${PHASE[e.event] || "other"}`)),
            h("strong", {}, t(`event.${e.event}`)),
            h("span", { class: "muted" }, ` ${e.time.replace("T", " ").replace("Z", " UTC")} · ${t("timeline.block")} ${e.location.block_number} · ${t("timeline.tx")} `),
            mono(e.location.tx_hash, 10)),
          h("div", { class: "step-body" }, summary(e, depts)),
          proof(e)))), "pager.steps"),
      events.length === 0 ? h("p", { class: "muted" }, t("timeline.notIndexed")) : null);
  },
};
