// Verify a delivered file in the browser: the payload is read and committed to here (WebCrypto SHA-256, or
// SM3), never uploaded; only the manifest and the computed root go to POST /verify, which checks the
// manifest's signature and the ledger's receipt. MATCH / MISMATCH, with the leaves (records) that differ.
import { api } from "../api.js";
import { add, errorBox, fill, h, mono, PageError, table, when } from "../dom.js";
import { num, t } from "../i18n.js";
import { ALGORITHMS, commitBlob, fromHex, indexRanges, slicer, toHex, TooManyLeavesError } from "../merkle.js";

const MAX_SHOWN = 50;
// JSON Lines and CSV payloads are read whole (their rows need the whole file); Chromium refuses to read a
// file of 2 GiB or more into memory ("NotReadableError", as if the file had gone), and committing 1 GiB of
// records here takes many minutes: above this, the page sends the user to `dxl verify`.
const WHOLE_READ_MAX = 1 << 30;
// Leaves (records or chunks) the page commits to at most: some 110 bytes each in its memory, and two digests,
// one WebCrypto call each (2 million took 35-70 s here). A 50 MiB file of empty lines is 52 million of them
// (some 6 GB), and a manifest may cut bytes into chunks of one byte; dxl verify streams them.
const MAX_LEAVES = 1 << 22;
const HEX32 = /^0x[0-9a-fA-F]{64}$/;

/**
 * The first key an object of `text` (JSON, parsed already) names twice, or null. JSON.parse keeps the last
 * value and says nothing, and a person reading the file may see the first: a forged root put before the true
 * one was shown while the check passed on the other. `dxl verify` refuses such a file (verifier/jsontext.py).
 */
function repeatedKey(text) {
  const frames = []; // per open object the keys it named; null for an array
  let key = null; // a string just read in an object: its key if a colon follows
  for (const [token] of text.matchAll(/"(?:[^"\\]|\\.)*"|[{}[\],:]/g)) {
    const top = frames[frames.length - 1];
    if (token === ":" && key !== null) {
      if (top.has(key)) return key;
      top.add(key);
    }
    if (token === "{") frames.push(new Set());
    else if (token === "[") frames.push(null);
    else if (token === "}" || token === "]") frames.pop();
    key = token[0] === '"' && top instanceof Set ? JSON.parse(token) : null;
  }
  return null;
}

/**
 * The manifest file as the page uses it, its fields checked (verifier/MANIFEST.md): a file that is not JSON,
 * not a manifest, or lacks what the commitment needs is named as such, never left to fail as a script error.
 */
function parseManifest(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    throw new PageError(t("verify.manifestNotJson"));
  }
  const twice = repeatedKey(text);
  if (twice !== null) throw new PageError(t("verify.manifestKeyTwice", { key: twice }));
  if (!m || typeof m !== "object" || Array.isArray(m) || m.schema !== "dxl.manifest/1") throw new PageError(t("verify.notManifest"));
  const field = (name, good) => {
    if (!good) throw new PageError(t("verify.manifestField", { field: name }));
  };
  field("algorithm.name", m.algorithm && typeof m.algorithm === "object" && Object.hasOwn(ALGORITHMS, m.algorithm.name));
  field("salt", typeof m.salt === "string" && HEX32.test(m.salt));
  const c = m.chunking;
  field("chunking.format", c && typeof c === "object" && ["bytes", "jsonl", "csv"].includes(c.format));
  field("chunking.chunk_size", c.format !== "bytes" || (Number.isSafeInteger(c.chunk_size) && c.chunk_size > 0));
  field("leaf_hashes", m.leaf_hashes === undefined || (Array.isArray(m.leaf_hashes) && m.leaf_hashes.every((x) => typeof x === "string")));
  return m;
}

function readFile(file) {
  return file.arrayBuffer().then((buffer) => new Uint8Array(buffer));
}

/**
 * Which of the dropped files is the manifest: payload X pairs with X.manifest.json (dxl commit, dxl reconcile),
 * and a payload may itself end in .json, so a .manifest.json is taken first, then any .json.
 */
function pickManifest(files) {
  return files.find((f) => /\.manifest\.json$/i.test(f.name)) || files.find((f) => /\.json$/i.test(f.name)) || null;
}

/**
 * Compares the payload's leaves with the manifest's leaf hashes: indexes that differ, missing, extra. A turn of
 * the event loop now and then: a manifest may list millions.
 */
