// What several pages share: the department directory and labels for ledger values.
import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

let departments = null;

/** id -> department record (GET /departments), loaded once per page load. */
export async function departmentsById() {
  if (departments === null) {
    const list = await api("/departments");
    departments = new Map(list.map((d) => [d.id, d]));
  }
  return departments;
}

export function deptLabel(map, id) {
  const d = map.get(Number(id));
  return d ? d.code : `#${id}`;
}

export function shareTypeLabel(value) {
  return t(`share.${value}`);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, t(`status.${String(status).toLowerCase()}`));
}

/** The catalog document's title, or a placeholder for an entry registered without one. */
export function resourceTitle(resource) {
  return (resource.metadata && resource.metadata["dct:title"]) || t("catalog.untitled", { id: resource.id });
}

export function isoDate(value) {
  return value ? `${value}T00:00:00Z` : undefined;
}
