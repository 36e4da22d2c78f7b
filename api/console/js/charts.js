// Charts as inline SVG drawn here (no chart library): horizontal bars with values, and a marker line.
import { s } from "./dom.js";
import { heading, num } from "./i18n.js";

/**
 * Horizontal bars. `items`: [{label, value, text?, cls?}], each label capitalised as a heading (a chart's
 * labels read alike, whether a status word or a score's name); `max` scales the bars (default: largest value);
 * `marker`: {value, label} draws a vertical line (a deadline, a target).
 */
export function bars(items, { max, marker, title, width = 520 } = {}) {
  const rowHeight = 26;
  const labelWidth = 190;
  const valueWidth = 90;
  const plot = width - labelWidth - valueWidth;
  const top = marker ? 18 : 4;
  const height = top + items.length * rowHeight + 4;
  const scaleMax = Math.max(max ?? 0, ...items.map((i) => i.value || 0), marker ? marker.value : 0) || 1;
  const x = (v) => labelWidth + (plot * Math.max(0, v)) / scaleMax;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart", "aria-label": title || "" },
    title ? s("title", {}, title) : null,
    items.map((item, i) => {
      const y = top + i * rowHeight;
      return s("g", { class: `bar ${item.cls || ""}` },
        s("text", { x: labelWidth - 8, y: y + 17, "text-anchor": "end", class: "label" }, heading(item.label)),
        s("rect", { x: labelWidth, y: y + 4, width: plot, height: rowHeight - 8, class: "track" }),
        s("rect", { x: labelWidth, y: y + 4, width: Math.max(0, x(item.value || 0) - labelWidth), height: rowHeight - 8, class: "fill" }),
        s("text", { x: labelWidth + plot + 6, y: y + 17, class: "value" }, item.text ?? num(item.value)));
    }),
    marker ? [
      s("line", { x1: x(marker.value), x2: x(marker.value), y1: 12, y2: height, class: "marker" }),
      s("text", { x: x(marker.value), y: 11, "text-anchor": "middle", class: "marker-label" }, marker.label),
    ] : null);
  return svg;
}

/** A percentage with one decimal, or — for no data. */
export function pct(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}
