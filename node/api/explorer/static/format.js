// Formatting: amounts in their asset's decimals with integer arithmetic only (BigInt), times as UTC dates,
// hashes shortened, and a tiny DOM builder that only ever sets text (never HTML).

// Exact integers only: JSON integers beyond 2^53 arrive as BigInt (api.js parseJson). A browser without JSON.parse
// source access (Chromium < 114, Firefox < 135, Safari < 18.4) hands them over rounded: `exact` says so.
export function exact(value) {
  return typeof value !== "number" || Number.isSafeInteger(value);
}

export function toBigInt(value) {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error(`not an integer amount: ${value}`);
    return BigInt(value);
  }
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  throw new Error(`not an integer amount: ${value}`);
}

export function groupDigits(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

// 1234567 base units with 2 decimals -> "12,345.67". Unknown decimals: the base units as they are.
export function amount(value, decimals) {
  if (!exact(value)) return "≈ " + amount(BigInt(value), decimals);
  let v = toBigInt(value);
  const negative = v < 0n;
  if (negative) v = -v;
  if (decimals === null || decimals === undefined) return (negative ? "-" : "") + groupDigits(v.toString());
  const d = Number(decimals);
  const base = 10n ** BigInt(d);
  let text = groupDigits((v / base).toString());
  if (d > 0) text += "." + (v % base).toString().padStart(d, "0");
  return (negative ? "-" : "") + text;
}

export function integer(value) {
  return groupDigits(toBigInt(value).toString());
}

const pad = (n) => String(n).padStart(2, "0");

export function date(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(Number(seconds) * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(Date.now() / 1000 - Number(seconds)));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function short(hex, keep = 8) {
  if (!hex) return "—";
  return hex.length <= 2 * keep + 1 ? hex : `${hex.slice(0, keep)}…${hex.slice(-keep)}`;
}

// h("a", {href: "#/x", class: "y"}, "text", child, [more, children]) -> Element. Strings become text nodes.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}