async function compareLeaves(local, manifest) {
  const listed = manifest.leaf_hashes || null;
  if (!listed) return { differing: [], missing: [], extra: [], listed: false };
  const common = Math.min(listed.length, local.leafCount);
  const differing = [];
  const pause = slicer();
  for (let i = 0; i < common; i++) {
    if (`0x${toHex(local.leafHash(i))}` !== listed[i]) differing.push(i);
    if (i % 4096 === 4095) await pause();
  }
  const missing = listed.length > common ? [[common, listed.length]] : [];
  const extra = local.leafCount > common ? [[common, local.leafCount]] : [];
  return { differing, missing, extra, listed: true };
}

/**
 * What the payload says against the manifest, found here as `dxl verify` finds it (verifier.verify.verify_payload,
 * in its words): the API is sent the root alone and compares only that, and a JSON Lines or CSV payload
 * with or without its final LF has the same leaves and root, its size alone telling them apart.
 */
/** `n` and its noun in agreement, as the verifier words a count (verifier.text.counted): "1 leaf", "2 leaves". */
function counted(n, singular, plural = `${singular}s`) {
  return `${n} ${n === 1 ? singular : plural}`;
}

function payloadFindings(local, manifest, cmp) {
  const found = [];
  const unit = manifest.chunking.format === "bytes" ? "chunks" : "records/rows";
  if (local.byteSize !== manifest.byte_size) {
    found.push({ code: "SIZE_MISMATCH", message: `payload is ${counted(local.byteSize, "byte")}, the manifest says ${manifest.byte_size}` });
  }
  if (local.leafCount !== manifest.leaf_count) {
    found.push({ code: "LEAF_COUNT_MISMATCH", message: `payload has ${counted(local.leafCount, "leaf", "leaves")} (${unit}), the manifest says ${manifest.leaf_count}` });
  }
  if (local.recordCount !== manifest.record_count) {
    found.push({ code: "RECORD_COUNT_MISMATCH", message: `payload has ${counted(local.recordCount, "record")}, the manifest says ${manifest.record_count}` });
  }
  const n = cmp.differing.length;
  if (n) found.push({ code: "LEAVES_DIFFER", message: `${n} ${n === 1 ? "leaf differs" : "leaves differ"}, at 0-based index${n === 1 ? "" : "es"} ${cmp.differing.slice(0, 10).join(", ")}${n > 10 ? " ..." : ""}` });
  for (const [code, [a, b], where] of [
    ...cmp.missing.map((r) => ["LEAVES_MISSING", r, "are missing from the payload"]),
    ...cmp.extra.map((r) => ["LEAVES_EXTRA", r, "are not in the manifest"]),
  ]) found.push({ code, message: `leaves ${a}..${b - 1} (0-based, inclusive) ${where}` });
  return found;
}

/** The text of `key` in the user's language, or "" where the strings have none (a code added to the API later). */
function known(key) {
  const text = t(key);
  return text === key ? "" : text;
}

/** The ledger's status of the delivery (RECORDED, ACKNOWLEDGED, DISPUTED) in the user's language. */
function statusText(status) {
  return known(`status.${String(status).toLowerCase()}`) || String(status);
}

function ranges(list) {
  return list.length ? list.map(([a, b]) => (b - a === 1 ? `${a}` : `${a}–${b - 1}`)).join(", ") : "—";
}

function leafText(bytes) {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(0, 400));
  return bytes.length > 400 ? `${text}…` : text;
}

const sameAddress = (a, b) => typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();

