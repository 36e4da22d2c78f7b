// One resource: its catalog document, and (for those the API lets read exchanges) its agreements, grants
// and deliveries, each agreement linking to its timeline.
import { api, every, history } from "../api.js";
import { add, h, mono, pagedTable, table, theirs, when } from "../dom.js";
import { num, t } from "../i18n.js";
import { departmentsById, deptLabel, idArg, resourceTitle, shareTypeLabel, statusBadge } from "./common.js";

// The catalog document's facts, listed with the entry's own so that every value starts at one edge (two lists
// aligned their values apart); then its fields.
function documentFacts(doc) {
  if (!doc) return [];
  const contact = doc["dcat:contactPoint"] || {};
  const rows = [
    [t("resource.description"), doc["dct:description"]],
    [t("resource.keywords"), (doc["dcat:keyword"] || []).flatMap((k, i) => (i ? [", ", theirs(k)] : [theirs(k)]))],
    [t("resource.periodicity"), doc["dct:accrualPeriodicity"]],
    [t("resource.legalBasis"), doc["dcatap:applicableLegislation"]],
    [t("resource.accessRights"), doc["dct:accessRights"]],
    [t("resource.contact"), [contact["vcard:fn"], contact["vcard:hasEmail"]].filter(Boolean).flatMap((v, i) => (i ? [" · ", theirs(v)] : [theirs(v)]))],
  ].filter(([, v]) => (Array.isArray(v) ? v.length : v));
  return rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);
}

function columnsView(doc) {
  if (!doc) return h("p", { class: "muted" }, t("resource.noDocument"));
  return h("div", {},
    h("h3", {}, t("resource.columns")),
    table([
      [t("resource.column"), (c) => h("code", {}, c["csvw:name"])],
      [t("resource.datatype"), (c) => c["csvw:datatype"]],
      [t("resource.description"), (c) => c["dct:description"] || ""],
    ], doc["csvw:column"] || []));
}

export default {
  id: "resource",
  title: "nav.resource",
  nav: false,
  requires: ["GET /resources/{resource_id}", "GET /departments"],
  async render(view, { args, caps }) {
    const id = idArg(args);
    const [r, depts] = await Promise.all([api(`/resources/${id}`), departmentsById()]);
    add(view, 
      h("p", {}, h("a", { href: "#/catalog" }, "← " + t("nav.catalog"))),
      h("h1", { id: "resource-title" }, resourceTitle(r)),
      h("dl", { class: "facts" },
        h("dt", {}, t("catalog.id")), h("dd", {}, r.id),
        h("dt", {}, t("catalog.owner")), h("dd", {}, `${r.owner_code} — `, theirs(depts.get(r.owner)?.name ?? "")),
        h("dt", {}, t("catalog.shareType")), h("dd", {}, shareTypeLabel(r.share_type)),
        h("dt", {}, t("catalog.sensitivity")), h("dd", {}, r.sensitivity),
        h("dt", {}, t("resource.metadataHash")), h("dd", {}, mono(r.metadata_hash, 14), " ",
          r.verified ? h("span", { class: "ok" }, "✓ " + t("catalog.documentMatches")) : h("span", { class: "muted" }, t("catalog.noDocument"))),
        h("dt", {}, t("resource.schemaHash")), h("dd", {}, mono(r.schema_hash, 14)),
        documentFacts(r.metadata)),
      columnsView(r.metadata));
    const exchanges = ["GET /agreements", "GET /grants", "GET /deliveries", "GET /audit/history"];
    if (!caps.canAll(exchanges)) {
      add(view, h("p", { class: "muted", id: "exchanges-hidden" }, t("resource.exchangesNotForRole")));
      return;
    }
    // This resource's exchanges only, every page of them (the API filters by resource, and for a department
    // by party): the consortium's newest 500 of each, filtered here, would lose a resource's older ones.
    const [mine, grants, delivered, batchEvents] = await Promise.all([
      ...["/agreements", "/grants", "/deliveries"].map((path) => every(path, { resource_id: id })),
      // Deliveries sent at volume (POST /receipts) are anchored in batches, not listed one by one.
      history({ resource: id, event: ["ReceiptBatchAnchored", "ReceiptBatchAcknowledged"] }),
    ]);
    const batchKey = (e) => `${e.fields.grantId}/${e.fields.firstSequence}`;
    const acknowledged = new Set(batchEvents.filter((e) => e.event === "ReceiptBatchAcknowledged").map(batchKey));
    const batches = batchEvents.filter((e) => e.event === "ReceiptBatchAnchored").reverse(); // newest first, as the lists
    const grantAgreement = new Map(grants.map((g) => [g.id, g.agreement_id]));
    add(view, 
      h("h2", {}, t("resource.agreements")),
      caps.role === "department" ? h("p", { class: "muted" }, t("resource.onlyYours")) : null,
      mine.length === 0 ? h("p", { class: "muted" }, t("resource.none")) : pagedTable([
        [t("timeline.agreement"), (a) => h("a", { href: `#/agreement/${a.id}`, class: "agreement-link" }, `#${a.id}`)],
        [t("timeline.provider"), (a) => deptLabel(depts, a.provider)],
        [t("timeline.consumer"), (a) => deptLabel(depts, a.consumer)],
        [t("timeline.status"), (a) => statusBadge(a.status)],
        [t("timeline.validFrom"), (a) => when(a.valid_from)],
        [t("timeline.validUntil"), (a) => when(a.valid_until)],
      ], mine, { id: "resource-agreements" }),
      h("h2", {}, t("resource.deliveries")),
      delivered.length === 0 ? h("p", { class: "muted" }, t("resource.none")) : pagedTable([
        [t("verify.deliveryId"), (d) => mono(d.delivery_id)],
        [t("timeline.agreement"), (d) => h("a", { href: `#/agreement/${grantAgreement.get(d.grant_id)}` }, `#${grantAgreement.get(d.grant_id)}`)],
        [t("timeline.provider"), (d) => deptLabel(depts, d.provider)],
        [t("timeline.consumer"), (d) => deptLabel(depts, d.consumer)],
        [t("timeline.records"), (d) => num(d.record_count)],
        [t("timeline.bytes"), (d) => num(d.byte_size)],
        [t("timeline.status"), (d) => statusBadge(d.status)],
        [t("timeline.time"), (d) => when(d.recorded_at)],
      ], delivered, { id: "resource-deliveries" }),
      h("h2", {}, t("resource.batches")),
      batches.length === 0 ? h("p", { class: "muted" }, t("resource.none")) : pagedTable([
        [t("resource.batchRoot"), (e) => mono(e.fields.root)],
        [t("timeline.agreement"), (e) => h("a", { href: `#/agreement/${e.agreement_id}` }, `#${e.agreement_id}`)],
        [t("timeline.provider"), (e) => deptLabel(depts, e.provider_id)],
        [t("timeline.consumer"), (e) => deptLabel(depts, e.consumer_id)],
        [t("resource.receipts"), (e) => num(e.fields.leafCount)],
        [t("timeline.status"), (e) => statusBadge(acknowledged.has(batchKey(e)) ? "acknowledged" : "anchored")],
        [t("timeline.time"), (e) => when(e.timestamp)],
      ], batches, { id: "resource-batches" }));
  },
};
