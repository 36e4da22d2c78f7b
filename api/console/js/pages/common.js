// What several pages share: the department directory and labels for ledger values.
import { ApiError, every } from "../api.js";
import { h, mono, PageError } from "../dom.js";
import { t } from "../i18n.js";

let departments = null;

/** id -> department record (GET /departments), loaded once per page load. */
export async function departmentsById() {
  if (departments === null) {
    const list = await every("/departments");
    departments = new Map(list.map((d) => [d.id, d]));
  }
  return departments;
}

export function deptLabel(map, id) {
  const d = map.get(Number(id));
  return d ? d.code : `#${id}`;
}

/**
 * Who holds `address`: the department whose signing key it is, by its code, or else the role the ledger
 * knows it in ("Governor 0x1234…abcd"): governors and auditors are accounts, with no name on the chain. The
 * whole address is in the title either way.
 */
export function accountLabel(address, depts, role) {
  const key = String(address).toLowerCase();
  const owner = [...depts.values()].find((d) => String(d.signer).toLowerCase() === key);
  return owner ? h("span", { class: "account", "data-account": address, title: address }, owner.code)
    : h("span", { class: "account", "data-account": address }, t(`role.${role}`), " ", mono(address, 6));
}

export function shareTypeLabel(value) {
  return t(`share.${value}`);
}

// The terms' durations (ISO 8601, as api/models.py's Duration takes them) in words, the value signed beside them.
const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;
const DURATION_UNITS = ["year", "month", "week", "day", "hour", "minute", "second"];

/** An ISO 8601 duration in words with the value beside them ("4 hours (…)"); a value not of that form as it is. */
export function durationText(iso) {
  const found = DURATION.exec(iso ?? "");
  if (!found) return iso;
  const parts = DURATION_UNITS.flatMap((unit, i) => {
    if (found[i + 1] === undefined) return [];
    const n = Number(found[i + 1]);
    return [t(`duration.${unit}${n === 1 ? "" : "s"}`, { n })];
  });
  return t("duration.shown", { text: parts.join(t("app.listSeparator")), iso });
}

/** One of the ODRL actions the terms permit or prohibit (api/models.py's OdrlAction), in the user's words. */
export function actionLabel(action) {
  return t(`action.${action}`) === `action.${action}` ? action : t(`action.${action}`);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, t(`status.${String(status).toLowerCase()}`));
}

/**
 * The record number an address ends in (#/resource/12), as written (an id may pass 2^53, where a JS number
 * rounds), or the page says what it expected: the API's refusal would name its parameter, not the address.
 */
export function idArg(args) {
  const text = args[0] ?? "";
  if (!/^[1-9][0-9]{0,18}$/.test(text)) throw new PageError(t("app.badId", { id: text }));
  return text;
}

/** The catalog document's title, or a placeholder for an entry registered without one. */
export function resourceTitle(resource) {
  return (resource.metadata && resource.metadata["dct:title"]) || t("catalog.untitled", { id: resource.id });
}

/** The start of a date input's day (UTC), as the API's `from` takes it. */
export function isoDate(value) {
  return value ? `${value}T00:00:00Z` : undefined;
}

/** The end of a date input's day: the API's `to` is exclusive, a person's "to" date includes its day. */
export function isoDateEnd(value) {
  if (!value) return undefined;
  const next = new Date(`${value}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString().replace(/\.\d+Z$/, "Z");
}

/**
 * Refuses a period whose From day is after its To day (both included), in the user's words: the API would
 * answer 422 with the instants the page made of the days, not the days.
 */
export function checkPeriod(from, to) {
  if (from && to && from > to) throw new PageError(t("period.reversed"));
}

/**
 * The API's refusal `code` of request field `field`, in the user's words `message`; any other error as it is.
 * For what only the chain's clock decides (a day passed, a period over): the API reads the latest block's
 * time, which this page cannot, and the browser's clock may be hours or days off it.
 */
export function refusedField(error, code, field, message) {
  return error instanceof ApiError && error.code === code && error.field === field ? new PageError(message) : error;
}

/**
 * The scorecard API's refusal of a period with no To day that starts after now, in the user's words. Now is
 * the chain's latest block time, which the API reads and this page cannot: the browser's clock may be days
 * off it, and by it a period the API takes was refused (or one it refuses sent).
 */
export function periodError(error, from, to) {
  const future = error instanceof ApiError && error.status === 422 && error.field === "period" && from && !to;
  return future ? new PageError(t("period.future")) : error;
}
