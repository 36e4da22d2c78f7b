// One strings table per language (strings/en.js, strings/zh.js, the same keys); the choice is kept in
// localStorage. Elements with data-i18n="key" are re-labelled when the language changes.
import en from "./strings/en.js";
import zh from "./strings/zh.js";

export const TABLES = { en, zh };
const KEY = "dxl.lang";
const saved = localStorage.getItem(KEY);
let current = saved in TABLES ? saved : (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";

export function lang() {
  return current;
}

export function setLang(next) {
  if (!(next in TABLES)) return;
  current = next;
  localStorage.setItem(KEY, next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  translate(document);
}

/** The text of `key` in the current language, {name} replaced from `vars`. */
export function t(key, vars = {}) {
  const text = TABLES[current][key] ?? TABLES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

// A count or a volume grouped as the UI language writes it ("51,000"), one formatter per language.
const LOCALES = { en: "en-US", zh: "zh-CN" };
const numberFormats = new Map();

/**
 * A count or a volume (records, bytes, deliveries) in the current language's grouping; a value the API gives
 * as a string of digits (an event's uint256) is grouped whole, past 2^53. Never for an id, a block or a
 * sequence number, which are read as written. "—" for none.
 */
export function num(value) {
  if (value === null || value === undefined) return "—";
  if (!numberFormats.has(current)) numberFormats.set(current, new Intl.NumberFormat(LOCALES[current]));
  const format = numberFormats.get(current);
  if (typeof value === "number" && Number.isFinite(value)) return format.format(value);
  if (typeof value === "string" && /^[0-9]+$/.test(value)) return format.format(BigInt(value));
  return String(value);
}

/** `text` heading a column: its first letter capitalised where the language has capitals ("received" in a
 * chart heads a column "Received"); Chinese as it is. */
export function heading(text) {
  return text.charAt(0).toLocaleUpperCase(LOCALES[current]) + text.slice(1);
}

export function translate(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = t("app.title");
}
