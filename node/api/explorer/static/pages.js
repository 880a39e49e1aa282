// The explorer's pages. Each is `async (params, live) => Element`; `live.on(type, fn)` subscribes to the event
// stream for as long as the page is shown.

import { ApiError, currentSigner, get, node } from "./api.js";
import { ago, amount, date, h, integer, short } from "./format.js";
import {
  age, attrs, badge, card, copyable, decimalsOf, findAsset, href, kindLabel, knownDecimals as knownOrNull, kv, link, money, notice, num,
  outcome, privateNotice, reason, row, table,
} from "./ui.js";

const enc = encodeURIComponent;

// Load the decimals of every asset named anywhere in `values` (events, operations, balances) before rendering.
async function preload(values) {
  const ids = new Set();
  const walk = (v) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if ((k === "asset" || k === "pay_asset") && typeof x === "string") ids.add(x);
        else walk(x);
      }
    }
  };
  walk(values);
  await Promise.all([...ids].map(decimalsOf));
}

// Whether this page may read a private subject (docs/api.md 1.4), predicted from public records so that the page
// asks only for what the node will answer: open reads; else the loaded key's account is an auditor, or for an
// account its owner, custodian, or an issuer / agent (who gets its own assets' entries); for an asset's holders
// its issuer or one of its agents.
function mayRead(kind, subject) {
  if (node().open_reads) return null;
  const s = currentSigner();
  if (!s) return { needsSignature: true, status: 401 };
  const roles = s.record.roles;
  const hidden = { needsSignature: true, status: 403, codeName: "NOT_VISIBLE" };
  if (roles.includes("auditor")) return null;
  if (kind === "account") {
    const ok = s.account === subject.account_id || subject.custodian === s.account || roles.includes("issuer") || roles.includes("agent");
    return ok ? null : hidden;
  }
  return subject.issuer === s.account || subject.agents.includes(s.account) ? null : hidden;
}

function privateRead(kind, subject, request) {
  const refusal = mayRead(kind, subject);
  return refusal ? Promise.resolve({ error: refusal }) : optional(request());
}

async function optional(promise) {
  try {
    return { value: await promise };
  } catch (err) {
    if (err instanceof ApiError) return { error: err };
    throw err;
  }
}

function pageHead(title, subtitle, extra = null) {
  return h("div", { class: "page-head" }, h("div", {}, h("h1", {}, title), subtitle ? h("p", { class: "sub" }, subtitle) : null), extra);
}

