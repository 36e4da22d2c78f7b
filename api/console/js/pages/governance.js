// Governance: proposals awaiting approvals, with every parameter they carry; governors approve with one
// click (auditors read them; the approve button exists only where the API accepts the call).
import { api, ApiError, every } from "../api.js";
import { add, errorBox, fill, h, mono, theirs, when } from "../dom.js";
import { t } from "../i18n.js";
import { accountLabel, departmentsById, statusBadge } from "./common.js";

function parameters(p) {
  const rows = Object.entries(p.parameters || {}).filter(([, v]) => v !== null && v !== undefined);
  return h("dl", { class: "facts" },
    // Full values: a governor approves exactly these, so nothing is shortened.
    rows.map(([k, v]) => [h("dt", {}, t(`param.${k}`)), h("dd", {}, h("code", {}, String(v)))]),
    // The status as it stands now, in the user's words (the API's "active" was English in the Chinese page).
    p.department ? [h("dt", {}, t("param.department")), h("dd", {}, `${p.department.code} — `, theirs(p.department.name), ` (${t(`status.${p.department.status}`)})`)] : null,
    p.agreement ? [h("dt", {}, t("param.agreement")), h("dd", {}, h("a", { href: `#/agreement/${p.agreement.id}` }, `#${p.agreement.id}`), ` (${t(`status.${p.agreement.status}`)})`)] : null,
    h("dt", {}, t("param.data")), h("dd", {}, h("code", {}, p.data)));
}

export default {
  id: "governance",
  title: "nav.governance",
  requires: ["GET /governance/proposals", "GET /governance/proposals/{proposal_id}", "GET /departments"],
  async render(view, { caps }) {
    const depts = await departmentsById();
    const canApprove = caps.can("POST /governance/proposals/{proposal_id}/approve");
    const list = h("div", { id: "proposals" });
    add(view, h("h1", {}, t("nav.governance")), h("p", { class: "muted" }, canApprove ? t("gov.introGovernor") : t("gov.introReader")), list);
    // After an approval the list is read once the audit index holds its block (min_block), so the proposal it
    // executed is no longer listed as open.
    const load = async (note, minBlock) => {
      const open = await every("/governance/proposals", { status: "open", min_block: minBlock });
      fill(list, note || null, open.length === 0 ? h("p", { class: "muted", id: "no-proposals" }, t("gov.none")) : open.map(card));
    };
    const card = (p) => {
      const out = h("div", { class: "outcome" });
      // Offered only where the API would take it: an open proposal, a governor whose key this service holds
      // (approved_by_you is null otherwise) and whose approval does not stand yet (a second is refused).
      const button = canApprove && p.status === "open" && p.approved_by_you === false
        ? h("button", { type: "button", class: "approve", "data-proposal": p.id }, t("gov.approve")) : null;
      const article = h("article", { class: "card proposal", "data-proposal": p.id, "data-status": p.status },
        h("h2", {}, t("gov.proposal", { id: p.id }), " · ", h("code", {}, t(`action.${p.action}`)),
          p.status === "open" ? null : [" · ", statusBadge(p.status)]),
        h("p", {}, t("gov.progress", { approvals: p.approvals, threshold: p.threshold, expires: when(p.expires_at) }), " · ", t("gov.proposer"), " ", h("span", { class: "proposer" }, accountLabel(p.proposer, depts, "governor"))),
        parameters(p), p.approved_by_you ? h("p", { class: "ok you-approved" }, "✓ " + t("gov.youApproved")) : null, button, out);
      button?.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const written = await api(`/governance/proposals/${p.id}/approve`, { method: "POST" });
          await load(h("p", { class: "ok", id: "approved", role: "status" },
            t("gov.approved", { id: p.id, approvals: written.record.approvals, threshold: written.record.threshold, block: written.transaction.block_number }), " ",
            mono(written.transaction.hash, 10), written.record.executed ? ` · ${t("gov.executed")}` : ""),
            written.transaction.block_number);
        } catch (error) {
          button.disabled = false;
          fill(out, errorBox(error));
          // Refused by the ledger's state (another governor's approval executed it, it expired, it was
          // cancelled since the page was read): the proposal as it stands now replaces the stale one, without
          // the button the API would refuse again.
          if (error instanceof ApiError && error.status === 409) {
            const now = card(await api(`/governance/proposals/${p.id}`));
            add(now.querySelector(".outcome"), errorBox(error), h("p", { class: "muted stale" }, t("gov.changed")));
            article.replaceWith(now);
          }
        }
      });
      return article;
    };
    await load();
  },
};
