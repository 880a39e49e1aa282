// The explorer's shell: hash routes, the search box, the signed-read key, and one event stream shared by the pages.

import {
  clearSigner, currentSigner, follow, loadStatus, node, restoreSigner, setSigner, signingAvailable,
} from "./api.js";
import { h, integer } from "./format.js";
import * as pages from "./pages.js";
import { loadAssets, loadCodes, notice, refreshAges } from "./ui.js";

const ROUTES = [
  [/^\/?$/, pages.overview, "overview"],
  [/^\/blocks$/, pages.blocks, "blocks"],
  [/^\/block\/(\d+)$/, pages.block, "blocks"],
  [/^\/blockhash\/([0-9a-f]{8,64})$/, pages.blockHash, "blocks"],
  [/^\/tx\/([0-9a-f]{64})$/, pages.tx, "blocks"],
  [/^\/accounts$/, pages.accounts, "accounts"],
  [/^\/account\/([^/]+)$/, pages.account, "accounts"],
  [/^\/assets$/, pages.assets, "assets"],
  [/^\/asset\/([^/]+)$/, pages.asset, "assets"],
  [/^\/governance$/, pages.governance, "governance"],
  [/^\/proposal\/([^/]+)$/, pages.proposal, "governance"],
  [/^\/notfound\/(.*)$/, pages.notFound, ""],
];

const view = document.getElementById("view");
const listeners = new Set(); // {type, fn} of the page on screen
let renderSeq = 0;

const live = {
  on(type, fn) {
    listeners.add({ type, fn });
  },
};

function dispatch(msg) {
  if (msg.type === "block") {
    const el = document.getElementById("head-height");
    if (el) el.textContent = integer(msg.height);
  }
  for (const l of [...listeners]) {
    if (l.type === msg.type) {
      try {
        const out = l.fn(msg);
        if (out && typeof out.catch === "function") out.catch((err) => console.warn("live update:", err.message));
      } catch (err) {
        console.warn("live update:", err.message);
      }
    }
  }
}

function setLiveState(state) {
  const dot = document.getElementById("live-state");
  dot.className = `live ${state}`;
  dot.title = state === "live" ? "following the node's event stream" : "reconnecting to the event stream";
  dot.lastChild.textContent = state === "live" ? "Live" : "Reconnecting";
}

async function render() {
  const seq = ++renderSeq;
  listeners.clear();
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  let page = null;
  let section = "";
  for (const [re, fn, nav] of ROUTES) {
    const m = path.match(re);
    if (m) {
      page = fn;
      section = nav;
      if (m[1] !== undefined) params.set("id", decodeURIComponent(m[1]));
      break;
    }
  }
  for (const a of document.querySelectorAll("nav.main a")) a.classList.toggle("active", a.dataset.section === section);
  view.setAttribute("aria-busy", "true");
  let content;
  try {
    content = page ? await page(params, live) : await pages.notFound(new URLSearchParams({ id: path }));
  } catch (err) {
    content = h("div", { class: "page-head" }, h("h1", {}, err.status === 404 ? "Not found" : "Could not load this page"),
      notice(err.status === 404 ? `${err.message}.` : `${err.message}${err.codeName ? ` (${err.codeName})` : ""}`, err.status === 404 ? "info" : "error"));
  }
  if (seq !== renderSeq) return; // a newer navigation won
  view.replaceChildren(content);
  view.setAttribute("aria-busy", "false");
  view.dataset.page = section || "none";
  view.dataset.route = location.hash || "#/";
  window.scrollTo(0, 0);
}

function renderSigner() {
  const box = document.getElementById("signer");
  const s = currentSigner();
  if (s) {
    box.replaceChildren(h("span", { class: "signer-on", title: `signing reads as ${s.account} (key ${s.publicKeyHex})` }, "Signed as ",
      h("a", { href: `#/account/${encodeURIComponent(s.account)}` }, s.account)),
    h("button", { type: "button", class: "link", id: "signer-clear", onclick: () => { clearSigner(); renderSigner(); restream(); render(); } }, "forget key"));
  } else {
    box.replaceChildren(h("button", { type: "button", class: "ghost", id: "signer-open", onclick: openSignerDialog },
      node() && node().open_reads ? "Open reads · load key" : "Load read key"));
  }
}

function openSignerDialog() {
  const dialog = document.getElementById("signer-dialog");
  const error = dialog.querySelector(".error-text");
  error.textContent = signingAvailable() ? "" : "This browser offers no WebCrypto here (it needs a secure context: https or localhost), so only open reads are shown.";
  dialog.showModal();
}

let stream = null;

function restream() {
  if (stream) stream.restart();
}

async function main() {
  const status = await loadStatus();
  document.getElementById("chain-id").textContent = status.chain_id;
  document.getElementById("head-height").textContent = integer(status.height);
  document.getElementById("node-id").textContent = status.node_id;
  document.getElementById("reads-mode").textContent = status.open_reads ? "open reads" : "signed reads";
  await Promise.all([loadCodes(), loadAssets()]);
  await restoreSigner();
  renderSigner();

  const dialog = document.getElementById("signer-dialog");
  dialog.querySelector("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    if (ev.submitter && ev.submitter.value === "cancel") {
      dialog.close();
      return;
    }
    try {
      await setSigner(form.account.value, form.seed.value);
      form.seed.value = "";
      dialog.close();
      renderSigner();
      restream();
      render();
    } catch (err) {
      dialog.querySelector(".error-text").textContent = err.message;
    }
  });

  document.getElementById("search").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = ev.target.q;
    const target = await pages.resolveSearch(input.value);
    if (target) {
      input.value = "";
      if (location.hash === target) render();
      else location.hash = target;
    }
  });

  window.addEventListener("hashchange", render);
  setInterval(() => refreshAges(view), 1000);
  stream = follow({ onMessage: dispatch, onState: setLiveState });
  await render();
}

main().catch((err) => {
  view.replaceChildren(notice(`The explorer could not reach this node's API: ${err.message}`, "error"));
});
