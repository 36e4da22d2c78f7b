// An agreement's life on the ledger, oldest first: request -> decision -> both signatures (the agreement)
// -> grants -> deliveries -> acknowledgement or dispute, each step with its transaction, block and time and
// its proof (chain location and the event's decoded fields, as the audit trail indexed them).
import { api, history } from "../api.js";
import { add, describeError, h, mono, paged, when } from "../dom.js";
import { t } from "../i18n.js";
import { departmentsById, deptLabel, idArg, statusBadge } from "./common.js";

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
      return h("span", {}, t("timeline.sumDelivery", { records: f.recordCount, bytes: f.byteSize }), " ",
        mono(f.deliveryId, 10), " ",
        h("a", { href: `#/verify?delivery=${f.deliveryId}`, class: "verify-link" }, t("timeline.verifyThis")));
    case "DeliveryAcknowledged":
      return t("timeline.sumAcknowledged");
    case "ReceiptBatchAnchored":
      return h("span", {}, t("timeline.sumBatch", { n: f.leafCount, first: f.firstSequence }), " ", mono(f.root, 10));
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
  const list = (v) => (Array.isArray(v) ? v.join(", ") : v);
  const rows = [
    [t("terms.fields"), (doc["csvw:column"] || []).map((c) => c["csvw:name"]).join(", ")],
    [t("terms.purpose"), doc["odrl:purpose"]],
    [t("resource.legalBasis"), doc["dcatap:applicableLegislation"]],
    [t("terms.format"), doc["dcat:mediaType"]],
    [t("resource.periodicity"), doc["dct:accrualPeriodicity"]],
    [t("terms.maxDelay"), doc["odrl:delayPeriod"]],
    [t("terms.permitted"), list(doc["odrl:permission"])],
    [t("terms.prohibited"), list(doc["odrl:prohibition"]) || t("terms.nothing")],
    [t("terms.retention"), doc["dxl:retentionDays"] == null ? null : t("terms.days", { n: doc["dxl:retentionDays"] })],
    [t("terms.providerDuty"), duty["odrl:assigner"]],
    [t("terms.consumerDuty"), duty["odrl:assignee"]],
  ].filter(([, v]) => v != null && v !== "");
  return h("section", { id: "terms", "data-verified": String(terms.verified) }, head,
    h("p", {}, mono(terms.hash, 14), " ", terms.verified ? h("span", { class: "ok" }, "✓ " + t("terms.matches"))
      : h("span", { class: "error" }, t("terms.mismatch"))),
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
}

export default {
  id: "agreement",
  title: "nav.timeline",
  nav: false,
  requires: ["GET /agreements/{agreement_id}", "GET /audit/history", "GET /departments"],
  async render(view, { args }) {
    const id = idArg(args);
    const [agreement, depts] = await Promise.all([api(`/agreements/${id}`), departmentsById()]);
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
      termsView(agreement.terms),
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