function resultView(manifest, local, cmp, verdict, elapsed) {
  // As `dxl verify` judges: a manifest not signed by the provider or altered (its leaf hashes not its root's) is
  // UNTRUSTED, and the payload is not held to it; otherwise any difference of the payload from it is a MISMATCH,
  // whatever the ledger says, and the ledger's verdict (NOT_RECORDED, ACK_DIFFERS, ...) stands for a payload
  // that matches it.
  const untrusted = verdict.status === "UNTRUSTED";
  const onPayload = untrusted ? [] : payloadFindings(local, manifest, cmp);
  const findings = [...onPayload, ...(verdict.findings || [])];
  const status = untrusted || onPayload.length === 0 ? verdict.status : "MISMATCH";
  const anchor = verdict.anchor || {};
  const details = anchor.details || {};
  const computed = `0x${toHex(local.root)}`;
  const rows = [
    [t("verify.root"), manifest.root, computed, anchor.recorded_root],
    [t("verify.byteSize"), manifest.byte_size, local.byteSize, details.byte_size],
    [t("verify.leafCount"), manifest.leaf_count, local.leafCount, null],
    [t("verify.recordCount"), manifest.record_count, local.recordCount, details.record_count],
  ];
  const differs = (a, b) => a !== null && a !== undefined && b !== null && b !== undefined && String(a) !== String(b);
  const shown = cmp.differing.slice(0, MAX_SHOWN);
  return h("div", { id: "verify-result", "data-status": status },
    h("p", { class: `verdict verdict-${status.toLowerCase()}`, id: "verdict" }, status),
    h("p", { class: "muted" }, t(`verdict.${status}`)),
    h("p", { class: "muted", id: "local-note" }, t("verify.localNote", { ms: elapsed, alg: manifest.algorithm.name })),
    h("table", { id: "verify-compare" },
      h("thead", {}, h("tr", {}, [t("verify.field"), t("verify.manifest"), t("verify.computed"), t("verify.onChain")].map((x) => h("th", {}, x)))),
      h("tbody", {}, rows.map(([name, m, c, chain]) => h("tr", { class: differs(m, c) || differs(c, chain) ? "differs" : null },
        h("td", {}, name), h("td", {}, typeof m === "string" ? mono(m, 12) : num(m)),
        h("td", {}, typeof c === "string" ? mono(c, 12) : num(c)),
        h("td", {}, typeof chain === "string" ? mono(chain, 12) : num(chain)))))),
    h("dl", { class: "facts" },
      h("dt", {}, t("verify.differing")), h("dd", { id: "differing" }, ranges(indexRanges(cmp.differing))),
      h("dt", {}, t("verify.missing")), h("dd", {}, ranges(cmp.missing)),
      h("dt", {}, t("verify.extra")), h("dd", {}, ranges(cmp.extra)),
      // Named where the ledger names it: the key the provider registered, and who delivered to whom.
      h("dt", {}, t("verify.signer")), h("dd", { id: "signer" }, verdict.signer ? [mono(verdict.signer, 12),
        sameAddress(verdict.signer, details.provider_signer) ? [t("verify.providerKey", { provider: details.provider })] : null] : "—"),
      h("dt", {}, t("verify.recorded")), h("dd", { id: "recorded" }, details.tx_hash
        ? [details.provider ? `${details.provider} → ${details.consumer} · ` : null,
          `${t("timeline.block")} ${details.block_number} · `, mono(details.tx_hash, 10), ` · ${when(details.recorded_at)}`, details.status ? ` · ${statusText(details.status)}` : null]
        : t("verify.notRecorded")),
      h("dt", {}, t("verify.settled")), h("dd", {}, details.settled
        ? [`${t("timeline.block")} ${details.settled.block_number} · `, mono(details.settled.tx_hash, 10), anchor.acknowledged_root ? [" · ", mono(anchor.acknowledged_root, 10)] : null]
        : "—")),
    findings.length
      ? h("ul", { class: "findings", id: "findings" }, findings.map((f) => h("li", {},
        h("code", {}, f.code), " ", known(`finding.${f.code}`), h("br"), h("span", { class: "muted" }, f.message))))
      : null,
    !cmp.listed ? h("p", { class: "muted" }, t("verify.noLeafHashes")) : null,
    shown.length ? [
      h("h2", {}, t("verify.differingRecords", { n: cmp.differing.length })),
      table([
        [t("verify.leaf"), (i) => i],
        [t("verify.record"), (i) => (manifest.chunking.format === "csv" ? (i === 0 ? t("verify.header") : i) : manifest.chunking.format === "jsonl" ? i + 1 : "—")],
        [t("verify.content"), (i) => (local.leaf(i)
          ? h("code", { class: "leaf" }, leafText(local.leaf(i)))
          : t("verify.chunk", { start: i * manifest.chunking.chunk_size, end: Math.min((i + 1) * manifest.chunking.chunk_size, local.byteSize) }))],
        [t("verify.computedHash"), (i) => mono(`0x${toHex(local.leafHash(i))}`, 8)],
        [t("verify.manifestHash"), (i) => mono(manifest.leaf_hashes[i], 8)],
      ], shown, { id: "differing-records" }),
    ] : null);
}