function stat(label, value, { id = null, hint = null } = {}) {
  return h("div", { class: "stat" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value", id }, value),
    hint ? h("div", { class: "stat-hint" }, hint) : null);
}

// -- overview ---------------------------------------------------------------------------------------------------

function commitRate(blocks) {
  const timed = blocks.filter((b) => b.time);
  if (timed.length < 2) return "—";
  const span = Number(timed[timed.length - 1].time) - Number(timed[0].time);
  if (span <= 0) return `${timed.length - 1}+ / s`;
  return `${(((timed.length - 1) / span) * 60).toFixed(1)} / min`;
}

function signingStrip(validatorName, blocks) {
  return h("div", { class: "strip" }, blocks.map((b) => {
    const signed = b.signers.includes(validatorName);
    return h("span", { class: `tick ${signed ? "on" : "off"}`, title: `block ${b.height}: ${signed ? "signed" : "not in the certificate"}` });
  }));
}

async function txRow(txId, height, time, { compact = false } = {}) {
  const [st, body] = await Promise.all([optional(get(`/v1/tx/${txId}`)), optional(get(`/v1/tx/${txId}/body`))]);
  const ops = body.value ? body.value.body.operations : [];
  const code = st.value && st.value.receipt ? st.value.receipt.code : null;
  return row([
    link.tx(txId, compact ? 6 : 10),
    ops.length ? h("span", {}, kindLabel(ops[0].kind), ops.length > 1 ? ` +${ops.length - 1}` : "") : "—",
    body.value ? link.account(body.value.body.signers[0]) : "—",
    link.block(height),
    age(time),
    outcome(code, st.value ? st.value.status : "unknown", { compact }),
  ], { dataset: { tx: txId } });
}

function blockRow(b) {
  return row([link.block(b.height), age(b.time),
    num(String(b.tx_ids.length)), h("span", { class: "mono muted", title: b.block_hash }, short(b.block_hash, 6))],
  { dataset: { height: String(b.height) } });
}

export async function overview(_params, live) {
  const [status, blocks, signing, validators] = await Promise.all([
    get("/v1/status"), get("/v1/blocks", { limit: 100 }), optional(get("/v1/validators/signing", { limit: 30 })),
    get("/v1/validators"),
  ]);
  const n = status.node || {};
  const lookback = blocks.items.slice().reverse(); // newest first: the latest transactions come from these
  const recent = lookback.slice(0, 10);
  const heightEl = h("span", {}, integer(status.height));
  const rateEl = h("span", {}, commitRate(recent.slice().reverse()));
  const mempoolEl = h("span", {}, n.mempool ?? "—");
  const tpsEl = h("span", {}, n.committed_tps ?? "—");
  const stats = h("div", { class: "stats" },
    stat("Block height", heightEl, { id: "stat-height", hint: date(status.time) }),
    stat("Epoch", String(validators.epoch), { hint: validators.start_height !== null ? `since block ${validators.start_height}` : null }),
    stat("Validators", String(validators.validators.length), { hint: `${node().chain_id}` }),
    stat("Commit rate", rateEl, { hint: "over the last 10 blocks" }),
    stat("Mempool", mempoolEl, { hint: "transactions waiting" }),
    stat("Committed TPS", tpsEl, { hint: `node ${status.node_id}` }));

  const blockBody = h("tbody", {}, recent.map(blockRow));
  const blocksTable = h("div", { class: "table-wrap" }, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, h("th", {}, "Block"), h("th", {}, "Age"), h("th", { class: "num" }, "Txs"), h("th", {}, "Hash"))), blockBody));

  const txBody = h("tbody", { id: "latest-txs" });
  const txRows = [];
  for (const b of lookback) for (const id of b.tx_ids.slice(0, 10)) if (txRows.length < 10) txRows.push([id, b.height, b.time]);
  for (const el of await Promise.all(txRows.map(([id, height, time]) => txRow(id, height, time, { compact: true })))) txBody.appendChild(el);
  const emptyTx = h("tr", { class: "empty" }, h("td", { colspan: 6 }, "No transactions in the last 100 blocks; new ones appear here as they commit."));
  if (!txRows.length) txBody.appendChild(emptyTx);
  const txTable = h("div", { class: "table-wrap" }, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, ["Transaction", "Operation", "Signer", "Block", "Age", "Result"].map((x) => h("th", {}, x)))), txBody));

  const validatorCard = h("div", {});
  const renderValidators = (sig) => {
    const byName = new Map((sig ? sig.validators : []).map((v) => [v.name, v]));
    const stripBlocks = sig ? sig.blocks : [];
    validatorCard.replaceChildren(table(["Validator", "Member", "#Power", "Signed", "Proposed", "Last signed", "Recent certificates"],
      validators.validators.map((v) => {
        const s = byName.get(v.name);
        return row([h("span", { class: "mono" }, v.name), v.member || "—", num(String(v.power)),
          s ? `${s.signed} / ${s.eligible}` : "—", s ? String(s.proposed) : "—",
          s && s.last_signed !== null ? link.block(s.last_signed) : "—", signingStrip(v.name, stripBlocks)]);
      })));
  };
  renderValidators(signing.value);

  let pending = Promise.resolve();
  live.on("block", (msg) => {
    pending = pending.then(async () => {
      const [b, st, sig] = await Promise.all([get(`/v1/blocks/${msg.height}`), get("/v1/status"),
        optional(get("/v1/validators/signing", { limit: 30 }))]);
      heightEl.textContent = integer(b.height);
      mempoolEl.textContent = String(st.node?.mempool ?? "—");
      tpsEl.textContent = String(st.node?.committed_tps ?? "—");
      const first = blockBody.firstChild;
      const fresh = blockRow(b);
      fresh.classList.add("fresh");
      blockBody.insertBefore(fresh, first);
      while (blockBody.children.length > 10) blockBody.lastChild.remove();
      recent.unshift(b);
      recent.length = Math.min(recent.length, 10);
      rateEl.textContent = commitRate(recent.slice().reverse());
      for (const id of b.tx_ids.slice(0, 10).reverse()) {
        const tr = await txRow(id, b.height, b.time, { compact: true });
        tr.classList.add("fresh");
        emptyTx.remove();
        txBody.insertBefore(tr, txBody.firstChild);
      }
      while (txBody.children.length > 10) txBody.lastChild.remove();
      renderValidators(sig.value);
    }).catch(() => {});
  });

  return h("div", {},
    pageHead("Overview", `Chain ${node().chain_id} · served by ${node().node_id}`),
    stats,
    h("div", { class: "grid-2 wide-right" },
      card("Latest blocks", blocksTable, { extra: h("a", { href: "#/blocks", class: "more" }, "All blocks →") }),
      card("Latest transactions", txTable, { extra: h("span", { class: "muted small" }, "live") })),
    card("Validators and their recent signing", validatorCard,
      { extra: h("span", { class: "muted small" }, "each square: one block's commit certificate, filled when the validator signed it") }));
}

