// Catalog: every principal browses and searches the catalog (owner, share type, text).
import { every } from "../api.js";
import { add, fill, h, pagedTable } from "../dom.js";
import { num, t } from "../i18n.js";
import { departmentsById, resourceTitle, shareTypeLabel } from "./common.js";

const SHARE_TYPES = ["unconditional", "conditional", "not_shared"];

export default {
  id: "catalog",
  title: "nav.catalog",
  requires: ["GET /resources", "GET /departments"],
  async render(view, { params, go }) {
    const depts = await departmentsById();
    const owner = h("select", { name: "owner", id: "filter-owner" },
      h("option", { value: "" }, t("catalog.anyOwner")),
      [...depts.values()].map((d) => h("option", { value: d.id }, `${d.code} — ${d.name}`)));
    const share = h("select", { name: "share_type", id: "filter-share" },
      h("option", { value: "" }, t("catalog.anyShareType")),
      SHARE_TYPES.map((v) => h("option", { value: v }, shareTypeLabel(v))));
    const text = h("input", { name: "q", id: "filter-text", type: "search", placeholder: t("catalog.searchPlaceholder") });
    owner.value = params.get("owner") || "";
    share.value = params.get("share_type") || "";
    text.value = params.get("q") || "";
    const form = h("form", { class: "filters", id: "catalog-filters" },
      h("label", {}, t("catalog.owner"), owner),
      h("label", {}, t("catalog.shareType"), share),
      h("label", {}, t("catalog.text"), text),
      h("button", { type: "submit" }, t("catalog.search")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) query.set(k, v);
      go(`#/catalog?${query}`);
    });
    const results = h("div", { id: "catalog-results" });
    add(view, h("h1", {}, t("nav.catalog")), form, results);
    const found = await every("/resources", {
      owner: params.get("owner"), share_type: params.get("share_type"), q: params.get("q"),
    });
    if (found.length === 0) {
      fill(results, h("p", { class: "muted", id: "catalog-empty" }, t("catalog.none")));
      return;
    }
    fill(results,
      h("p", { class: "muted" }, t("catalog.count", { n: num(found.length) })),
      pagedTable([
        [t("catalog.id"), (r) => r.id],
        [t("catalog.title"), (r) => h("a", { href: `#/resource/${r.id}`, class: "resource-link" }, resourceTitle(r))],
        [t("catalog.owner"), (r) => r.owner_code],
        [t("catalog.shareType"), (r) => h("span", { class: `badge share-${r.share_type}` }, shareTypeLabel(r.share_type))],
        [t("catalog.sensitivity"), (r) => r.sensitivity],
        [t("catalog.verified"), (r) => (r.verified ? h("span", { class: "ok" }, "✓ " + t("catalog.documentMatches")) : h("span", { class: "muted" }, t("catalog.noDocument")))],
      ], found, { id: "catalog-table" }));
  },
};
