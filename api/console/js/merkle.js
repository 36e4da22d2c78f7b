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

/** The payload cuts into more than `limit` leaves under its manifest's chunking (counted up to limit + 1). */
export class TooManyLeavesError extends Error {
  constructor(limit) {
    super(`the payload cuts into more than ${limit} leaves`);
    this.name = "TooManyLeavesError";
    this.limit = limit;
  }
}

export const ALGORITHMS = {
  sha256: { id: 1, digest: async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data)) },
  sm3: { id: 2, digest: async (data) => sm3(data) },
};

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

export function toHex(bytes) {
  let out = "";
  for (const b of bytes) out += HEX[b];
  return out;
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

// --- the page stays responsive ------------------------------------------------------------------------

const DIGEST = 32; // SHA-256 and SM3 alike
// Digests asked at once, and the page's own work between two turns of its event loop (a click, a timer, a
// repaint): one WebCrypto call per leaf, all asked together, held some 1 KiB each until the last answered, and
// no other task of the page ran meanwhile (a 50 MiB JSON Lines file of 100-byte lines: 20 s without a turn,
// 450 MiB; 256 MiB did not finish in 12 minutes).
const IN_FLIGHT = 1024;
const SLICE_MS = 40;

/** A turn of the event loop (a message to itself: a timer nested this deep waits 4 ms at least). */
function yieldToPage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

/** A clock that says when the page has worked SLICE_MS since it last gave the event loop a turn. */
export function slicer() {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await yieldToPage();
    since = performance.now();
  };
}

// --- cutting a payload into leaves ---------------------------------------------------------------------

// A leaf is a [start, end) pair of offsets into the payload, two numbers in one flat array: a record payload of
// millions of lines held a Uint8Array view per line (some 100 bytes each) before a leaf was hashed.

function byteBounds(size, chunkSize) {
  const out = [];
  for (let i = 0; i < size; i += chunkSize) out.push(i, Math.min(i + chunkSize, size));
  return out;
}