// -- blocks -----------------------------------------------------------------------------------------------------

export async function blocks(params, live) {
  const head = (await get("/v1/status")).height;
  const limit = 25;
  const top = params.get("to") ? Math.min(Number(params.get("to")), head) : head;
  const from = Math.max(0, top - limit + 1);
  const [page, vals] = await Promise.all([get("/v1/blocks", { from_height: from, limit }), get("/v1/validators")]);
  const items = page.items.slice().reverse();
  const names = (b) => (b.header && b.header.epoch === vals.epoch ? vals.validators[b.header.proposer]?.name : null);
  const fullBlockRow = (b) => blockListRow(b, names(b));
  const body = h("tbody", {}, items.map(fullBlockRow));
  if (!params.get("to")) {
    live.on("block", async (msg) => {
      const b = await get(`/v1/blocks/${msg.height}`);
      const tr = fullBlockRow(b);
      tr.classList.add("fresh");
      body.insertBefore(tr, body.firstChild);
      while (body.children.length > limit) body.lastChild.remove();
    });
  }
  const nav = h("div", { class: "pager" },
    top < head ? h("a", { href: `#/blocks?to=${Math.min(head, top + limit)}`, class: "button" }, "← Newer") : h("span", {}),
    h("span", { class: "muted" }, `blocks ${from} – ${top} of ${head}`),
    from > 0 ? h("a", { href: `#/blocks?to=${from - 1}`, class: "button" }, "Older →") : h("span", {}));
  return h("div", {}, pageHead("Blocks", "Every committed block, newest first."),
    card(null, [h("div", { class: "table-wrap" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ["Block", "Time", "Age", "Txs", "Epoch", "Round", "Proposer", "Hash"].map((x) => h("th", {}, x)))), body)), nav]));
}

function blockListRow(b, proposerName) {
  const hd = b.header || {};
  const proposer = proposerName ? h("span", { class: "mono" }, proposerName) : hd.proposer !== undefined ? `#${hd.proposer}` : "—";
  return row([link.block(b.height), date(b.time), age(b.time), String(b.tx_ids.length),
    hd.epoch ?? "—", hd.round ?? "—", proposer, h("span", { class: "mono muted", title: b.block_hash }, short(b.block_hash, 8))],
  { dataset: { height: String(b.height) } });
}

