// The console's shell: sign-in, the navigation the principal's role allows, and a hash router
// (#/page/arg?key=value) so every view has an address that survives a reload.
import { ApiError, setToken, signIn, token, UNAUTHORIZED, WRITTEN } from "./api.js";
import { errorBox, fill, h } from "./dom.js";
import { lang, setLang, t, translate } from "./i18n.js";
import catalog from "./pages/catalog.js";
import demands from "./pages/demands.js";
import governance from "./pages/governance.js";
import { inspection, inspections } from "./pages/inspections.js";
import map from "./pages/map.js";
import resource from "./pages/resource.js";
import scorecards from "./pages/scorecards.js";
import timeline from "./pages/timeline.js";
import verify from "./pages/verify.js";

// In navigation order; `nav: false` pages are reached by links only.
const PAGES = [map, catalog, resource, timeline, verify, scorecards, demands, inspections, inspection, governance];
const main = document.getElementById("main");
let caps = null;
// Why the sign-in form is shown (a refused or revoked token), kept until the next sign-in: a hash change
// (a link, the back button, a page load still in flight) re-renders the form and must not drop it.
let signInMessage = null;

function allowed(page) {
  return caps !== null && caps.canAll(page.requires);
}

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [id = "", ...args] = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { id, args, params: new URLSearchParams(query) };
}

function renderNav() {
  const nav = document.getElementById("nav");
  const { id } = parseHash();
  fill(nav, caps === null ? [] : PAGES.filter((p) => p.nav !== false && allowed(p)).map((p) =>
    h("a", { href: `#/${p.id}`, class: p.id === id ? "active" : null, "data-page": p.id }, t(p.title))));
  const who = document.getElementById("who");
  // Who beside the role: the department's code, the governor's number, or the auditor's token's name (the
  // principal's key, "department:HRSS", was an English word in the Chinese header and said the role twice).
  const me = caps?.me;
  const name = me ? me.department ?? (me.governor !== null && me.governor !== undefined ? `#${me.governor}` : me.token_name) : null;
  fill(who, caps === null ? [] : [h("span", { class: `role role-${caps.role}` }, t(`role.${caps.role}`)), " ",
    h("span", { id: "who-name", title: me.token_name }, name),
    caps.suspended ? [" ", h("span", { class: "badge status-suspended", id: "suspended", title: t("app.suspendedNote") }, t("status.suspended"))] : null]);
  document.getElementById("signout").hidden = caps === null;
}

function renderSignIn(message) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, placeholder: "dxl_…", size: 52 });
  const form = h("form", { id: "signin", class: "card narrow" },
    h("h1", {}, t("signin.title")),
    h("p", {}, t("signin.help")),
    h("label", { for: "token" }, t("signin.token")),
    input,
    h("button", { type: "submit" }, t("signin.submit")),
    message instanceof Node ? message : message ? h("p", { class: "error", role: "alert" }, message) : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    // A header carries printable ASCII only: fetch would throw on anything else before asking the API.
    if (!/^[\x21-\x7e]+$/.test(value)) return renderSignIn(t("signin.malformed"));
    setToken(value);
    await start();
  });
  fill(main, form);
  input.focus();
}

async function route() {
  renderNav();
  if (caps === null) return renderSignIn(signInMessage);
  const { id, args, params } = parseHash();
  if (id && !PAGES.some((p) => p.id === id)) {
    // A mistyped or outdated address: said so, rather than another page shown as if it were the one asked for.
    fill(main, h("section", { class: "card", "data-page": "unknown", "data-ready": "true" },
      h("h1", {}, t("app.unknownTitle")), h("p", { id: "unknown-page" }, t("app.unknown", { page: id }))));
    return;
  }
  const page = PAGES.find((p) => p.id === id) || PAGES.find((p) => p.nav !== false && allowed(p));
  if (!allowed(page)) {
    fill(main, h("section", { class: "card", "data-page": "forbidden", "data-ready": "true" },
      h("h1", {}, t("app.forbiddenTitle")), h("p", { id: "forbidden" }, t("app.forbidden", { role: t(`role.${caps.role}`) }))));
    return;
  }
  const view = h("section", { class: `page page-${page.id}`, "data-page": page.id });
  fill(main, view);
  try {
    await page.render(view, { caps, args, params, go: (hash) => (location.hash = hash) });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signedOut();
    view.append(errorBox(error));
  }
  view.dataset.ready = "true";
}

/** The token was revoked (or the API database replaced) since sign-in: back to the sign-in form. */
function signedOut() {
  setToken(null);
  document.getElementById("replayed").hidden = true;
  caps = null;
  signInMessage = t("signin.rejected");
  renderNav();
  renderSignIn(signInMessage);
}

async function start() {
  caps = null;
  if (token()) {
    try {
      caps = await signIn();
    } catch (error) {
      setToken(null);
      renderNav();
      signInMessage = error instanceof ApiError && error.status === 401 ? t("signin.rejected") : errorBox(error);
      return renderSignIn(signInMessage);
    }
    signInMessage = null;
  }
  await route();
}

document.getElementById("lang").value = lang();
document.getElementById("lang").addEventListener("change", async (event) => {
  setLang(event.target.value);
  await route();
});
document.getElementById("signout").addEventListener("click", async () => {
  setToken(null);
  document.getElementById("replayed").hidden = true;
  location.hash = "";
  await start();
});
window.addEventListener("hashchange", route);
// Said until the next write: a write sent again after its answer was lost, which the API answered from the first
// attempt (the page then shows the first attempt's record, written once).
window.addEventListener(WRITTEN, (event) => (document.getElementById("replayed").hidden = !event.detail.replayed));
// A 401 to any call, a button's as well as a page's, while signed in.
window.addEventListener(UNAUTHORIZED, () => caps !== null && signedOut());
setLang(lang());
translate(document);
start();
