// The node's HTTP API from the browser (docs/api.md): JSON read with exact integers, signed reads with an Ed25519
// key held in this tab's session (WebCrypto), and the event stream followed over fetch (so a signed stream works
// too: EventSource cannot send headers).

const READ_DOMAIN = "CONSORTIUM-LEDGER/READ/v2";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const PKCS8_ED25519_PREFIX = "302e020100300506032b657004220420";
const SESSION_KEY = "ledger-explorer-signer";

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body ? body.code : undefined;
    this.codeName = body ? body.name : undefined;
    this.details = body ? body.details : undefined;
  }

  get needsSignature() {
    return this.status === 401 || this.status === 403;
  }
}

// Integers beyond 2^53 stay exact: they become BigInt (amounts are formatted from BigInt or safe numbers only).
export function parseJson(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

export function hexToBytes(hex) {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new Error("not lowercase hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64urlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function encodeComponent(text) {
  // RFC 3986 unreserved characters stay literal; every other UTF-8 byte is %XX, upper-case.
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// docs/api.md 1.2, line 6: the canonical query string.
export function canonicalQuery(raw) {
  const enc = new TextEncoder();
  const pairs = raw.split("&").filter((p) => p !== "").map((piece) => {
    const at = piece.indexOf("=");
    const [k, v] = at < 0 ? [piece, ""] : [piece.slice(0, at), piece.slice(at + 1)];
    const dec = (s) => decodeURIComponent(s.replace(/\+/g, " "));
    return [dec(k), dec(v)];
  });
  pairs.sort((x, y) => compareBytes(enc.encode(x[0]), enc.encode(y[0])) || compareBytes(enc.encode(x[1]), enc.encode(y[1])));
  return pairs.map(([k, v]) => `${encodeComponent(k)}=${encodeComponent(v)}`).join("&");
}

export function rawQuery(params) {
  return Object.entries(params || {})
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${encodeComponent(k)}=${encodeComponent(String(v))}`)
    .join("&");
}

// -- the node and the signing key ------------------------------------------------------------------------------

let nodeStatus = null;
let signer = null; // {account, publicKeyHex, key}

export function node() {
  return nodeStatus;
}

export function currentSigner() {
  return signer;
}

export function signingAvailable() {
  return Boolean(globalThis.crypto && crypto.subtle && globalThis.isSecureContext);
}

export async function importSeed(account, seedHex) {
  const seed = seedHex.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(seed)) throw new Error("the seed must be 64 hex digits (32 bytes)");
  if (!/^[a-z0-9][a-z0-9._-]*@[a-z0-9][a-z0-9._-]*$/i.test(account.trim())) throw new Error("the account id must look like name@member");
  const key = await crypto.subtle.importKey("pkcs8", hexToBytes(PKCS8_ED25519_PREFIX + seed), { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  return { account: account.trim(), publicKeyHex: bytesToHex(base64urlToBytes(jwk.x)), key, seed };
}

// Load a key for signed reads: the account must exist and hold this key (its record is public).
export async function setSigner(account, seedHex) {
  const s = await importSeed(account, seedHex);
  let record;
  try {
    record = await get(`/v1/accounts/${encodeURIComponent(s.account)}`);
  } catch (err) {
    throw new Error(err.status === 404 ? `no account ${s.account} on this chain` : err.message);
  }
  if (!record.keys.includes(s.publicKeyHex)) throw new Error(`this seed's public key (${s.publicKeyHex.slice(0, 16)}…) is not a key of ${s.account}`);
  signer = { account: s.account, publicKeyHex: s.publicKeyHex, key: s.key, record };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ account: s.account, seed: s.seed }));
  return signer;
}

export function clearSigner() {
  signer = null;
  sessionStorage.removeItem(SESSION_KEY);
}

export async function restoreSigner() {
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (!saved || !signingAvailable()) return null;
  try {
    const { account, seed } = JSON.parse(saved);
    return await setSigner(account, seed);
  } catch (err) {
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }
}

async function signedHeaders(method, path, query) {
  const nonce = bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
  const timestamp = String(Math.floor(Date.now() / 1000));
  const lines = [READ_DOMAIN, nodeStatus.chain_id, nodeStatus.node_id, method, decodeURIComponent(path),
    canonicalQuery(query), EMPTY_SHA256, timestamp, nonce, signer.account, signer.publicKeyHex];
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, signer.key, new TextEncoder().encode(lines.join("\n")));
  return {
    "X-Ledger-Node": nodeStatus.node_id,
    "X-Ledger-Account": signer.account,
    "X-Ledger-Key": signer.publicKeyHex,
    "X-Ledger-Timestamp": timestamp,
    "X-Ledger-Nonce": nonce,
    "X-Ledger-Signature": bytesToHex(signature),
  };
}

// GET a path of the API. `signed`: a private read, signed when a key is loaded.
export async function get(path, params = {}, { signed = false } = {}) {
  const query = rawQuery(params);
  const headers = { Accept: "application/json" };
  if (signed && signer && nodeStatus) Object.assign(headers, await signedHeaders("GET", path, query));
  const resp = await fetch(path + (query ? "?" + query : ""), { headers });
  const text = await resp.text();
  let body = null;
  try {
    body = text ? parseJson(text) : null;
  } catch (err) {
    body = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

export async function loadStatus() {
  nodeStatus = await get("/v1/status");
  return nodeStatus;
}

// -- the event stream ------------------------------------------------------------------------------------------

// Follow /v1/events/sse from `fromHeight` (null: live), resuming after the last checkpoint on any break.
export function follow({ fromHeight = null, onMessage, onState }) {
  let stopped = false;
  let next = fromHeight;
  let controller = null;
  let immediate = false; // restart(): reconnect at once (new headers), not after the back-off

  function handle(frame) {
    const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
    if (!data) return;
    const msg = parseJson(data);
    if (msg.type === "block") next = Number(msg.height) + 1;
    if (msg.type === "error" && msg.resume_from !== undefined) next = Number(msg.resume_from);
    onMessage(msg);
  }

  async function run() {
    while (!stopped) {
      try {
        controller = new AbortController();
        const query = rawQuery(next === null ? {} : { from_height: next });
        const headers = { Accept: "text/event-stream" };
        if (signer && nodeStatus) Object.assign(headers, await signedHeaders("GET", "/v1/events/sse", query));
        const resp = await fetch("/v1/events/sse" + (query ? "?" + query : ""), { headers, signal: controller.signal });
        if (!resp.ok) throw new ApiError(resp.status, null);
        onState("live");
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            handle(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (err) {
        if (stopped) return;
      }
      if (stopped) return;
      if (immediate) {
        immediate = false;
        continue;
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  run();
  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
    restart() {
      immediate = true;
      if (controller) controller.abort();
    },
  };
}