export async function block(params) {
  const height = Number(params.get("id"));
  const [b, cert, head] = await Promise.all([get(`/v1/blocks/${height}`), height > 0 ? optional(get(`/v1/blocks/${height}/certificate`)) : Promise.resolve({}), get("/v1/status")]);
  const c = cert.value;
  const proposer = c ? c.headers[0].proposer_name : null;
  const summary = kv([
    ["Height", h("span", {}, integer(b.height), " ",
      height > 0 ? h("a", { href: href.block(height - 1), class: "step" }, "‹ prev") : null, " ",
      height < head.height ? h("a", { href: href.block(height + 1), class: "step" }, "next ›") : null)],
    ["Time", `${date(b.time)} (${ago(b.time)})`],
    ["Block hash", copyable(b.block_hash)],
    ["Parent", b.header && b.header.parent_id ? copyable(b.header.parent_id) : "—"],
    ["State root", copyable(b.state_root)],
    ["Epoch · round", b.header ? `${b.header.epoch} · ${b.header.round}` : "—"],
    ["Proposer", proposer ? h("span", { class: "mono" }, proposer) : (b.header ? `validator #${b.header.proposer}` : "—")],
    ["Transactions", String(b.tx_ids.length)],
  ]);
  const txs = await Promise.all(b.tx_ids.slice(0, 100).map((id) => txRow(id, b.height, b.time)));
  let certBody;
  if (c) {
    certBody = [
      kv([
        ["Signers", `${c.signers.length}${c.validators ? ` of ${c.validators.length}` : ""} validators` +
          (c.signer_power !== null ? ` · power ${c.signer_power} of ${c.total_power}` : "")],
        ["Quorum certificate", `epoch ${c.qc.epoch} · round ${c.qc.round} · certifies ${short(c.qc.block_id)}`],
        ["Signer bitmap", h("span", { class: "mono" }, c.qc.signers)],
        ["Aggregate BLS signature", copyable(c.qc.signature)],
        ["Committed state root", copyable(c.state_root)],
      ]),
      h("h3", {}, "Signer set"),
      table(["#Index", "Validator", "#Power", "Signed"], (c.validators || c.signers.map((s) => ({ index: s.index, name: s.name, power: "—", signed: true })))
        .map((v) => row([num(String(v.index)), h("span", { class: "mono" }, v.name ?? "unknown"), num(String(v.power)),
          v.signed ? badge("signed", "green") : badge("absent", "grey")]))),
      h("h3", {}, "Headers that commit this block"),
      table(["Height", "Round", "Proposer", "Block id"], c.headers.map((x) =>
        row([link.block(x.height), String(x.round), x.proposer_name ?? `#${x.proposer}`, h("span", { class: "mono" }, short(x.block_id, 12))]))),
    ];
  } else {
    certBody = notice(height === 0 ? "The genesis block has no commit certificate." : "This node holds no commit certificate for this block (yet): it is stored once a later block certifies it.");
  }
  return h("div", {}, pageHead(`Block ${integer(height)}`, date(b.time)),
    card("Summary", summary),
    card(`Transactions (${b.tx_ids.length})`, table(["Transaction", "Operation", "Signer", "Block", "Age", "Result"], txs, { empty: "No transactions in this block." })),
    card("Commit certificate", certBody, { id: "certificate" }));
}

// -- transactions -----------------------------------------------------------------------------------------------

// A transaction's page. Until the transaction is in a block (pending in the mempool, or not on this node yet) the
// page says so and checks again at every committed block from the event stream, or every few seconds while the
// stream is down (bounded), and shows the committed transaction when it arrives, without a reload.
const TX_POLL_MS = 5000;
const TX_POLL_MAX = 120;

export async function tx(params, live) {
  const id = params.get("id");
  const box = h("div", { id: "tx-page" });
  const seen = [];
  let final = false;
  let busy = false;
  let lastCheck = 0;
  async function check() {
    if (final || busy) return;
    busy = true;
    try {
      lastCheck = Date.now();
      const st = await optional(get(`/v1/tx/${id}`));
      if (st.error && st.error.status !== 404) throw st.error;
      const status = st.value ? st.value.status : "notfound";
      if (status === seen[seen.length - 1]) return;
      const content = st.value && st.value.height !== null ? await txCommitted(id, st.value) : txWaiting(id, status);
      seen.push(status);
      final = st.value ? st.value.height !== null : false;
      box.dataset.status = status;
      box.dataset.seen = seen.join(" ");
      box.replaceChildren(content);
    } finally {
      busy = false;
    }
  }
  await check();
  if (!final) {
    live.on("block", check);
    let polls = 0;
    const poll = () => {
      if (final || !box.isConnected || ++polls > TX_POLL_MAX) return;
      const quiet = Date.now() - lastCheck >= TX_POLL_MS; // no block seen lately: the stream may be down
      (quiet ? check() : Promise.resolve()).catch((err) => console.warn("transaction check:", err.message))
        .finally(() => setTimeout(poll, TX_POLL_MS));
    };
    setTimeout(poll, TX_POLL_MS);
  }
  return box;
}

function txWaiting(id, status) {
  const text = status === "pending"
    ? "Pending: in this node's mempool, not yet in a block. This page shows it as soon as a block commits it."
    : "Not found on this node: not received (yet), or dropped or expired before a block took it. This page keeps "
      + "watching and shows the transaction if a block commits it.";
  return h("div", {}, pageHead("Transaction", h("span", { class: "mono" }, id)),
    card("Summary", kv([
      ["Transaction id", copyable(id)],
      ["Result", status === "pending" ? outcome(null, "pending") : badge("Not found", "grey")],
      ["Block", "not yet in a block"],
    ])),
    h("div", { id: "tx-waiting" }, notice(text)));
}

