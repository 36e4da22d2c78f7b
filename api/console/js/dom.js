// Building DOM nodes from data without innerHTML: text from the API is always a text node, never markup.

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
export function download(name, text, type = "text/csv;charset=utf-8") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** An error from the API (or the page) as an alert paragraph. */
export function errorBox(error) {
  const code = error && error.code ? error.code : (error && error.name) || "Error";
  return h("p", { class: "error", role: "alert" }, `${code}: ${error && error.message}`);
}

/** A table: `columns` are [header, cell(row)] pairs. */
export function table(columns, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, columns.map(([head]) => h("th", {}, head)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

/** Append children to `node`, skipping null / undefined / false (Element.append would print "null"). */
export function add(node, ...children) {
  return append(node, children);
}
