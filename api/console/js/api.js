// The API client: the token lives in sessionStorage (gone when the tab closes), every call sends it, and
// errors come back as ApiError with the API's stable code.

import { sm3 } from "./sm3.js";

const TOKEN = "dxl.token";
// The Idempotency-Key of each write whose answer never came or left its outcome open, by the write's digest.
const WRITES = "dxl.writes";
/** The window event sent when the API refuses the token (401). */
export const UNAUTHORIZED = "dxl:unauthorized";
/** The window event sent on every write answered 2xx; `detail.replayed` is true when the API answered it from
 * an earlier attempt with its key (Idempotent-Replayed), having written nothing this time. */
export const WRITTEN = "dxl:written";

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    // The request field the API named as wrong (null when it named none).
    this.field = field;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN, value);
  else {
    sessionStorage.removeItem(TOKEN);
    // Signed out: the next principal's writes are its own, whatever this one left unanswered.
    sessionStorage.removeItem(WRITES);
  }
}

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether the write may have been done, or may still be, after this answer: none at all (the network, a tab
 * reloaded), a 5xx (the service's or a proxy's), or the API's own "still running" and "sent, not yet mined".
 * The same write sent again must then carry the same key, so that the API replays or finishes the first
 * attempt instead of writing twice; any other answer is final, and a later identical write is a new one.
 */
function uncertain(error) {
  return !(error instanceof ApiError) || error.status === 0 || error.status >= 500 || (error.status === 409 && (error.code === "TRANSACTION_PENDING" || error.code === "IDEMPOTENCY_IN_FLIGHT"));
}

function pending() {
  try {
    return JSON.parse(sessionStorage.getItem(WRITES)) || {};
  } catch {
    return {};
  }
}

function remember(intent, key) {
  const keys = pending();
  if (key === null) delete keys[intent];
  else keys[intent] = key;
  sessionStorage.setItem(WRITES, JSON.stringify(keys));
}

// A write is its method, path, query and body: a digest of them, so that sessionStorage holds no document text
// (SM3, in the page: WebCrypto is missing from a console served over plain HTTP to another host).
function intentOf(method, url, text) {
  const digest = sm3(new TextEncoder().encode(`${method} ${url.pathname}${url.search}\n${text ?? ""}`));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Call the API; `body` is sent as JSON. A write carries an Idempotency-Key: the one of the same write left
 * without a final answer in this tab (kept across a reload, dropped at sign-out), else a fresh one.
 */
export async function api(path, options) {
  return (await call(path, options)).data;
}

/**
 * Every page of a list (GET /resources, /governance/proposals, /demands, /inspections, ...), in its order:
 * follows the `Link: <…>; rel="next"` header until there is none.
 */
export async function every(path, query) {
  const items = [];
  let next = path;
  let params = { ...query, limit: 500 };
  while (next) {
    const { data, response } = await call(next, { query: params });
    items.push(...data);
    const link = /<([^>]*)>;\s*rel="next"/.exec(response.headers.get("Link") || "");
    // Its path and query only, asked of this origin: the token goes to this server's API whatever a link
    // names (an absolute one a proxy passed on could name an address only the proxy reaches).
    const following = link ? new URL(link[1], location.origin) : null;
    next = following ? following.pathname + following.search : null;
    params = undefined; // the next link carries the query, cursor included
  }
  return items;
}

function urlOf(path, query) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, item);
  }
  return url;
}

function authorized(headers) {
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  return headers;
}

/**
 * A file the API makes (GET /audit/scorecard?format=pdf): its bytes as a Blob and the name its
 * Content-Disposition gives. Fetched with the token, as every call is: a plain link would carry none.
 */
export async function file(path, { query, accept } = {}) {
  const url = urlOf(path, query);
  let response;
  try {
    response = await fetch(url, { headers: authorized({ Accept: `${accept}, application/json` }) });
  } catch (error) {
    throw new ApiError(0, "UNREACHABLE", String(error && error.message));
  }
  if (!response.ok) {
    // A refusal is the API's JSON error, read as every other call reads it.
    if (response.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED));
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      error = {};
    }
    throw new ApiError(response.status, error.code || `HTTP_${response.status}`, error.message || response.statusText, error.field ?? null);
  }
  const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return { blob: await response.blob(), name: named ? named[1] : null };
}