async function txCommitted(id, st) {
  const [body, blk] = await Promise.all([
    st.height !== null ? optional(get(`/v1/tx/${id}/body`)) : Promise.resolve({}),
    st.height !== null ? optional(get(`/v1/blocks/${st.height}`)) : Promise.resolve({}),
  ]);
  const r = st.receipt;
  const b = body.value ? body.value.body : null;
  await preload([b, r]);
  const code = r ? r.code : null;
  const rs = code !== null ? reason(code) : null;
  const summary = kv([
    ["Transaction id", copyable(id)],
    ["Result", outcome(code, st.status)],
    code !== null && Number(code) !== 0 ? ["Reason", h("span", {}, h("strong", {}, `${code} ${rs.name}`), ` — ${rs.message}`,
      r.detail ? h("div", { class: "detail" }, r.detail) : null,
      r.failed_op !== null && r.failed_op !== undefined ? h("div", { class: "muted" }, `failed at operation #${r.failed_op}`) : null)] : null,
    ["Block", st.height !== null ? h("span", {}, link.block(st.height), h("span", { class: "muted" }, ` · position ${st.index}`)) : "not yet in a block"],
    ["Time", blk.value ? `${date(blk.value.time)} (${ago(blk.value.time)})` : "—"],
    b ? ["Signers", h("span", { class: "list" }, b.signers.map(link.account))] : null,
    b ? ["Nonce · expiry", `${b.nonce} · valid until block ${b.expiry_height}`] : null,
    b ? ["Chain", b.chain_id] : null,
  ]);
  const ops = b ? b.operations.map((op, i) => h("div", { class: `op ${r && r.failed_op === i ? "failed" : ""}` },
    h("div", { class: "op-head" }, h("span", { class: "op-index" }, `#${i}`), kindLabel(op.kind)), h("div", { class: "attrs" }, attrs(op)))) : [];
  const events = r ? r.events : [];
  return h("div", {}, pageHead("Transaction", h("span", { class: "mono" }, id)),
    card("Summary", summary),
    b ? card(`Operations (${b.operations.length})`, ops) : null,
    card(`Events (${events.length})`, table(["#Op", "Event", "Details"], events.map((ev) =>
      row([num(String(ev.op_index)), kindLabel(ev.kind), h("div", { class: "attrs" }, attrs(ev.attrs))])),
    { empty: code !== null && Number(code) !== 0 ? "No events: a refused transaction changes nothing." : "No events." })),
    body.value ? card("Signatures", table(["Account", "Public key", "Signature"], body.value.signatures.map((s) =>
      row([link.account(s.account), h("span", { class: "mono" }, short(s.public_key, 10)), h("span", { class: "mono" }, short(s.signature, 10))])))) : null);
}

// -- accounts ---------------------------------------------------------------------------------------------------

export async function accounts(params) {
  const after = params.get("after") || null;
  const page = await get("/v1/accounts", { limit: 50, after });
  return h("div", {}, pageHead("Accounts", "Account records are public; balances and history need a signed read."),
    card(null, [table(["Account", "Member", "Roles", "Keys", "Custodian", "Status"], page.items.map((a) =>
      row([link.account(a.account_id), a.member, a.roles.length ? h("span", { class: "list" }, a.roles.map((x) => badge(x, "grey"))) : "—",
        `${a.threshold} of ${a.keys.length}`, link.account(a.custodian),
        a.closed_to ? badge("closed", "grey") : a.frozen ? badge("frozen", "red") : badge("active", "green")]))),
    h("div", { class: "pager" }, after ? h("a", { href: "#/accounts", class: "button" }, "← First") : h("span", {}), h("span", {}),
      page.next ? h("a", { href: `#/accounts?after=${enc(page.next)}`, class: "button" }, "Next →") : h("span", {}))]));
}