export default {
  id: "verify",
  title: "nav.verify",
  requires: ["POST /verify"],
  async render(view, { params }) {
    const payloadInput = h("input", { type: "file", id: "payload-file" });
    const manifestInput = h("input", { type: "file", id: "manifest-file", accept: ".json,application/json" });
    const deliveryInput = h("input", { type: "text", id: "delivery-id", size: 70, placeholder: "0x…", value: params.get("delivery") || "" });
    const chosen = { payload: null, manifest: null };
    const names = h("p", { class: "muted", id: "chosen" });
    const showChosen = () => fill(names, `${t("verify.payload")}: ${chosen.payload?.name ?? "—"} · ${t("verify.manifestFile")}: ${chosen.manifest?.name ?? "—"}`);
    payloadInput.addEventListener("change", () => { chosen.payload = payloadInput.files[0] || null; showChosen(); });
    manifestInput.addEventListener("change", () => { chosen.manifest = manifestInput.files[0] || null; showChosen(); });
    const drop = h("div", { class: "dropzone", id: "dropzone", tabindex: 0 }, t("verify.drop"));
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      const files = [...event.dataTransfer.files];
      const manifest = pickManifest(files);
      const payload = files.find((f) => f !== manifest);
      if (manifest) chosen.manifest = manifest;
      if (payload) chosen.payload = payload;
      showChosen();
    });
    const out = h("div", { id: "verify-out" });
    const button = h("button", { type: "submit", id: "verify-button" }, t("verify.run"));
    const form = h("form", { id: "verify-form", class: "card" },
      drop,
      h("div", { class: "filters" },
        h("label", {}, t("verify.payload"), payloadInput),
        h("label", {}, t("verify.manifestFile"), manifestInput),
        h("label", {}, t("verify.expectedDelivery"), deliveryInput)),
      names, button);
    // The page answers clicks while it commits (merkle.js gives the event loop its turns): a Verify clicked
    // again, other files chosen, supersedes the run before, whose answer would otherwise land after, as if it
    // were about the files now chosen.
    let runs = 0;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const run = ++runs;
      const show = (node) => run === runs && fill(out, node);
      show(h("p", { class: "muted", id: "verify-working" }, t("verify.working")));
      try {
        if (!chosen.payload || !chosen.manifest) throw new PageError(t("verify.needBoth"));
        if (!crypto.subtle) throw new PageError(t("verify.noWebCrypto"));
        const delivery = deliveryInput.value.trim();
        if (delivery && !HEX32.test(delivery)) throw new PageError(t("verify.badDeliveryId"));
        const manifest = parseManifest(new TextDecoder().decode(await readFile(chosen.manifest)));
        // What is read and hashed in one piece: a record payload whole, a `bytes` one chunk by chunk, and a
        // manifest may name chunks as large as the file (WebCrypto hashes a leaf in one call, with a copy).
        const { format, chunk_size: chunkSize } = manifest.chunking;
        if (format !== "bytes" && chosen.payload.size >= WHOLE_READ_MAX) {
          throw new PageError(t("verify.tooLargeHere", { mib: Math.round(chosen.payload.size / 2 ** 20), format }));
        }
        if (format === "bytes" && Math.min(chunkSize, chosen.payload.size) >= WHOLE_READ_MAX) {
          throw new PageError(t("verify.chunkTooLargeHere", { mib: Math.round(chunkSize / 2 ** 20) }));
        }
        const started = performance.now();
        const local = await commitBlob(chosen.payload, {
          alg: manifest.algorithm.name, salt: fromHex(manifest.salt),
          format: manifest.chunking.format, chunkSize: manifest.chunking.chunk_size, maxLeaves: MAX_LEAVES,
        }).catch((error) => {
          throw error instanceof TooManyLeavesError
            ? new PageError(t("verify.tooManyLeavesHere", { n: num(error.limit), format: manifest.chunking.format }))
            : error;
        });
        const elapsed = Math.round(performance.now() - started);
        const cmp = await compareLeaves(local, manifest);
        const verdict = await api("/verify", {
          method: "POST",
          body: { manifest, commitment: `0x${toHex(local.root)}`, ...(delivery ? { delivery_id: delivery } : {}) },
        });
        show(resultView(manifest, local, cmp, verdict, elapsed));
      } catch (error) {
        show(errorBox(error));
      }
    });
    add(view, h("h1", {}, t("nav.verify")), h("p", {}, t("verify.intro")), form, out);
  },
};
