// Shared pieces of the pages: caches of asset decimals and reason codes, links, cards, tables, badges.

import { get } from "./api.js";
import { ago, amount, date, h, short } from "./format.js";

// -- caches -----------------------------------------------------------------------------------------------------

const assetInfo = new Map(); // asset id -> {decimals, name} | null (unknown)
const reasonCodes = new Map(); // code -> {name, message}

export async function loadAssets() {
  let after = null;
  for (let page = 0; page < 10; page++) {
    const res = await get("/v1/assets", { limit: 1000, after });
    for (const a of res.items) assetInfo.set(a.asset_id, { decimals: a.decimals, name: a.name });
    if (!res.next) break;
    after = res.next;
  }
}

export async function decimalsOf(assetId) {
  if (!assetInfo.has(assetId)) {
    try {
      const a = await get(`/v1/assets/${encodeURIComponent(assetId)}`);
      assetInfo.set(assetId, { decimals: a.definition.decimals, name: a.definition.name });
    } catch (err) {
      assetInfo.set(assetId, null);
    }
  }
  const info = assetInfo.get(assetId);
  return info ? info.decimals : null;
}

// An asset id matching the search term (as typed or upper-cased), from the catalogue: no request that can fail.
export async function findAsset(term) {
  for (let attempt = 0; attempt < 2; attempt++) {
    for (const candidate of [term, term.toUpperCase()]) if (assetInfo.get(candidate)) return candidate;
    if (attempt === 0) await loadAssets();
  }
  return null;
}

export function knownDecimals(assetId) {
  const info = assetInfo.get(assetId);
  return info ? info.decimals : null;
}

export async function loadCodes() {
  const res = await get("/v1/codes");
  for (const c of res.codes) reasonCodes.set(c.code, c);
}

export function reason(code) {
  return reasonCodes.get(Number(code)) || { name: `CODE_${code}`, message: "" };
}

// -- links ------------------------------------------------------------------------------------------------------

export const href = {
  block: (height) => `#/block/${height}`,
  tx: (id) => `#/tx/${id}`,
  account: (id) => `#/account/${encodeURIComponent(id)}`,
  asset: (id) => `#/asset/${encodeURIComponent(id)}`,
  proposal: (id) => `#/proposal/${encodeURIComponent(id)}`,
};

export const link = {
  block: (height) => h("a", { href: href.block(height), class: "mono" }, String(height)),
  tx: (id, keep = 10) => h("a", { href: href.tx(id), class: "mono", title: id }, short(id, keep)),
  account: (id) => (id ? h("a", { href: href.account(id), class: "mono" }, id) : "—"),
  asset: (id) => (id ? h("a", { href: href.asset(id), class: "asset-tag" }, id) : "—"),
  proposal: (id) => h("a", { href: href.proposal(id), class: "mono" }, id),
};

export function money(value, assetId) {
  const d = knownDecimals(assetId);
  return h("span", { class: "amount", title: `${value} base units` }, amount(value, d), " ", link.asset(assetId));
}

// -- building blocks --------------------------------------------------------------------------------------------

export function card(title, body, { extra = null, id = null, cls = "" } = {}) {
  return h("section", { class: `card ${cls}`.trim(), id },
    title ? h("header", { class: "card-head" }, h("h2", {}, title), extra) : null,
    h("div", { class: "card-body" }, body));
}