export async function account(params) {
  const id = params.get("id");
  const a = await get(`/v1/accounts/${enc(id)}`);
  const [bal, holds, hist] = await Promise.all([
    privateRead("account", a, () => get(`/v1/accounts/${enc(id)}/balances`, {}, { signed: true })),
    privateRead("account", a, () => get(`/v1/accounts/${enc(id)}/holds`, { limit: 50 }, { signed: true })),
    privateRead("account", a, () => get(`/v1/accounts/${enc(id)}/history`, { limit: 50 }, { signed: true })),
  ]);
  await preload([bal.value, holds.value, hist.value]);
  const status = a.closed_to ? badge(`closed → ${a.closed_to}`, "grey") : a.frozen ? badge("frozen", "red") : badge("active", "green");
  const summary = kv([
    ["Account", copyable(a.account_id)],
    ["Status", status],
    ["Member", a.member],
    ["Roles", a.roles.length ? h("span", { class: "list" }, a.roles.map((x) => badge(x, "grey"))) : "—"],
    ["Custodian", link.account(a.custodian)],
    ["Keys", h("div", {}, a.keys.map((k) => h("div", { class: "mono" }, k)), h("div", { class: "muted" }, `${a.threshold} of ${a.keys.length} signatures required`))],
  ]);
  const balances = bal.value
    ? table(["Asset", "#Available", "#Held", "#Frozen", "#Total"], bal.value.balances.map((x) =>
      row([link.asset(x.asset), num(amount(x.available, knownOrNull(x.asset))), num(amount(x.held, knownOrNull(x.asset))),
        num(amount(x.frozen, knownOrNull(x.asset))), num(h("strong", {}, amount(x.total, knownOrNull(x.asset))))], { dataset: { asset: x.asset } })),
    { empty: "No positions." })
    : privateNotice(bal.error);
  const holdTable = holds.value
    ? table(["Hold", "Status", "Asset", "#Amount", "Sender", "Recipient", "Notary", "Expires"], holds.value.items.map((x) =>
      row([h("span", { class: "mono" }, x.hold_id), badge(x.status_name, x.status_name === "ordered" ? "amber" : "grey"), link.asset(x.hold.asset),
        num(amount(x.hold.amount, knownOrNull(x.hold.asset))), link.account(x.hold.sender), link.account(x.hold.recipient), link.account(x.hold.notary),
        x.hold.expires_at ? date(x.hold.expires_at) : "—"])), { empty: "No holds." })
    : privateNotice(holds.error);
  const history = hist.value
    ? table(["Block", "Transaction", "Result", "Events"], hist.value.items.map((x) =>
      row([link.block(x.height), link.tx(x.tx_id), outcome(x.code, "committed"),
        h("div", { class: "events" }, x.events.map((ev) => h("div", { class: "attrs" }, kindLabel(ev.kind), attrs(ev.attrs))))])), { empty: "No history." })
    : privateNotice(hist.error);
  return h("div", {}, pageHead(a.account_id, `member ${a.member}`),
    card("Account", summary),
    card("Balances", balances, { id: "balances", extra: h("span", { class: "muted small" }, "available · held in holds · frozen by an agent") }),
    card("Holds", holdTable),
    card("History", history, { extra: h("span", { class: "muted small" }, "newest first") }));
}

// -- assets -----------------------------------------------------------------------------------------------------

export async function assets(params) {
  const after = params.get("after") || null;
  const page = await get("/v1/assets", { limit: 50, after });
  return h("div", {}, pageHead("Assets", "Every asset defined on the chain."),
    card(null, [table(["Asset", "Name", "Issuer", "#Decimals", "#Outstanding", "#Supply cap", "Rules", "Status"], page.items.map((a) =>
      row([link.asset(a.asset_id), a.name, link.account(a.issuer), num(String(a.decimals)), num(amount(a.outstanding, a.decimals)),
        num(amount(a.supply_cap, a.decimals)), String(a.rules), a.paused ? badge("paused", "red") : badge("active", "green")]))),
    h("div", { class: "pager" }, after ? h("a", { href: "#/assets", class: "button" }, "← First") : h("span", {}), h("span", {}),
      page.next ? h("a", { href: `#/assets?after=${enc(page.next)}`, class: "button" }, "Next →") : h("span", {}))]));
}

