"""`ledger index` against a live 4-validator testnet under transfer load, killed together with PostgreSQL at random
moments: the database ends with exactly the chain's rows — per asset the supply in SQL equals the chain's, every
account's balance in SQL equals its balance read with a state proof from the node (verified offline against the
certified root) — and the report queries of docs/indexer.md agree with the node's own reads. The soak version kills
many more times under heavier load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from ledger.records import AssetStatus, Balance
from ledger.state import decode_value
from ledger.state_keys import asset_status_key, balance_key
from node.chain.genesis import load_genesis
from node.client.errors import ApiError
from node.client.sync import LedgerClient
from node.client.verify import verify_state_proof
from node.indexer.errors import IndexerError
from node.indexer.pgcluster import PgCluster
from node.indexer.run import Indexer, IndexerConfig
from node.tools.localnet import load_accounts
from tests.node.indexer.live import IndexedChain, run_indexed_chain
from tests.node.indexer.reports import report_queries

REPORTS = report_queries()
ZERO = "0" * 64


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def chain(pg: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexedChain]:
    c = run_indexed_chain(tmp_path_factory.mktemp("indexer"), pg, rounds=3, rate=120, seed=18)
    try:
        yield c
    finally:
        c.net.kill_all()


def patiently(read: Callable[[], Any]) -> Any:
    """A read of the test's own checks, retried while the node's rate limit (3106) says so: a long chain means many
    reads in a row."""
    for _ in range(600):
        try:
            return read()
        except ApiError as exc:
            if exc.code != 3106:
                raise
            time.sleep(float(exc.details.get("retry_after", 0.2) or 0.2))
    raise AssertionError("the node kept refusing the test's reads (rate limit)")


def proved(client: LedgerClient, key: bytes, height: int, root: bytes) -> Any:
    doc = patiently(lambda: client.proof(key.hex(), height))
    assert verify_state_proof(root, key, doc["value"], doc["proof"]), key
    return None if doc["value"] is None else decode_value(key, bytes.fromhex(doc["value"]))


def rows(pg: PgCluster, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.dsn) as conn:
        return conn.execute(sql, params).fetchall()


def test_after_kills_the_database_holds_exactly_the_chains_rows(chain: IndexedChain) -> None:
    assert len(chain.kills) == 4 and chain.kills[-1] == "node"
    assert_exactly_the_chains_rows(chain)


@pytest.mark.soak
def test_soak_many_kills_under_heavier_load(tmp_path: Path) -> None:
    with PgCluster() as pg:
        c = run_indexed_chain(tmp_path, pg, rounds=25, rate=400, seed=1818)
        try:
            assert len(c.kills) == 26
            assert_exactly_the_chains_rows(c)
        finally:
            c.net.kill_all()


def assert_exactly_the_chains_rows(chain: IndexedChain) -> None:
    pg, h = chain.pg, chain.height
    assert rows(pg, "SELECT count(*), min(height), max(height) FROM blocks") == [(h + 1, 0, h)]
    assert rows(pg, "SELECT height FROM indexer_checkpoint") == [(h,)]
    root = bytes(rows(pg, "SELECT state_root FROM blocks WHERE height = %(h)s", {"h": h})[0][0])
    with LedgerClient(chain.url) as client:
        # Block by block: the transactions and balance movements are exactly those the node serves, once each.
        sql_tx = {}
        for height, tx_id in rows(pg, "SELECT height, tx_id FROM transactions"):
            sql_tx.setdefault(height, []).append(bytes(tx_id).hex())
        sql_moves = dict(rows(pg, "SELECT height, count(*) FROM balance_movements WHERE height > 0 GROUP BY height"))
        moved = 0
        for height in range(1, h + 1):
            doc = patiently(lambda h=height: client.block_changes(h))
            assert sorted(sql_tx.get(height, [])) == sorted(r["tx_id"] for r in doc["receipts"]), height
            n = sum(1 for m in doc["balance_changes"] for b in ("available", "held", "frozen") if m[b])
            assert sql_moves.get(height, 0) == n, height
            moved += n
        assert moved > 100  # the load really ran
        # Per asset: the supply in SQL is the chain's, proved.
        for asset, total in rows(pg, "SELECT asset, sum(available + held + frozen) FROM positions GROUP BY asset"):
            status: AssetStatus = proved(client, asset_status_key(asset), h, root)
            assert status.outstanding == total, asset
        # Every account's balance: SQL equals the proved Balance record (absent: zero).
        accounts = set(load_accounts(chain.net.accounts_path)) | {
            a for (a,) in rows(pg, "SELECT account FROM positions")
        }
        positions = {
            (a, acc): (av, he, fr)
            for a, acc, av, he, fr in rows(pg, "SELECT asset, account, available, held, frozen FROM positions")
        }
        assets = [a for (a,) in rows(pg, "SELECT asset FROM assets ORDER BY asset")]
        assert assets == ["BOND-X", "CASH-T"]
        for asset in assets:
            for account in sorted(accounts):
                bal: Balance | None = proved(client, balance_key(asset, account), h, root)
                chain_b = (0, 0, 0) if bal is None else (bal.available, bal.held, bal.frozen)
                assert positions.get((asset, account), (0, 0, 0)) == chain_b, (asset, account)
    assert "audit at height" in chain.log
    assert "indexer_database_unavailable" in chain.log or "postgres" not in chain.kills
    assert "indexer_node_unreachable" in chain.log and "retrying in" in chain.log


def test_holds_freezes_and_signers_are_indexed(chain: IndexedChain) -> None:
    pg = chain.pg
    got = dict(rows(pg, "SELECT hold_id, status FROM holds"))
    assert got == chain.holds
    assert rows(pg, "SELECT closed_how FROM holds WHERE hold_id = 'h-rel'") == [("released_by_notary",)]
    expired = rows(pg, "SELECT encode(closed_tx, 'hex') FROM holds WHERE hold_id = 'h-exp'")
    assert expired == [(ZERO,)]  # released by the block's own step, not by a transaction
    assert rows(pg, "SELECT kind, amount FROM freezes ORDER BY height, seq") == [
        ("amount_frozen", 500),
        ("amount_unfrozen", 200),
    ]
    assert rows(pg, "SELECT frozen FROM positions WHERE account = 'user-1@m1'") == [(300,)]
    # Every block's certificate was signed by a quorum of the 4 validators (3 of power 1 each at least).
    assert rows(pg, "SELECT min(signer_power), min(cardinality(signers)) FROM blocks WHERE height > 0") >= [(3, 3)]
    # The governance change started epoch 1 (same validators): its blocks verified through the epoch-change proof.
    validators = ["node-0", "node-1", "node-2", "node-3"]
    epochs = rows(pg, "SELECT epoch, start_height, end_height, validators FROM epochs ORDER BY epoch")
    assert [(e, v) for e, _, _, v in epochs] == [(0, validators), (1, validators)]
    assert epochs[0][2] == epochs[1][1] - 1 and epochs[1][2] is None
    assert rows(pg, "SELECT min(height) FROM blocks WHERE epoch = 1") == [(epochs[1][1],)]
    assert rows(pg, "SELECT status, approvals >= 3, closed_height IS NOT NULL FROM proposals") == [
        ("executed", True, True)
    ]
    kinds = {k for (k,) in rows(pg, "SELECT kind FROM proposal_events")}
    assert {"proposal_created", "proposal_approved", "proposal_executed", "epoch_scheduled"} <= kinds
    assert rows(pg, "SELECT count(*) FROM transactions WHERE code <> 0 AND reason = 'OK'") == [(0,)]


def test_corporate_actions_and_their_payments_are_indexed(chain: IndexedChain) -> None:
    pg = chain.pg
    actions = rows(
        pg, "SELECT action, action_kind, asset, pay_asset, record_height, rate_num, rate_den FROM corporate_actions"
    )
    assert [a[:4] + a[5:] for a in actions] == [("BOND-X-C1", 1, "BOND-X", "CASH-T", 1, 10)]
    record = actions[0][4]
    paid = rows(
        pg, "SELECT kind, asset, payer, recipient, amount, frozen FROM corporate_action_payments ORDER BY recipient"
    )
    assert [(p[0], p[1], p[2], p[4]) for p in paid] == [
        ("distribution_paid", "CASH-T", "admin@m0", 100),
        ("distribution_paid", "CASH-T", "admin@m0", 300),
    ]
    # The holders at the record height (the report of docs/indexer.md) are those the coupon paid, pro rata.
    holders = rows(pg, REPORTS["holders_at_height"], {"asset": "BOND-X", "height": record})
    by_holder = {r[0]: r[4] for r in holders}
    assert {p[3]: p[4] * 10 for p in paid} == by_holder
    with LedgerClient(chain.url) as client:  # nothing moved BOND-X since: the node's holder list at the head agrees
        node_holders = {i["account"]: i["total"] for i in patiently(lambda: client.holders("BOND-X", limit=100))["items"]}
    assert node_holders == by_holder


def test_report_queries_agree_with_the_node(chain: IndexedChain) -> None:
    pg, h = chain.pg, chain.height
    assert set(REPORTS) == {
        "positions_at_height",
        "positions_at_date",
        "holders_at_height",
        "counterparty_history",
        "open_holds_by_age",
        "supply_history",
        "supply_at_height",
    }
    with LedgerClient(chain.url) as client:
        for height in (1, h // 3, (2 * h) // 3, h):
            at = rows(pg, REPORTS["positions_at_height"], {"height": height})
            node_side = []
            for account in sorted(load_accounts(chain.net.accounts_path)):
                for b in patiently(lambda a=account, h=height: client.balances(a, height=h))["balances"]:
                    node_side.append((b["asset"], account, b["available"], b["held"], b["frozen"], b["total"]))
            assert sorted(at) == sorted(node_side), height
            by_date = rows(
                pg,
                REPORTS["positions_at_date"],
                {"at": rows(pg, "SELECT time FROM blocks WHERE height = %(h)s", {"h": height})[0][0]},
            )
            last_same_second = rows(
                pg,
                "SELECT max(height) FROM blocks WHERE time = (SELECT time FROM blocks WHERE height = %(h)s)",
                {"h": height},
            )[0][0]
            assert by_date == rows(pg, REPORTS["positions_at_height"], {"height": last_same_second})
            holders = rows(pg, REPORTS["holders_at_height"], {"asset": "CASH-T", "height": height})
            assert sorted((r[0], r[4]) for r in holders) == sorted(
                (r[1], r[5]) for r in node_side if r[0] == "CASH-T" and r[5] > 0
            )
            supply = rows(pg, REPORTS["supply_at_height"], {"asset": "CASH-T", "height": height})[0][0]
            assert supply == patiently(lambda h=height: client.asset("CASH-T", height=h))["outstanding"]
        history = rows(pg, REPORTS["supply_history"], {"asset": "CASH-T"})
        assert history[0][0] == 0 and history[-1][2] == patiently(lambda: client.asset("CASH-T"))["outstanding"]
        # Counterparty history against the node's account history: the transactions with an event that moved units
        # between the two (a transfer leg or an executed hold; a hold's creation names both but moves only the
        # sender's units between its own buckets).
        a, b = "user-0@m0", "user-1@m1"
        t0, t1 = rows(pg, "SELECT min(time), max(time) + interval '1 second' FROM blocks")[0]
        sql_ids = {
            r[2]
            for r in rows(
                pg, REPORTS["counterparty_history"], {"account": a, "counterparty": b, "since": t0, "until": t1}
            )
        }
        node_ids = set()
        page: dict[str, Any] = patiently(lambda a=a: client.history(a, limit=1000))
        while True:
            for item in page["items"]:
                if (
                    item["height"] <= h
                    and item["code"] == 0
                    and any(
                        ev["kind"] in ("transferred", "hold_executed")
                        and {a, b} == {ev["attrs"].get("sender"), ev["attrs"].get("recipient")}
                        for ev in item["events"]
                    )
                ):
                    node_ids.add(item["tx_id"])
            if page.get("next") is None:
                break
            page = patiently(lambda a=a, after=page["next"]: client.history(a, limit=1000, after=after))
        assert sql_ids == node_ids and sql_ids
        # Open holds by age: exactly the holds the node reports as still ordered.
        now = rows(pg, "SELECT max(time) FROM blocks")[0][0]
        open_holds = rows(pg, REPORTS["open_holds_by_age"], {"now": now, "min_age": timedelta(0)})
        assert [r[0] for r in open_holds] == [
            hid for hid in sorted(chain.holds) if patiently(lambda hid=hid: client.hold(hid))["status_name"] == "ordered"
        ]
        assert rows(pg, REPORTS["open_holds_by_age"], {"now": now, "min_age": timedelta(days=3650)}) == []


def _flip_last_byte(hex_text: str) -> str:
    return hex_text[:-2] + f"{int(hex_text[-2:], 16) ^ 0x01:02x}"


def _tamper_certificate(doc: dict[str, Any], other: dict[str, Any]) -> None:
    doc["certificate"] = _flip_last_byte(doc["certificate"])


def _tamper_block(doc: dict[str, Any], other: dict[str, Any]) -> None:
    doc["block"] = other["block"]  # the bytes of another certified block


def _tamper_movement(doc: dict[str, Any], other: dict[str, Any]) -> None:
    doc["balance_changes"].append(
        {"tx_id": ZERO, "asset": "CASH-T", "account": "user-7@m3", "available": 1_000, "held": 0, "frozen": 0}
    )  # units from nowhere: only the audit can tell


@pytest.mark.parametrize(
    ("tamper", "code", "written"),
    [
        (_tamper_certificate, "indexer_certificate_invalid", False),
        (_tamper_block, "indexer_block_invalid", False),
        (_tamper_movement, "indexer_audit_mismatch", True),
    ],
)
def test_a_node_that_lies_is_caught_and_named(chain: IndexedChain, tamper: Any, code: str, written: bool) -> None:
    """Through a proxy that alters the node's answer for one height: a certificate that does not verify, or bytes
    that are not the certified block, are refused before anything of that height is written; a movement the chain
    never made is caught by the audit at that height. Either way the indexer stops with the code and the height."""
    pg, bad = chain.pg, 5
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tampered")
        conn.execute("CREATE DATABASE tampered")
    dsn = pg.dsn.replace(f"dbname={pg.database}", "dbname=tampered")
    lines: list[str] = []

    async def run() -> IndexerError:
        async with aiohttp.ClientSession() as session:

            async def forward(request: web.Request) -> web.Response:
                async with session.get(chain.url + request.path_qs) as r:
                    status, body = r.status, await r.json()
                if request.path == f"/v1/blocks/{bad}/changes":
                    async with session.get(f"{chain.url}/v1/blocks/{bad + 1}/changes") as r2:
                        tamper(body, await r2.json())
                return web.json_response(body, status=status)

            app = web.Application()
            app.router.add_get("/{tail:.*}", forward)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            config = IndexerConfig(
                f"http://127.0.0.1:{port}",
                dsn,
                load_genesis(chain.net.genesis_path),
                audit_every=1,
                until_height=bad + 3,
                max_attempts=1,
                status=lines.append,
            )
            try:
                with pytest.raises(IndexerError) as info:
                    await Indexer(config).run()
            finally:
                await runner.cleanup()
            return info.value

    err = asyncio.run(run())
    assert err.code == code and err.fatal
    assert f"height {bad}:" in str(err) and any(f"stopped: {code}: height {bad}:" in line for line in lines)
    with psycopg.connect(dsn) as conn:
        top = conn.execute("SELECT max(height) FROM blocks").fetchone()[0]
        moved = conn.execute("SELECT count(*) FROM balance_movements WHERE height >= %s", (bad,)).fetchone()[0]
    assert top == (bad if written else bad - 1)
    assert (moved > 0) == written
