// Building DOM nodes from data without innerHTML: text from the API is always a text node, never markup.
import { ApiError } from "./api.js";
import { num, t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return node;
}

/** An HTML element: h("a", {href: "#/x"}, "text", child, ...). */
export function h(tag, attrs, ...children) {
  return append(setAttrs(document.createElement(tag), attrs), children);
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
  return append(setAttrs(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** Replace the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** 0x1234…abcd, the whole value in the title. */
export function short(hex, keep = 10) {
  if (typeof hex !== "string" || hex.length <= keep * 2 + 1) return hex ?? "";
  return `${hex.slice(0, keep)}…${hex.slice(-6)}`;
}

export function mono(hex, keep) {
  return h("code", { class: "hex", title: hex }, short(hex, keep));
}

/** A local date-time for a unix timestamp (seconds). */
export function when(seconds) {
  if (!seconds) return "—";
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** Download `text` as a file named `name`. */
// A CSV starts with a UTF-8 byte order mark, as the catalog's export does (GET /resources/export?format=csv):
// without it Excel reads the file in the locale's code page, and the Chinese column names and text come out garbled.
export function download(name, text, type = "text/csv;charset=utf-8") {
  const bom = type.startsWith("text/csv") ? "\uFEFF" : "";
  save(name, new Blob([bom + text], { type }));
}

/** Save `blob` as a file named `name` (the browser's download). */
export function save(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A bad input the page found itself: its message is already in the user's language and says what to do. */
export class PageError extends Error {
  constructor(message) {
    super(message);
    this.name = "PageError";
  }
}

// What an API refusal means for the user, by HTTP status; the API's code and message follow as the detail.
const STATUS_TEXT = new Map([
  [0, "error.unreachable"], [400, "error.invalid"], [401, "signin.rejected"], [403, "error.forbidden"],
  [404, "error.notFound"], [409, "error.conflict"], [413, "error.tooLarge"], [422, "error.invalid"],
  [429, "error.busy"],
]);

/** An error as [headline in the user's language, detail or null]: never a bare script error. */
export function describeError(error) {
  if (error instanceof PageError) return [error.message, null];
  if (error instanceof ApiError) {
    const key = error.status >= 500 ? "error.server" : STATUS_TEXT.get(error.status) || "error.refused";
    return [t(key), `${error.code}: ${error.message}`];
  }
  if (error && error.name === "PayloadFormatError") return [t("error.payloadFormat"), error.message];
  if (error && error.name === "NotReadableError") return [t("error.unreadable"), null];
  return [t("error.page"), String((error && error.message) || error)];
}

/** An error from the API (or the page) as an alert: what it means, then the API's code and message. */
export function errorBox(error) {
  const [headline, detail] = describeError(error);
  return h("div", { class: "error", role: "alert" },
    h("p", { class: "error-headline" }, headline), detail ? h("p", { class: "error-detail" }, detail) : null);
}

/** A table: `columns` are [header, cell(row)] pairs. */
export function table(columns, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, columns.map(([head]) => h("th", {}, head)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

/** Rows a table (or steps a timeline) shows at once: a resource's deliveries or a catalog run to thousands. */
export const PAGE_ROWS = 50;

/**
 * `items` drawn PAGE_ROWS at a time by `draw(slice)`, with Previous / Next and which of how many are shown
 * (`counted`: the strings key that says so); no pager when they fit on one page. The items are all in hand
 * (read once): a page turn redraws, it does not read again.
 */
export function paged(items, draw, counted = "pager.rows") {
  let shown = draw(items.slice(0, PAGE_ROWS));
  if (items.length <= PAGE_ROWS) return shown;
  const pages = Math.ceil(items.length / PAGE_ROWS);
  const previous = h("button", { type: "button", class: "secondary", "data-page-turn": "previous" }, "← " + t("pager.previous"));
  const next = h("button", { type: "button", class: "secondary", "data-page-turn": "next" }, t("pager.next") + " →");
  const where = h("span", { class: "muted", role: "status" });
  let current = 0;
  const label = () => {
    const start = current * PAGE_ROWS;
    fill(where, t(counted, { from: num(start + 1), to: num(Math.min(items.length, start + PAGE_ROWS)), n: num(items.length) }));
    previous.disabled = current === 0;
    next.disabled = current === pages - 1;
  };
  const go = (page) => {
    current = page;
    const drawn = draw(items.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS));
    shown.replaceWith(drawn);
    shown = drawn;
    label();
  };
  previous.addEventListener("click", () => go(current - 1));
  next.addEventListener("click", () => go(current + 1));
  label();
  return h("div", { class: "paged" }, shown, h("p", { class: "pager no-print" }, previous, " ", where, " ", next));
}

/** table(), paged. */
export function pagedTable(columns, rows, attrs = {}) {
  return paged(rows, (slice) => table(columns, slice, attrs));
}

/**
 * A department's own words beside other text (a name before a status, one keyword among others): isolated,
 * so a right-to-left or override character in them reorders only them, never the text around.
 */
export function theirs(text) {
  return h("bdi", {}, text);
}

/** Append children to `node`, skipping null / undefined / false (Element.append would print "null"). */
export function add(node, ...children) {
  return append(node, children);
}