async function jsonlBounds(bytes, maxLeaves) {
  const out = [];
  const pause = slicer();
  let start = 0;
  while (start < bytes.length) {
    if (out.length % 8192 === 0) await pause();
    if (out.length >= 2 * maxLeaves) throw new TooManyLeavesError(maxLeaves);
    const nl = bytes.indexOf(10, start);
    if (nl < 0) {
      out.push(start, bytes.length);
      break;
    }
    out.push(start, nl);
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

async function csvBounds(bytes, maxLeaves) {
  const out = [];
  const pause = slicer();
  let state = START_RECORD;
  let rowStart = 0;
  let line = 0;
  for (let start = 0; start < bytes.length; ) {
    if (line % 1024 === 0) await pause();
    if (out.length > 2 * maxLeaves) throw new TooManyLeavesError(maxLeaves);
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
      out.push(rowStart, bytes[end - 1] === LF ? end - 1 : end);
      rowStart = end;
    }
    start = end;
  }
  if (state !== START_RECORD) {
    throw new PayloadFormatError(`CSV row ${line}: a quote is not closed before the end of the file`);
  }
  return out;
}

/** The leaves of `bytes` for a manifest's `chunking`, as [start, end) offsets: [s0, e0, s1, e1, ...]. */
export async function leafBounds(bytes, format, chunkSize = 1 << 20, maxLeaves = Infinity) {
  if (format === "bytes") checkLeaves(Math.ceil(bytes.length / chunkSize), maxLeaves);
  const bounds = format === "bytes" ? byteBounds(bytes.length, chunkSize)
    : format === "jsonl" ? await jsonlBounds(bytes, maxLeaves)
      : format === "csv" ? await csvBounds(bytes, maxLeaves) : null;
  if (bounds === null) throw new Error(`unknown payload format ${format}`);
  checkLeaves(bounds.length / 2, maxLeaves);
  return bounds;
}

function checkLeaves(count, maxLeaves) {
  if (count > maxLeaves) throw new TooManyLeavesError(maxLeaves);
}

export function recordCount(format, leafCount) {
  if (format === "bytes") return 0;
  if (format === "csv") return Math.max(leafCount - 1, 0);
  return leafCount;
}

// --- the tree ------------------------------------------------------------------------------------------

/** digest(input(i)) for i < count, into one flat array of 32-byte hashes, IN_FLIGHT at a time. */
async function digestAll(alg, count, input) {
  const { digest } = algorithm(alg);
  const out = new Uint8Array(count * DIGEST);
  const pause = slicer();
  for (let first = 0; first < count; first += IN_FLIGHT) {
    const last = Math.min(count, first + IN_FLIGHT);
    const asked = [];
    for (let i = first; i < last; i++) asked.push(digest(input(i)));
    (await Promise.all(asked)).forEach((hash, k) => out.set(hash, (first + k) * DIGEST));
    await pause();
  }
  return out;
}

export async function leafHash(alg, salt, leaf) {
  return algorithm(alg).digest(concat(Uint8Array.of(0), salt, leaf));
}

/** The hashes of the leaves `bounds` names in `bytes`, one flat array of 32-byte hashes. */
async function leafHashes(alg, salt, bytes, bounds) {
  const zero = Uint8Array.of(0);
  return digestAll(alg, bounds.length / 2, (i) => concat(zero, salt, bytes.subarray(bounds[2 * i], bounds[2 * i + 1])));
}

/**
 * The root over `hashes`: Uint8Arrays, or one flat array of 32-byte hashes. Pairing neighbours level by level
 * and carrying an odd last node up unchanged builds the same tree as RFC 6962's split at the largest power of
 * two below n.
 */
export async function treeRoot(alg, salt, hashes) {
  let level = hashes;
  if (Array.isArray(hashes)) {
    level = new Uint8Array(hashes.length * DIGEST);
    hashes.forEach((hash, i) => level.set(hash, i * DIGEST));
  }
  let n = level.length / DIGEST;
  if (n === 0) return algorithm(alg).digest(concat(Uint8Array.of(2), salt));
  const one = Uint8Array.of(1);
  while (n > 1) {
    const below = level;
    const pairs = Math.floor(n / 2);
    const hashed = await digestAll(alg, pairs, (i) => concat(one, below.subarray(2 * i * DIGEST, (2 * i + 2) * DIGEST)));
    level = new Uint8Array(Math.ceil(n / 2) * DIGEST);
    level.set(hashed);
    if (n % 2) level.set(below.subarray((n - 1) * DIGEST), pairs * DIGEST);
    n = Math.ceil(n / 2);
  }
  return level.slice(0, DIGEST);
}

/**
 * What a manifest states about a payload: `root`, `leafCount`, `byteSize`, `recordCount`, the leaf hashes (one flat
 * array; `leafHash(i)` the i-th) and `leaf(i)`, the i-th leaf's bytes (null where the payload is not held whole).
 */
function commitment({ bytes, bounds, hashes, root, byteSize, format }) {
  const leafCount = hashes.length / DIGEST;
  return {
    root, leafCount, byteSize, recordCount: recordCount(format, leafCount), leafHashes: hashes,
    leafHash: (i) => hashes.subarray(i * DIGEST, (i + 1) * DIGEST),
    leaf: (i) => (bytes ? bytes.subarray(bounds[2 * i], bounds[2 * i + 1]) : null),
  };
}

/** The commitment of `bytes` (a Uint8Array held whole). */
export async function commit(bytes, { alg, salt, format, chunkSize, maxLeaves = Infinity }) {
  const bounds = await leafBounds(bytes, format, chunkSize, maxLeaves);
  const hashes = await leafHashes(alg, salt, bytes, bounds);
  const root = await treeRoot(alg, salt, hashes);
  return commitment({ bytes, bounds, hashes, root, byteSize: bytes.length, format });
}

/**
 * The commitment of a File or Blob. Fixed-size chunks are read one batch at a time, so a large `bytes` payload
 * is never held whole (its `leaf(i)` is then null); record formats need the whole file to find their rows.
 * More than `maxLeaves` leaves is a TooManyLeavesError, found before a leaf is hashed.
 */
export async function commitBlob(blob, { alg, salt, format, chunkSize, maxLeaves = Infinity, batchBytes = 16 << 20 }) {
  if (format !== "bytes") {
    return commit(new Uint8Array(await blob.arrayBuffer()), { alg, salt, format, chunkSize, maxLeaves });
  }
  checkLeaves(Math.ceil(blob.size / chunkSize), maxLeaves);
  const parts = [];
  // Whole chunks per read, so no chunk straddles two reads.
  const batch = Math.max(chunkSize, Math.floor(batchBytes / chunkSize) * chunkSize);
  for (let offset = 0; offset < blob.size; offset += batch) {
    const bytes = new Uint8Array(await blob.slice(offset, Math.min(offset + batch, blob.size)).arrayBuffer());
    parts.push(await leafHashes(alg, salt, bytes, byteBounds(bytes.length, chunkSize)));
  }
  const hashes = concat(...parts);
  const root = await treeRoot(alg, salt, hashes);
  return commitment({ bytes: null, bounds: null, hashes, root, byteSize: blob.size, format });
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
