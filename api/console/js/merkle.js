// The delivery commitment of verifier/MANIFEST.md, computed in the browser: the payload is cut into leaves
// (bytes / jsonl / csv exactly as the Python verifier cuts them), each leaf is H(0x00 || salt || leaf), inner
// nodes H(0x01 || left || right) in the RFC 6962 shape, and a payload with no leaves has the root
// H(0x02 || salt). SHA-256 is WebCrypto's; SM3 is ./sm3.js. The payload never leaves the page.
import { sm3 } from "./sm3.js";

export const CSV_MAX_LINE = 64 * 1024 * 1024;

export class PayloadFormatError extends Error {
  constructor(message) {
    super(message);
    this.name = "PayloadFormatError";
  }
}

export const ALGORITHMS = {
  sha256: { id: 1, digest: async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data)) },
  sm3: { id: 2, digest: async (data) => sm3(data) },
};

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  const clean = text.startsWith("0x") ? text.slice(2) : text;
  if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`not hex: ${text}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function algorithm(name) {
  const alg = ALGORITHMS[name];
  if (!alg) throw new Error(`unknown hash algorithm ${name}`);
  return alg;
}

// --- cutting a payload into leaves ---------------------------------------------------------------------

function byteLeaves(bytes, chunkSize) {
  const out = [];
  for (let i = 0; i < bytes.length; i += chunkSize) out.push(bytes.subarray(i, Math.min(i + chunkSize, bytes.length)));
  return out;
}

function jsonlLeaves(bytes) {
  const out = [];
  let start = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(10, start);
    if (nl < 0) {
      out.push(bytes.subarray(start));
      break;
    }
    out.push(bytes.subarray(start, nl));
    start = nl + 1;
  }
  return out;
}

// Python's csv reader (excel dialect, strict=True) as a state machine over bytes, fed one physical line
// (up to and including its LF) at a time and then an end-of-line mark, as the verifier feeds it.
const LF = 10, CR = 13, QUOTE = 34, COMMA = 44, EOL = -1;
const START_RECORD = 0, START_FIELD = 1, IN_FIELD = 2, IN_QUOTED = 3, QUOTE_IN_QUOTED = 4, EAT_CRNL = 5;

function csvStep(state, c) {
  const lineEnd = c === LF || c === CR;
  switch (state) {
    case START_RECORD:
      if (c === EOL) return START_RECORD;
      if (lineEnd) return EAT_CRNL;
    // a normal character starts a field
    // falls through
    case START_FIELD:
      if (lineEnd || c === EOL) return c === EOL ? START_RECORD : EAT_CRNL;
      if (c === QUOTE) return IN_QUOTED;
      if (c === COMMA) return START_FIELD;
      return IN_FIELD;
    case IN_FIELD:
      if (lineEnd || c === EOL) return c === EOL ? START_RECORD : EAT_CRNL;
      if (c === COMMA) return START_FIELD;
      return IN_FIELD;
    case IN_QUOTED:
      return c === QUOTE ? QUOTE_IN_QUOTED : IN_QUOTED;
    case QUOTE_IN_QUOTED:
      if (c === QUOTE) return IN_QUOTED;
      if (c === COMMA) return START_FIELD;
      if (lineEnd || c === EOL) return c === EOL ? START_RECORD : EAT_CRNL;
      throw new Error("a closing quote is followed by something other than a delimiter or a line end");
    case EAT_CRNL:
      if (lineEnd) return EAT_CRNL;
      if (c === EOL) return START_RECORD;
      throw new Error(
        "a CR outside quotes is followed by something other than a line end (bare-CR line ends are refused: " +
          "end lines with LF)",
      );
    default:
      throw new Error(`bad state ${state}`);
  }
}

function csvLeaves(bytes) {
  const out = [];
  let state = START_RECORD;
  let rowStart = 0;
  let line = 0;
  for (let start = 0; start < bytes.length; ) {
    const nl = bytes.indexOf(LF, start);
    const end = nl < 0 ? bytes.length : nl + 1;
    if (end - start > CSV_MAX_LINE) throw new PayloadFormatError(`a CSV line is longer than ${CSV_MAX_LINE} bytes`);
    line += 1;
    try {
      for (let i = start; i < end; i++) state = csvStep(state, bytes[i]);
      state = csvStep(state, EOL);
    } catch (error) {
      throw new PayloadFormatError(`CSV row ${line}: ${error.message}`);
    }
    if (state === START_RECORD) {
      out.push(bytes.subarray(rowStart, bytes[end - 1] === LF ? end - 1 : end));
      rowStart = end;
    }
    start = end;
  }
  if (state !== START_RECORD) {
    throw new PayloadFormatError(`CSV row ${line}: a quote is not closed before the end of the file`);
  }
  return out;
}

/** The leaves of `bytes` (Uint8Array views) for a manifest's `chunking`. */
export function cutLeaves(bytes, format, chunkSize = 1 << 20) {
  if (format === "bytes") return byteLeaves(bytes, chunkSize);
  if (format === "jsonl") return jsonlLeaves(bytes);
  if (format === "csv") return csvLeaves(bytes);
  throw new Error(`unknown payload format ${format}`);
}

export function recordCount(format, leafCount) {
  if (format === "bytes") return 0;
  if (format === "csv") return Math.max(leafCount - 1, 0);
  return leafCount;
}

// --- the tree ------------------------------------------------------------------------------------------

export async function leafHash(alg, salt, leaf) {
  return algorithm(alg).digest(concat(Uint8Array.of(0), salt, leaf));
}

/**
 * The root over `leafHashes` (Uint8Arrays). Pairing neighbours level by level and carrying an odd last node
 * up unchanged builds the same tree as RFC 6962's split at the largest power of two below n.
 */
export async function treeRoot(alg, salt, leafHashes) {
  const { digest } = algorithm(alg);
  if (leafHashes.length === 0) return digest(concat(Uint8Array.of(2), salt));
  let level = leafHashes;
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? digest(concat(Uint8Array.of(1), level[i], level[i + 1])) : level[i]);
    }
    level = await Promise.all(next);
  }
  return level[0];
}

/** Everything a manifest states about `bytes`: leaves, their hashes, root, counts. */
export async function commit(bytes, { alg, salt, format, chunkSize }) {
  const leaves = cutLeaves(bytes, format, chunkSize);
  const leafHashes = await Promise.all(leaves.map((leaf) => leafHash(alg, salt, leaf)));
  const root = await treeRoot(alg, salt, leafHashes);
  return { leaves, leafHashes, root, leafCount: leaves.length, byteSize: bytes.length, recordCount: recordCount(format, leaves.length) };
}

/**
 * The commitment of a File or Blob. Fixed-size chunks are read one batch at a time, so a large `bytes` payload
 * is never held whole (its `leaves` are then null); record formats need the whole file to find their rows.
 */
export async function commitBlob(blob, { alg, salt, format, chunkSize, batchBytes = 16 << 20 }) {
  if (format !== "bytes") return commit(new Uint8Array(await blob.arrayBuffer()), { alg, salt, format, chunkSize });
  const leafHashes = [];
  // Whole chunks per read, so no chunk straddles two reads.
  const batch = Math.max(chunkSize, Math.floor(batchBytes / chunkSize) * chunkSize);
  for (let offset = 0; offset < blob.size; offset += batch) {
    const bytes = new Uint8Array(await blob.slice(offset, Math.min(offset + batch, blob.size)).arrayBuffer());
    leafHashes.push(...(await Promise.all(byteLeaves(bytes, chunkSize).map((leaf) => leafHash(alg, salt, leaf)))));
  }
  const root = await treeRoot(alg, salt, leafHashes);
  return { leaves: null, leafHashes, root, leafCount: leafHashes.length, byteSize: blob.size, recordCount: 0 };
}

/** Ascending indexes as half-open [start, end] ranges, the verifier's form: [1,2,3,7] -> [[1,4],[7,8]]. */
export function indexRanges(indexes) {
  const out = [];
  for (const i of indexes) {
    if (out.length && out[out.length - 1][1] === i) out[out.length - 1][1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}