async function call(path, { method = "GET", body, query } = {}) {
  const url = urlOf(path, query);
  const headers = authorized({ Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const text = body === undefined ? undefined : JSON.stringify(body);
  const write = method !== "GET";
  const intent = write ? intentOf(method, url, text) : null;
  if (write) {
    headers["Idempotency-Key"] = pending()[intent] ?? newKey();
    // Kept before it is sent: a reload while the request is on its way leaves its outcome unknown too.
    remember(intent, headers["Idempotency-Key"]);
  }
  try {
    const answer = await send(url, method, headers, text);
    if (write) {
      remember(intent, null);
      window.dispatchEvent(new CustomEvent(WRITTEN, { detail: { replayed: answer.response.headers.get("Idempotent-Replayed") === "true" } }));
    }
    return answer;
  } catch (error) {
    if (write && !uncertain(error)) remember(intent, null);
    throw error;
  }
}

async function send(url, method, headers, body) {
  let response;
  try {
    response = await fetch(url, { method, headers, body });
  } catch (error) {
    // No answer at all (the service is down, the network is gone): fetch says only "Failed to fetch".
    throw new ApiError(0, "UNREACHABLE", String(error && error.message));
  }
  const answered = await response.text();
  let data = null;
  try {
    data = answered ? JSON.parse(answered) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    // A token revoked (or an API database replaced) since sign-in: main.js returns to the sign-in form,
    // whichever page or button made the call.
    if (response.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED));
    const error = (data && data.error) || {};
    // Not the body of an answer that is not the API's own (a proxy's HTML page): only its status.
    throw new ApiError(response.status, error.code || `HTTP_${response.status}`, error.message || response.statusText, error.field ?? null);
  }
  return { data, response };
}

/** Every page of /audit/history for `query`, oldest first. */
export async function history(query) {
  const items = [];
  let cursor;
  do {
    const page = await api("/audit/history", { query: { ...query, limit: 500, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/**
 * The writes the ledger takes from an active department only (SharingPractice refuses them from a suspended
 * one, DEPARTMENT_NOT_ACTIVE): of those the console offers. A suspended department still reads, verifies,
 * and draws a sample, which anyone may.
 */
const ACTIVE_ONLY = new Set(["POST /demands", "POST /demands/{demand_id}/answer", "POST /agreements/{agreement_id}/evaluations"]);

/**
 * What the signed-in principal may call, read from the API's own OpenAPI document (x-dxl-roles on every
 * operation) and, for a department, its status on the ledger: the console offers a page or a button only when
 * the API would accept the call.
 */
export class Capabilities {
  constructor(me, openapi, suspended = false) {
    this.me = me;
    this.suspended = suspended;
    this.ops = new Map();
    for (const [path, item] of Object.entries(openapi.paths || {})) {
      for (const [method, op] of Object.entries(item)) {
        if (op && typeof op === "object" && "x-dxl-roles" in op) this.ops.set(`${method.toUpperCase()} ${path}`, op["x-dxl-roles"]);
      }
    }
  }

  get role() {
    return this.me.role;
  }

  /** Whether the principal's role may call `operation` ("GET /audit/history"). Unknown operations: no. */
  can(operation) {
    if (this.suspended && ACTIVE_ONLY.has(operation)) return false;
    const roles = this.ops.get(operation);
    return Array.isArray(roles) && (roles.length === 0 || roles.includes(this.me.role));
  }

  canAll(operations) {
    return operations.every((op) => this.can(op));
  }
}

export async function signIn() {
  const me = await api("/me");
  const openapi = await api("/openapi.json");
  // Read at sign-in (and on a reload): a department suspended or reinstated meanwhile is seen on the next.
  const department = me.role === "department" ? await api(`/departments/${me.department_id}`) : null;
  return new Capabilities(me, openapi, department !== null && department.status !== "active");
}
