"""The block explorer in a real browser (headless Chromium driven by Selenium) against a live one-validator testnet
whose API serves signed reads only (open_reads=False), as a consortium node does.

The test seeds an asset with rules, a frozen amount, a corporate action and a refused transfer; opens the overview;
submits a transfer and waits for it to appear in the overview's live list (from the event stream, no reload); finds
it with the search box; opens its block (commit certificate and signer set), an asset found by a lower-case search,
and, after loading an account key into the page (Ed25519 signing in the browser, WebCrypto), that account's balances
in the asset's decimals. Every page must load without a SEVERE browser log entry (console errors, failed requests).

Screenshots of the overview, a transaction, a block, an asset, an account and governance are written to test-artifacts/explorer/
(or $LEDGER_EXPLORER_ARTIFACTS); CI keeps them as artefacts. Chromium and chromedriver come from Debian's `chromium`
and `chromium-driver` packages (.ci/run installs them); set LEDGER_CHROMEDRIVER to use another driver binary."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from contracts.operations import AnnounceAction
from ledger import operations as o
from node.client import AccountKey, LedgerClient, proposals, sign
from node.tools.testnet import Testnet
from tests.node.api.live_node import one_node_testnet

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("LEDGER_EXPLORER_ARTIFACTS", ROOT / "test-artifacts" / "explorer"))
ADMIN = "admin@m0"
WAIT_S = 20
POLL_S = 0.05  # how often a wait looks again (selenium's default, 0.5 s, mostly sleeps past the moment)


def _chromedriver() -> str:
    path = os.environ.get("LEDGER_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    assert os.path.exists(path), (
        "chromedriver not found: install Debian's chromium and chromium-driver packages "
        "(.ci/run does) or set LEDGER_CHROMEDRIVER"
    )
    return path


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    with one_node_testnet(
        tmp_path_factory.mktemp("explorer"), "explorer", open_reads=False, empty_block_interval_ms=500, users=3
    ) as testnet:
        yield testnet


@pytest.fixture(scope="module")
def keys(net: Testnet) -> dict[str, str]:
    return json.loads(Path(net.accounts_path).read_text())


def _client(net: Testnet, keys: dict[str, str], account: str) -> LedgerClient:
    return LedgerClient(net.api_url(0), AccountKey(account, SigningKey(bytes.fromhex(keys[account]))))


@pytest.fixture(scope="module")
def seeded(net: Testnet, keys: dict[str, str]) -> dict[str, Any]:
    """A bond with rules, issued to two users, a frozen part, a coupon announced, and a refused transfer."""
    with _client(net, keys, ADMIN) as admin:
        rules = (o.RuleSpec("max_holders", (("total", 1000),)),)
        admin.execute(
            o.DefineAsset(ADMIN, "BOND-A", 2, 100_000_000, "Bond A 2029 4.25%", "XS0000000001", (), (), rules)
        )
        admin.execute(
            o.Issue(ADMIN, "BOND-A", "user-0@m0", 25_000_000), o.Issue(ADMIN, "BOND-A", "user-1@m0", 10_000_000)
        )
        admin.execute(o.FreezeAmount(ADMIN, "BOND-A", "user-1@m0", 500_000, "court order 2026-118"))
        admin.execute(
            AnnounceAction(
                ADMIN, "cpn-2026-1", 1, "BOND-A", "CASH-T", ADMIN, ADMIN, admin.head_height() + 50, 425, 10_000
            )
        )
    with _client(net, keys, "gov@m0") as governor:  # one voting member: the proposer's approval executes it
        governor.execute(
            proposals.propose(
                "gov@m0",
                "admit-m9",
                [proposals.action("add_member", member="m9", name="Bank Nine", voter=False)],
                governor.head_height() + 100,
            )
        )
    with _client(net, keys, "user-2@m0") as user2:
        refused = user2.execute(o.Transfer("user-2@m0", "BOND-A", (o.TransferLeg("user-0@m0", 100),)), check=False)
    assert refused.receipt is not None and refused.receipt["code"] == 305, refused
    return {"refused": refused.tx_id}


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    opts = Options()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--disable-extensions",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(_chromedriver()), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _severe(driver: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _wait_route(driver: WebDriver, route: str) -> None:
    """Until the page of `route` (a location hash) is rendered."""
    WebDriverWait(driver, WAIT_S, poll_frequency=POLL_S).until(
        lambda d: (
            d.find_element(By.ID, "view").get_attribute("aria-busy") == "false"
            and d.find_element(By.ID, "view").get_attribute("data-route") == route
        )
    )


def _screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, not only the viewport."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = int(driver.execute_script("return Math.min(6000, document.documentElement.scrollHeight)"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1400, "height": max(height, 800), "deviceScaleFactor": 1, "mobile": False},
    )
    path = ARTIFACTS / f"{name}.png"
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert path.stat().st_size > 10_000, path
    return path


def _search(driver: WebDriver, term: str, route: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, "#search input[name=q]")
    box.clear()
    box.send_keys(term)
    driver.find_element(By.CSS_SELECTOR, "#search button").click()
    _wait_route(driver, route)


def test_explorer_in_a_browser(net: Testnet, keys: dict[str, str], seeded: dict[str, Any], browser: WebDriver) -> None:
    url = net.api_url(0)
    browser.get(url + "/")
    _wait_route(browser, "#/")
    wait = WebDriverWait(browser, WAIT_S, poll_frequency=POLL_S)
    wait.until(lambda d: "live" in d.find_element(By.ID, "live-state").get_attribute("class").split())
    assert browser.find_element(By.ID, "chain-id").text == net.chain_id
    # The refused transfer is among the latest transactions, with its reason.
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f'#latest-txs tr[data-tx="{seeded["refused"]}"]')))
    refused = browser.find_element(By.CSS_SELECTOR, f'#latest-txs tr[data-tx="{seeded["refused"]}"] .badge')
    assert refused.text == "Refused · 305", refused.text
    assert "INSUFFICIENT_ACTIVE_BALANCE" in refused.get_attribute("title")

    # A transfer submitted now appears on the open page, from the event stream.
    result: dict[str, Any] = {}

    def send() -> None:
        with _client(net, keys, "user-0@m0") as user0:
            result["tx"] = user0.execute(o.Transfer("user-0@m0", "CASH-T", (o.TransferLeg("user-1@m0", 1250),)))

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(WAIT_S + 10)
    assert "tx" in result, "the transfer did not commit"
    tx_id = result["tx"].tx_id
    row_css = f'#latest-txs tr[data-tx="{tx_id}"]'
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row_css)))
    wait.until(lambda d: "Success" in d.find_element(By.CSS_SELECTOR, row_css).text)
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1  # no reload
    _screenshot(browser, "overview")

    # The search box finds the transaction by its id.
    _search(browser, tx_id, f"#/tx/{tx_id}")
    view = browser.find_element(By.ID, "view").text
    assert tx_id in view and "Success" in view and "12.50" in view, view[:600]
    height = result["tx"].receipt["height"]
    _screenshot(browser, "transaction")

    # Its block, with the commit certificate and the signer set; and the same block found by a prefix of its hash.
    _search(browser, str(height), f"#/block/{height}")
    wait.until(lambda d: "signed" in d.find_element(By.ID, "certificate").text)
    assert tx_id[:10] in browser.find_element(By.ID, "view").text
    assert "node-0" in browser.find_element(By.ID, "certificate").text
    _screenshot(browser, "block")
    with _client(net, keys, ADMIN) as admin:
        block_hash = admin.block(height)["block_hash"]
    browser.execute_script("location.hash = '#/blocks'")  # away, so that the search below must navigate
    _wait_route(browser, "#/blocks")
    _search(browser, block_hash[:12].upper(), f"#/block/{height}")
    assert block_hash in browser.find_element(By.ID, "view").text

    # A transaction's page opened before the node has it: "not found" while it waits, then the committed
    # transaction, from the event stream (no reload), once it is submitted and a block takes it.
    with _client(net, keys, "user-0@m0") as user0:
        later = sign(user0.body([o.Transfer("user-0@m0", "CASH-T", (o.TransferLeg("user-2@m0", 75),))]), [user0.key])
        later_id = later.tx_id.hex()
        browser.execute_script("location.hash = arguments[0]", f"#/tx/{later_id}")
        _wait_route(browser, f"#/tx/{later_id}")
        page = browser.find_element(By.ID, "tx-page")
        assert page.get_attribute("data-status") == "notfound"
        assert "Not found on this node" in page.text and "keeps watching" in page.text, page.text
        user0.submit(later, wait="none")
    WebDriverWait(browser, WAIT_S, poll_frequency=POLL_S).until(
        lambda d: d.find_element(By.ID, "tx-page").get_attribute("data-status") == "committed"
    )
    page = browser.find_element(By.ID, "tx-page")
    states = page.get_attribute("data-seen").split()
    assert states[0] == "notfound" and states[-1] == "committed" and set(states) <= {"notfound", "pending", "committed"}
    assert "Success" in page.text and "0.75" in page.text and "user-2@m0" in page.text, page.text[:600]
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1  # no reload

    # An asset by a lower-case search: supply in its decimals, holders private to an unsigned reader.
    _search(browser, "bond-a", "#/asset/BOND-A")
    view = browser.find_element(By.ID, "view").text
    assert "350,000.00" in view and "1,000,000.00" in view and "cpn-2026-1" in view, view[:800]
    assert "signed read" in browser.find_element(By.ID, "holders").text
    _screenshot(browser, "asset")

    # Load user-1's key: the page signs its reads in the browser and shows the account's balances.
    browser.find_element(By.ID, "signer-open").click()
    dialog = browser.find_element(By.ID, "signer-dialog")
    dialog.find_element(By.NAME, "account").send_keys("user-1@m0")
    dialog.find_element(By.NAME, "seed").send_keys(keys["user-1@m0"])
    browser.find_element(By.ID, "signer-load").click()
    wait.until(lambda d: "user-1@m0" in d.find_element(By.ID, "signer").text)
    _search(browser, "user-1@m0", "#/account/user-1%40m0")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '#balances tr[data-asset="BOND-A"]')))
    bond = browser.find_element(By.CSS_SELECTOR, '#balances tr[data-asset="BOND-A"]').text
    cash = browser.find_element(By.CSS_SELECTOR, '#balances tr[data-asset="CASH-T"]').text
    assert "95,000.00" in bond and "5,000.00" in bond and "100,000.00" in bond, bond  # available, frozen, total
    assert cash.split()[-1].endswith(".50"), cash  # the 12.50 received, in 2 decimals
    assert tx_id[:10] in browser.find_element(By.ID, "view").text  # the history lists the transfer
    _screenshot(browser, "account")

    # The list pages render too (and everything above logged no SEVERE entry).
    for route, text in (
        ("#/blocks", "Every committed block"),
        ("#/assets", "Bond A 2029 4.25%"),
        ("#/accounts", "user-2@m0"),
        ("#/governance", "admit-m9"),
        ("#/proposal/admit-m9", "Bank Nine"),
    ):
        browser.get(f"{url}/{route}")
        _wait_route(browser, route)
        assert text in browser.find_element(By.ID, "view").text, route
        if route == "#/governance":
            _screenshot(browser, "governance")
    # The only failed requests: the waiting transaction's page asking for it before the node had it (404).
    severe = [e for e in _severe(browser) if not (f"/v1/tx/{later_id} " in e["message"] and "404" in e["message"])]
    assert severe == [], severe
