// Exchange map: departments as nodes, and for each provider -> consumer pair an edge weighted by its
// agreements and deliveries concluded / recorded in the chosen period, receipts anchored in batches (the
// deliveries sent at volume, POST /receipts) included, from the audit trail's history, which for a department
// is its own exchanges only. An edge opens its agreements.
import { history } from "../api.js";
import { add, fill, h, s, table } from "../dom.js";
import { num, t } from "../i18n.js";
import { checkPeriod, departmentsById, deptLabel, isoDate, isoDateEnd } from "./common.js";

const SIZE = 520;
const NODE_RADIUS = 26;
// A code's label inside its node: shrunk to fit the circle down to this size, and under the node below it.
const LABEL_ROOM = 2 * NODE_RADIUS - 8;
const SMALLEST_INSIDE_PX = 9;

export function edgesOf(events) {
  const edges = new Map();
  for (const e of events) {
    const key = `${e.provider_id}>${e.consumer_id}`;
    const edge = edges.get(key) || { provider: e.provider_id, consumer: e.consumer_id, agreements: new Set(), deliveries: 0, receipts: 0, bytes: 0, records: 0 };
    if (e.event === "AgreementConcluded") edge.agreements.add(e.agreement_id);
    if (e.event === "DeliveryRecorded") {
      edge.deliveries += 1;
      edge.bytes += Number(e.fields.byteSize || 0);
      edge.records += Number(e.fields.recordCount || 0);
      if (e.agreement_id !== null) edge.agreements.add(e.agreement_id);
    }
    if (e.event === "ReceiptBatchAnchored") {
      // A batch's event counts its receipts (leaves); their sizes stay off the chain.
      edge.receipts += Number(e.fields.leafCount || 0);
      if (e.agreement_id !== null) edge.agreements.add(e.agreement_id);
    }
    edges.set(key, edge);
  }
  return [...edges.values()];
}

function edgeText(depts, e) {
  return t("map.edgeTitle", {
    provider: deptLabel(depts, e.provider), consumer: deptLabel(depts, e.consumer), agreements: num(e.agreements.size),
    deliveries: num(e.deliveries), receipts: num(e.receipts), bytes: num(e.bytes),
  });
}

function drawMap(depts, edges, onPick) {
  const nodes = [...depts.values()];
  const c = SIZE / 2;
  const radius = SIZE / 2 - 70;
  const at = new Map(nodes.map((d, i) => {
    const angle = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
    return [d.id, { x: c + radius * Math.cos(angle), y: c + radius * Math.sin(angle) }];
  }));
  const volume = (e) => e.deliveries + e.receipts;
  const maxVolume = Math.max(1, ...edges.map(volume));
  return s("svg", { viewBox: `0 0 ${SIZE} ${SIZE}`, width: SIZE, height: SIZE, class: "map", id: "exchange-map", role: "img", "aria-label": t("nav.map") },
    s("defs", {}, // In user units, so the arrow keeps its size whatever the edge width; its tip is the path's end (on the circle).
      s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 20, markerHeight: 20, markerUnits: "userSpaceOnUse", orient: "auto", overflow: "visible" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))),
    edges.map((e) => {
      const a = at.get(e.provider);
      const b = at.get(e.consumer);
      if (!a || !b) return null;
      // Curve each direction to its own side, so A->B and B->A stay apart.
      const mx = (a.x + b.x) / 2 + (b.y - a.y) * 0.15;
      const my = (a.y + b.y) / 2 - (b.x - a.x) * 0.15;
      const width = 2 + (8 * volume(e)) / maxVolume;
      // Start and end on the circles (radius 26), along the curve's tangents, so the arrow tip touches the node.
      const toward = (p, q, d) => {
        const n = Math.hypot(q.x - p.x, q.y - p.y) || 1;
        return { x: p.x + ((q.x - p.x) * d) / n, y: p.y + ((q.y - p.y) * d) / n };
      };
      const start = toward(a, { x: mx, y: my }, NODE_RADIUS);
      const end = toward(b, { x: mx, y: my }, NODE_RADIUS + 2);
      const group = s("g", { class: "edge", tabindex: 0, "data-edge": `${deptLabel(depts, e.provider)}>${deptLabel(depts, e.consumer)}` },
        s("title", {}, edgeText(depts, e)),
        s("path", { d: `M ${start.x} ${start.y} Q ${mx} ${my} ${end.x} ${end.y}`, "stroke-width": width, "marker-end": "url(#arrow)" }),
        // The label sits on the curve's midpoint (a quadratic Bezier's point at t = 1/2).
        s("text", { x: (a.x + 2 * mx + b.x) / 4, y: (a.y + 2 * my + b.y) / 4, "text-anchor": "middle", class: "edge-label" },
          `${num(e.agreements.size)} / ${num(volume(e))}`));
      group.addEventListener("click", () => onPick(e));
      group.addEventListener("keydown", (event) => event.key === "Enter" && onPick(e));
      return group;
    }),
    nodes.map((d) => {
      const p = at.get(d.id);
      return s("g", { class: `node status-${d.status}`, "data-node": d.code },
        s("title", {}, `${d.code} — ${d.name}`),
        s("circle", { cx: p.x, cy: p.y, r: NODE_RADIUS }),
        s("text", { x: p.x, y: p.y + 4, "text-anchor": "middle", class: "node-label" }, d.code));
    }));
}