export async function asset(params) {
  const id = params.get("id");
  const a = await get(`/v1/assets/${enc(id)}`);
  const d = a.definition;
  const s = a.status;
  await decimalsOf(id);
  const [holders, actions] = await Promise.all([
    privateRead("asset", d, () => get(`/v1/assets/${enc(id)}/holders`, { limit: 100 }, { signed: true })),
    optional(get(`/v1/assets/${enc(id)}/actions`, { limit: 100 })),
  ]);
  await preload([actions.value]);
  const dec = d.decimals;
  const supply = h("div", { class: "stats compact" },
    stat("Outstanding", amount(a.outstanding, dec)), stat("Issued", amount(s.issued, dec)), stat("Redeemed", amount(s.redeemed, dec)),
    stat("Supply cap", amount(d.supply_cap, dec)), stat("Decimals", String(dec)));
  const summary = kv([
    ["Asset", h("span", {}, h("strong", {}, id), " ", s.paused ? badge("paused", "red") : badge("active", "green"))],
    ["Name", d.name],
    ["ISIN", d.isin || "—"],
    ["Issuer", link.account(d.issuer)],
    ["Agents", d.agents.length ? h("span", { class: "list" }, d.agents.map(link.account)) : "—"],
    ["Defined at", link.block(d.defined_height)],
    ["Documents", d.documents.length ? h("div", {}, d.documents.map((doc) => h("div", { class: "attrs" }, attrs(doc)))) : "—"],
  ]);
  const rules = d.rules.length
    ? table(["Rule", "Parameters"], d.rules.map((r) => row([h("strong", {}, r.name), h("div", { class: "attrs" }, attrs(r.params || {}))])))
    : notice("No rules: any account may hold and move this asset.");
  const holderTable = holders.value
    ? table(["Holder", "#Available", "#Held", "#Frozen", "#Total", "#Share"], holders.value.items.map((x) =>
      row([link.account(x.account), num(amount(x.available, dec)), num(amount(x.held, dec)), num(amount(x.frozen, dec)),
        num(h("strong", {}, amount(x.total, dec))), num(share(x.total, a.outstanding))])), { empty: "No holders." })
    : privateNotice(holders.error);
  const actionTable = actions.value
    ? table(["Action", "Kind", "Asset", "Pays in", "Rate per unit", "Record height", "Payer", "#Paid", "Status"], actions.value.items.map((x) =>
      row([h("span", { class: "mono" }, x.action_id), kindLabel(x.kind), link.asset(x.asset), link.asset(x.pay_asset), `${x.rate_num} / ${x.rate_den}`,
        link.block(x.record_height), link.account(x.payer), num(money(x.paid, x.pay_asset)), x.done ? badge("completed", "green") : badge("in progress", "amber")])),
    { empty: "No corporate actions." })
    : privateNotice(actions.error);
  return h("div", {}, pageHead(id, d.name),
    supply,
    card("Definition", summary),
    card(`Rules (${d.rules.length})`, rules),
    card("Holders", holderTable, { id: "holders" }),
    card("Corporate actions", actionTable));
}

function share(part, whole) {
  const p = BigInt(part);
  const w = BigInt(whole);
  if (w === 0n) return "—";
  const bp = (p * 10000n) / w; // basis points, integer
  return `${bp / 100n}.${String(bp % 100n).padStart(2, "0")} %`;
}

// -- governance -------------------------------------------------------------------------------------------------

export async function governance() {
  const [gov, proposals, epochs, vals] = await Promise.all([optional(get("/v1/governance")), optional(get("/v1/governance/proposals", { limit: 100 })),
    optional(get("/v1/epochs", { limit: 100 })), get("/v1/validators")]);
  const g = gov.value;
  const params = g ? table(["Parameter", "#Value"], Object.entries(g.params).map(([k, v]) => row([k.replace(/_/g, " "), num(String(v))]))) : privateNotice(gov.error);
  const summary = g ? kv([
    ["Epoch", `${g.epoch} (since block ${g.start_height})`],
    ["Voting members", h("span", { class: "list" }, g.voters.map((x) => badge(x, "grey")))],
    ["Approval threshold", `${g.threshold} of ${g.voters.length}`],
    ["Validators", String(g.validators)],
  ]) : privateNotice(gov.error);
  const plist = proposals.value ? table(["Proposal", "Status", "Proposer", "Approvals", "Actions", "Created", "Expires"], proposals.value.items.map((p) =>
    row([link.proposal(p.proposal_id), proposalBadge(p.status), link.account(p.proposer), `${p.approvals.length} / ${p.threshold}`,
      h("span", {}, p.actions.map((x) => kindLabel(x.kind))), link.block(p.created_height), `block ${p.expiry_height}`])), { empty: "No proposals yet." })
    : privateNotice(proposals.error);
  const elist = epochs.value ? table(["Epoch", "Ended at", "Next set"], epochs.value.epochs.slice().reverse().map((e) =>
    row([String(e.epoch), e.end_height !== null ? link.block(e.end_height) : "—", h("span", { class: "list" }, e.next_validators.map((v) => h("span", { class: "mono" }, v.name)))])),
  { empty: `Epoch ${epochs.value.current_epoch} is the first: no epoch has ended yet.` }) : privateNotice(epochs.error);
  const vtable = table(["#Index", "Validator", "Member", "Address", "#Power", "BLS key"], vals.validators.map((v) =>
    row([num(String(v.index)), h("span", { class: "mono" }, v.name), v.member || "—", v.address || "—", num(String(v.power)), h("span", { class: "mono" }, short(v.public_key, 8))])));
  return h("div", {}, pageHead("Governance", "Members vote on validator-set and parameter changes; approved changes start a new epoch."),
    h("div", { class: "grid-2" }, card("Governance", summary), card("Chain parameters", params)),
    card("Proposals", plist),
    card(`Current validator set (epoch ${vals.epoch})`, vtable),
    card("Ended epochs", elist));
}

