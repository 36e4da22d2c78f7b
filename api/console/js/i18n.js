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

export function translate(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = t("app.title");
}