/**
 * Each node's code kept legible once the map is in the page (text is measured there): shrunk to fit its circle,
 * or, a code too long for that (up to 32 letters), written under the node in ink and kept inside the map. White
 * on the circle, the letters past its edge were white on the map's white, and a long code ran over its
 * neighbours.
 */
function fitLabels(svg) {
  for (const label of svg.querySelectorAll(".node-label")) {
    const width = label.getComputedTextLength();
    if (width <= LABEL_ROOM) continue;
    const size = (12 * LABEL_ROOM) / width;
    if (size >= SMALLEST_INSIDE_PX) {
      label.style.fontSize = `${size}px`;
      continue;
    }
    const x = Number(label.getAttribute("x"));
    label.classList.add("outside");
    label.setAttribute("y", Number(label.getAttribute("y")) + NODE_RADIUS + 12);
    const half = label.getComputedTextLength() / 2;
    const [anchor, at] = x - half < 4 ? ["start", 4] : x + half > SIZE - 4 ? ["end", SIZE - 4] : ["middle", x];
    label.setAttribute("text-anchor", anchor);
    label.setAttribute("x", at);
  }
}

export default {
  id: "map",
  title: "nav.map",
  requires: ["GET /audit/history", "GET /departments"],
  async render(view, { params, go, caps }) {
    const depts = await departmentsById();
    const from = h("input", { type: "date", name: "from", id: "map-from", value: params.get("from") || "" });
    const to = h("input", { type: "date", name: "to", id: "map-to", value: params.get("to") || "" });
    const form = h("form", { class: "filters", id: "map-filters" },
      h("label", {}, t("score.from"), from), h("label", {}, t("score.to"), to),
      h("button", { type: "submit" }, t("score.show")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      go(`#/map?${new URLSearchParams({ from: from.value, to: to.value })}`);
    });
    add(view, h("h1", {}, t("nav.map")), caps.role === "department" ? h("p", { class: "muted" }, t("map.onlyYours")) : null, form);
    checkPeriod(from.value, to.value);
    const events = await history({
      event: ["AgreementConcluded", "DeliveryRecorded", "ReceiptBatchAnchored"], from: isoDate(from.value), to: isoDateEnd(to.value),
    });
    const edges = edgesOf(events);
    const picked = h("div", { id: "edge-detail", class: "card" },
      edges.length ? h("p", { class: "muted" }, t("map.pick")) : h("p", { class: "muted", id: "map-empty" }, t("map.none")));
    const pick = (e) => fill(picked,
      h("h3", {}, `${deptLabel(depts, e.provider)} → ${deptLabel(depts, e.consumer)}`),
      h("p", {}, edgeText(depts, e)),
      h("ul", {}, [...e.agreements].map((id) => h("li", {}, h("a", { href: `#/agreement/${id}`, class: "agreement-link" }, t("timeline.title", { id }))))));
    const map = drawMap(depts, edges, pick);
    add(view,
      h("div", { class: "map-layout" }, map, picked),
      h("p", { class: "muted" }, t("map.legend")),
      edges.length === 0 ? null : table([
        [t("timeline.provider"), (e) => deptLabel(depts, e.provider)],
        [t("timeline.consumer"), (e) => deptLabel(depts, e.consumer)],
        [t("map.agreements"), (e) => [...e.agreements].map((id) => h("a", { href: `#/agreement/${id}`, class: "agreement-link" }, `#${id} `))],
        [t("map.deliveries"), (e) => num(e.deliveries)],
        [t("map.receipts"), (e) => num(e.receipts)],
        [t("timeline.records"), (e) => num(e.records)],
        [t("timeline.bytes"), (e) => num(e.bytes)],
      ], edges, { id: "map-table" }));
    fitLabels(map);
  },
};
