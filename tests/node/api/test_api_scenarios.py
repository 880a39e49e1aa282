"""Scenarios 5 (lost-key recovery) and 6 (custody statement) of ../shared/context/scenarios.md, end to end through
the HTTP API with the Python SDK against one 4-validator network (node.tools.testnet.Testnet with its nodes in this
process: real consensus over loopback TCP, the API on every node). Transactions go through the nodes in turn and
wait for commit; private reads are signed by the reading institution. Each scenario ends with the supply check
through the API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import codes
from ledger.operations import (
    CreateHold,
    DefineAsset,
    FreezeAccount,
    FreezeAmount,
    GrantRole,
    Issue,
    MigrateAccount,
    RecoverKeys,
    RegisterAccount,
    ReleaseHold,
    Transfer,
    TransferLeg,
)
from node.cli import main
from node.client import AccountKey, ApiError, load_trust_anchor, statement_bytes, verify_statement
from node.tools.testnet import Testnet
from tests.node.tools.scenario_net import Driver, genesis_keys, start_network

ADMIN = "admin@m0"
CASH = "CASH-T"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Testnet, Driver, dict[str, AccountKey]]]:
    net = start_network(str(tmp_path_factory.mktemp("api-scenarios")), nodes=4)
    driver: Driver | None = None
    try:
        assert len(net.api_urls()) == 4
        keys = genesis_keys(net)
        driver = Driver(net.api_urls(), keys[ADMIN])  # admin@m0 holds the auditor role: it reads everything
        driver.wait_height(1)
        yield net, driver, keys
    finally:
        if driver is not None:
            driver.close()
        net.close()


def history(driver: Driver, account: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    for _ in range(20):
        page = driver.reader.history(account, limit=100, after=after)
        items += [i for i in page.get("items", []) if isinstance(i, dict)]
        after = page.get("next")
        if not after:
            return items
    raise AssertionError("history pagination did not end")


def event_kinds(items: list[dict[str, Any]]) -> list[str]:
    return [ev.get("kind", "") for item in items for ev in item.get("events", ()) if isinstance(ev, dict)]


def flip_hex(text: str, at: int) -> str:
    """`text` with the hex digit at `at` changed."""
    return text[:at] + ("1" if text[at] == "0" else "0") + text[at + 1:]


def test_scenario_5_lost_key_recovery(world: tuple[Testnet, Driver, dict[str, AccountKey]]) -> None:
    _, d, genesis_keys = world
    admin = genesis_keys[ADMIN]
    outsider = genesis_keys["user-0@m0"]  # a plain account, no agent role
    h_id, k_id, k_new_id = "holder-h@m1", "holder-k@m1", "holder-k2@m1"
    agent = AccountKey.generate("recovery@m1")
    foreign_agent = AccountKey.generate("recovery@m2")  # an agent, but of another member institution
    h_old, h_new = AccountKey.generate(h_id), AccountKey.generate(h_id)
    k_old, k_new = AccountKey.generate(k_id), AccountKey.generate(k_new_id)
    d.ok([RegisterAccount(ADMIN, a.account, (a.public_key,), 1, None) for a in (agent, foreign_agent, h_old, k_old,
                                                                                 k_new)]
         + [GrantRole(ADMIN, agent.account, "agent"), GrantRole(ADMIN, foreign_agent.account, "agent"),
            Issue(ADMIN, CASH, h_id, 500_000), Issue(ADMIN, CASH, k_id, 800_000)], [admin])
    before = d.ok([Transfer(h_id, CASH, (TransferLeg(outsider.account, 1_000),))], [h_old])

    # H's key is lost. A non-agent, and an agent of another institution, cannot rotate it.
    recover = RecoverKeys(outsider.account, h_id, (h_new.public_key,), 1, "lost key, ticket 5-1")
    assert d.attempt([recover], [outsider])[0] == codes.UNAUTHORIZED
    recover = RecoverKeys(foreign_agent.account, h_id, (h_new.public_key,), 1, "lost key, ticket 5-1")
    assert d.attempt([recover], [foreign_agent])[0] == codes.UNAUTHORIZED
    assert d.reader.account(h_id)["keys"] == [h_old.public_key.hex()]
    # The recovery agent of H's institution rotates H to the new key set.
    rotated = d.ok([RecoverKeys(agent.account, h_id, (h_new.public_key,), 1, "lost key, ticket 5-1")], [agent])
    assert [e["kind"] for e in rotated["events"]] == ["keys_recovered"]
    assert rotated["events"][0]["attrs"]["actor"] == agent.account
    assert d.reader.account(h_id)["keys"] == [h_new.public_key.hex()]
    # The old key can no longer sign for H; the new one can.
    move = [Transfer(h_id, CASH, (TransferLeg(outsider.account, 2_000),))]
    assert d.attempt(move, [h_old])[0] == codes.UNKNOWN_SIGNING_KEY
    after = d.ok(move, [h_new])
    assert d.balance(h_id, CASH) == {"available": 497_000, "held": 0, "frozen": 0, "total": 497_000}
    # History intact: the transfer under the old key, the recovery and the transfer under the new key.
    items = history(d, h_id)
    assert {before["tx_id"], rotated["tx_id"], after["tx_id"]} <= {i.get("tx_id") for i in items}
    assert "keys_recovered" in event_kinds(items)

    # The alternative: move K's holdings, frozen amount and freeze status to a new account.
    d.ok([FreezeAmount(ADMIN, CASH, k_id, 30_000, "court order 2026/201")], [admin])
    d.ok([FreezeAccount(ADMIN, k_id, "court order 2026/202")], [admin])
    k_before = d.balance(k_id, CASH)
    assert k_before == {"available": 770_000, "held": 0, "frozen": 30_000, "total": 800_000}
    migrate = MigrateAccount(outsider.account, k_id, k_new_id, "lost key, ticket 5-2")
    assert d.attempt([migrate], [outsider])[0] == codes.UNAUTHORIZED
    migrated = d.ok([MigrateAccount(agent.account, k_id, k_new_id, "lost key, ticket 5-2")], [agent])
    assert "account_migrated" in [e["kind"] for e in migrated["events"]]
    assert d.balance(k_new_id, CASH) == k_before
    assert d.balance(k_id, CASH)["total"] == 0
    new_account, old_account = d.reader.account(k_new_id), d.reader.account(k_id)
    assert new_account["frozen"] is True
    assert old_account["closed_to"] == k_new_id
    # The old account is closed: its key signs nothing for it any more.
    assert d.attempt([Transfer(k_id, CASH, (TransferLeg(outsider.account, 1),))], [k_old])[0] == codes.SIGNER_CLOSED
    # The freeze moved with the holdings: the new account's key signs, but the frozen account cannot send.
    assert d.attempt([Transfer(k_new_id, CASH, (TransferLeg(outsider.account, 1),))], [k_new])[0] == codes.SENDER_FROZEN
    # History intact on both sides of the migration.
    old_items = history(d, k_id)
    assert migrated["tx_id"] in {i.get("tx_id") for i in old_items}
    assert {"amount_frozen", "account_frozen", "account_migrated"} <= set(event_kinds(old_items))
    assert migrated["tx_id"] in {i.get("tx_id") for i in history(d, k_new_id)}
    d.supply_check([CASH])


def test_scenario_6_custody_statement(world: tuple[Testnet, Driver, dict[str, AccountKey]], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    net, d, genesis_keys = world
    admin = genesis_keys[ADMIN]
    custodian = AccountKey.generate("custodian@m2")
    client_d = AccountKey.generate("client-d@m1")
    broker = AccountKey.generate("broker@m3")
    sec = "SEC-D"
    d.ok([RegisterAccount(ADMIN, custodian.account, (custodian.public_key,), 1, None),
          GrantRole(ADMIN, custodian.account, "custodian"),
          RegisterAccount(ADMIN, broker.account, (broker.public_key,), 1, None)], [admin])
    d.ok([RegisterAccount(ADMIN, client_d.account, (client_d.public_key,), 1, custodian.account),
          DefineAsset(ADMIN, sec, 0, 1_000_000, "Security held in custody", "", (), (), ())], [admin])
    d.ok([Issue(ADMIN, sec, client_d.account, 2_500)], [admin])

    # The custodian holds 1,000 of D's units for a pending trade (notary: the custodian), then releases them.
    hold = CreateHold(custodian.account, "trade-6", sec, client_d.account, broker.account, custodian.account, 1_000,
                      int(time.time()) + 3600)
    held_at = int(d.ok([hold], [custodian])["height"])
    with d.client(custodian, node=1) as as_custodian:
        assert as_custodian.balances(client_d.account, sec)["balances"][0]["held"] == 1_000
    released_at = int(d.ok([ReleaseHold(custodian.account, "trade-6")], [custodian])["height"])
    assert released_at > held_at
    d.wait_height(released_at + 1)

    anchor = load_trust_anchor(net.genesis_path)  # trusts only the genesis file
    with d.client(custodian, node=2) as as_custodian:
        during = as_custodian.statement(client_d.account, held_at)
        statement = as_custodian.statement(client_d.account, released_at)
    # The broker is not D's custodian: D's statement is not visible to it.
    with d.client(broker, node=3) as as_broker, pytest.raises(ApiError) as refused:
        as_broker.statement(client_d.account, released_at)
    assert refused.value.status == 403 and refused.value.code == 3206

    verdict = verify_statement(during, anchor)
    assert verdict.ok, verdict.reason
    holding = next(h for h in during["holdings"] if h["asset"] == sec)
    assert (holding["available"], holding["held"], [h["hold"] for h in holding["holds"]]) == (1_500, 1_000,
                                                                                            ["trade-6"])
    verdict = verify_statement(statement, anchor)
    assert verdict.ok and verdict.account == client_d.account and verdict.height == released_at, verdict
    holding = next(h for h in statement["holdings"] if h["asset"] == sec)
    assert (holding["available"], holding["held"], holding["frozen"]) == (2_500, 0, 0)

    # Offline, with the CLI: only the file and the genesis.
    path = tmp_path / "client-d.json"
    path.write_bytes(statement_bytes(statement))
    assert main(["verify-statement", str(path), "--genesis", net.genesis_path]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    data = path.read_bytes()
    at = data.index(b'"available": ') + len(b'"available": ')
    assert data[at:at + 4] == b"2500"
    bad = tmp_path / "client-d-tampered.json"
    bad.write_bytes(data[:at] + b"9" + data[at + 1:])  # 2500 -> 9500
    assert main(["verify-statement", str(bad), "--genesis", net.genesis_path]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "statement_value_mismatch"
    tampered = json.loads(bad.read_text())
    assert not verify_statement(tampered, anchor).ok
    # A changed byte of the commit certificate, or of a proven record, fails too.
    assert statement["account_status"]["custodian"] == custodian.account
    cert = json.loads(json.dumps(statement))
    cert["commit_certificate"] = flip_hex(cert["commit_certificate"], len(cert["commit_certificate"]) // 2)
    assert not verify_statement(cert, anchor).ok
    proof = json.loads(json.dumps(statement))
    record = next(p for p in proof["proofs"] if p["value"])
    record["value"] = flip_hex(record["value"], len(record["value"]) - 1)
    assert not verify_statement(proof, anchor).ok
    d.supply_check([sec, CASH])


def test_one_transaction_sent_to_every_node_commits_once_with_one_receipt(
        world: tuple[Testnet, Driver, dict[str, AccountKey]]) -> None:
    """docs/api.md, "The `duplicate` flag": a per-node fact (did this node already hold the id?), never a
    network-wide "first submission". Sent to all four nodes at once, the transaction commits once and every
    submission gets the same receipt; afterwards every node answers `duplicate: true`; a transaction a node only
    received by gossip is a duplicate there too."""
    from concurrent.futures import ThreadPoolExecutor

    from node.client import builder

    _, d, keys = world
    sender = keys["user-0@m0"]

    def transfer(amount: int) -> Any:
        body = d.writers[0].body([Transfer(sender.account, CASH, (TransferLeg("user-1@m1", amount),))])
        return builder.sign(body, [sender])

    tx = transfer(7)
    with ThreadPoolExecutor(len(d.writers)) as pool:
        results = list(pool.map(lambda w: w.submit(tx, wait="commit", timeout=30.0), d.writers))
    assert {r.tx_id for r in results} == {tx.tx_id.hex()} and all(r.status == "committed" for r in results)
    assert len({json.dumps(r.receipt, sort_keys=True) for r in results}) == 1  # one commit, one receipt
    places = {(t["height"], t["index"]) for t in (w.tx(tx.tx_id.hex()) for w in d.writers)}
    assert places == {(results[0].receipt["height"], results[0].receipt["index"])}
    again = [w.submit(tx, wait="none") for w in d.writers]
    assert all(r.duplicate and r.status == "committed" for r in again)

    gossiped = transfer(8)
    first = d.writers[0].submit(gossiped, wait="none")
    assert not first.duplicate
    deadline = time.monotonic() + 20
    while True:  # node-1 hears of it by gossip only
        try:
            if d.writers[1].tx(gossiped.tx_id.hex())["status"] in ("pending", "committed"):
                break
        except ApiError:
            pass
        assert time.monotonic() < deadline, "node-1 never heard of the gossiped transaction"
        time.sleep(0.05)
    assert d.writers[1].submit(gossiped, wait="commit", timeout=30.0).duplicate