export function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function table(headers, rows, { empty = "Nothing yet.", cls = "" } = {}) {
  return h("div", { class: "table-wrap" },
    h("table", { class: `data ${cls}`.trim() },
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { class: x.startsWith("#") ? "num" : "" }, x.replace(/^#/, ""))))),
      h("tbody", {}, rows.length ? rows : h("tr", { class: "empty" }, h("td", { colspan: headers.length }, empty)))));
}

export function row(cells, attrs = {}) {
  return h("tr", attrs, cells.map((c) => (c instanceof Element && c.tagName === "TD" ? c : h("td", {}, c))));
}

export function num(content) {
  return h("td", { class: "num" }, content);
}

export function badge(text, tone) {
  return h("span", { class: `badge ${tone}` }, text);
}

// A receipt code as a badge: 0 success; 200+ refused by the rules (nothing changed); 1-199 rejected.
export function outcome(code, status, { compact = false } = {}) {
  if (status === "pending") return badge("Pending", "amber");
  if (code === null || code === undefined) return badge(status || "Unknown", "grey");
  if (Number(code) === 0) return badge("Success", "green");
  const r = reason(code);
  const word = Number(code) < 200 ? "Rejected" : "Refused";
  const el = badge(compact ? `${word} · ${code}` : `${word} · ${r.name}`, "red");
  el.title = `${code} ${r.name}: ${r.message}`;
  return el;
}

// A relative time that stays current (the page's ticker refreshes every [data-time] element).
export function age(seconds) {
  return h("span", { class: "muted age", title: date(seconds), dataset: { time: String(seconds) } }, ago(seconds));
}

export function refreshAges(root = document) {
  for (const el of root.querySelectorAll(".age[data-time]")) el.textContent = ago(Number(el.dataset.time));
}

export function notice(text, tone = "info") {
  return h("div", { class: `notice ${tone}` }, text);
}

// What to show in place of a private section the page may not read.
export function privateNotice(err) {
  if (err && err.needsSignature) {
    return notice(err.status === 403
      ? `Not visible to the loaded key (${err.codeName}). Balances, holds and history are visible to the account itself, its custodian, the asset's issuer and agents, and auditors.`
      : "Private: this node serves it only to a signed read. Load an account key (top right) to see what that account may see.", "lock");
  }
  return notice(err ? `Could not load: ${err.message}` : "Could not load.", "error");
}

export function copyable(text) {
  return h("span", { class: "mono break" }, text);
}

export function kindLabel(kind) {
  return h("span", { class: "kind" }, String(kind).replace(/_/g, " "));
}

// An event's or operation's attributes as "key value" chips; amounts in the asset's decimals, ids as links.
const ACCOUNT_KEYS = new Set(["actor", "account", "sender", "recipient", "custodian", "payer", "remainder_account",
  "entitled", "notary", "issuer", "proposer", "closed_to", "new_account", "to", "from"]);

export function attrs(obj, inheritedAsset = null) {
  const asset = typeof obj.asset === "string" ? obj.asset : inheritedAsset;
  const out = [];
  for (const [key, raw] of Object.entries(obj)) {
    if (key === "kind") continue;
    let value;
    if (raw && typeof raw === "object" && !Array.isArray(raw) && "bin" in raw) value = h("span", { class: "mono" }, short(raw.bin));
    else if (key === "amount" && asset && (typeof raw === "number" || typeof raw === "bigint")) value = money(raw, asset);
    else if (ACCOUNT_KEYS.has(key) && typeof raw === "string") value = link.account(raw);
    else if ((key === "asset" || key === "pay_asset") && typeof raw === "string") value = link.asset(raw);
    else if (key === "proposal" && typeof raw === "string") value = link.proposal(raw);
    else if (Array.isArray(raw)) {
      value = h("span", { class: "list" }, raw.map((item) =>
        item && typeof item === "object" ? h("span", { class: "nested" }, attrs(item, asset)) : h("span", { class: "chip-v" }, String(item))));
    } else if (raw && typeof raw === "object") value = h("span", { class: "nested" }, attrs(raw, asset));
    else if (typeof raw === "string" && /^[0-9a-f]{40,}$/.test(raw)) value = h("span", { class: "mono", title: raw }, short(raw));
    else value = String(raw);
    out.push(h("span", { class: "attr" }, h("span", { class: "attr-k" }, key.replace(/_/g, " ")), h("span", { class: "attr-v" }, value)));
  }
  return out;
}