function proposalBadge(status) {
  return badge(status, { open: "amber", executed: "green", cancelled: "grey", expired: "grey" }[status] || "grey");
}

export async function proposal(params) {
  const id = params.get("id");
  const p = await get(`/v1/governance/proposals/${enc(id)}`);
  return h("div", {}, pageHead(`Proposal ${id}`, null),
    card("Summary", kv([
      ["Status", proposalBadge(p.status)],
      ["Proposer", h("span", {}, link.account(p.proposer), h("span", { class: "muted" }, ` (member ${p.proposer_member})`))],
      ["Approvals", h("span", {}, `${p.approvals.length} of ${p.threshold} needed `, h("span", { class: "list" }, p.approvals.map((x) => badge(x, "green"))))],
      ["Created", link.block(p.created_height)],
      ["Expires", `after block ${p.expiry_height}`],
      ["Closed", p.closed_height ? link.block(p.closed_height) : "—"],
    ])),
    card(`Actions (${p.actions.length})`, p.actions.map((a, i) => h("div", { class: "op" },
      h("div", { class: "op-head" }, h("span", { class: "op-index" }, `#${i}`), kindLabel(a.kind)), h("div", { class: "attrs" }, attrs(a))))));
}

// -- search -----------------------------------------------------------------------------------------------------

// Where a search term leads: a height, a transaction id or block hash (64 hex digits: a transaction first), a
// block-hash prefix (8 or more hex digits), an account (name@member), else an asset id.
export async function resolveSearch(term) {
  const q = term.trim();
  if (!q) return null;
  if (/^\d{1,7}$/.test(q)) return href.block(Number(q));
  if (/^[0-9a-fA-F]{64}$/.test(q)) {
    const id = q.toLowerCase();
    const known = await optional(get(`/v1/tx/${id}`));
    if (known.value) return href.tx(id);
    const blocks = await optional(get(`/v1/blocks/by-hash/${id}`));
    // Neither yet: the transaction's page waits for it (it may still be on its way to this node).
    return blocks.value ? href.block(blocks.value.items[0].height) : href.tx(id);
  }
  if (/^[0-9a-fA-F]{8,63}$/.test(q)) {
    const prefix = q.toLowerCase();
    const blocks = await optional(get(`/v1/blocks/by-hash/${prefix}`));
    if (blocks.value) return blocks.value.items.length === 1 && !blocks.value.more ? href.block(blocks.value.items[0].height) : `#/blockhash/${prefix}`;
    if (/^\d{1,19}$/.test(q)) return href.block(Number(q));
    return `#/notfound/${enc(q)}`;
  }
  if (/^\d{1,19}$/.test(q)) return href.block(Number(q));
  if (q.includes("@")) return href.account(q);
  const asset = await findAsset(q);
  return asset ? href.asset(asset) : `#/notfound/${enc(q)}`;
}

// The blocks whose hash starts with a prefix (a search that matched more than one).
export async function blockHash(params) {
  const prefix = params.get("id");
  const found = await get(`/v1/blocks/by-hash/${prefix}`);
  return h("div", {}, pageHead("Blocks by hash", h("span", {}, "Hashes starting with ", h("span", { class: "mono" }, prefix))),
    card(null, [table(["Block", "Hash"], found.items.map((b) => row([link.block(b.height), h("span", { class: "mono" }, b.block_hash)]))),
      found.more ? notice("More blocks match: type more digits of the hash.") : null]));
}

export async function notFound(params) {
  const q = params.get("id") || "";
  return h("div", {}, pageHead("Nothing found", null),
    card(null, notice(`No block, transaction, account or asset matches “${q}”. Search by block height, transaction id or block hash (64 hex digits), block-hash prefix (8 or more hex digits), account id (name@member) or asset id.`)));
}
