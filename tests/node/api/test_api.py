"""The REST API against a real ledger store: every endpoint's happy path and its error codes, limits, CORS, and
the guarantee that no failure leaks a 500 or a stack trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from ledger import codes
from ledger import operations as o
from ledger.jsonform import body_to_json
from ledger.smt import StateProof, verify_proof
from ledger.state_keys import account_key, balance_key
from ledger.transaction import signing_message
from node.api import ApiConfig, ApiLimits
from node.api import errors as e
from node.chain.protocol import OPERATIONS
from node.chain.statement import TrustAnchor, verify_statement
from tests.node.api.api_world import (
    ALICE,
    BOB,
    CHAIN,
    CHAIN_B,
    CUSTODIAN,
    DAVE,
    ISSUER,
    N_VALIDATORS,
    ApiHarness,
    MirrorWorld,
    new_tx,
    populated_world,
)

Body = Callable[[ApiHarness], Awaitable[None]]


def run(world: MirrorWorld, body: Body, config: ApiConfig | None = None, auto_commit: bool = True) -> None:
    async def main() -> None:
        async with ApiHarness(world, config, auto_commit) as h:
            await body(h)

    asyncio.run(main())


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> MirrorWorld:
    """Read-only tests share one world."""
    w = populated_world(str(tmp_path_factory.mktemp("api") / "db"))
    w.ok(DAVE, o.CreateHold(DAVE, "hold-1", "BOND-A", DAVE, BOB, CUSTODIAN, 1_000, 1_900_000_000))
    return w


@pytest.fixture
def world(tmp_path: Path) -> MirrorWorld:
    return populated_world(str(tmp_path / "db"))


def error(status: int, body: Any, want_status: int, want_code: int) -> None:
    assert (status, body["code"]) == (want_status, want_code), body
    assert set(body) == {"code", "name", "message", "details"}
    assert codes.describe(want_code) is not None and body["name"] == codes.describe(want_code).name


# -- public node endpoints ---------------------------------------------------------------------------------------


def test_status_health_validators_peers_metrics_codes_docs(shared: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        s, b = await h.get("/v1/status")
        head = shared.store.head()
        assert s == 200 and b["chain_id"] == CHAIN and b["height"] == head.height
        assert b["state_root"] == head.state_root.hex() and b["open_reads"] is False
        s, b = await h.get("/health")
        assert s == 200 and b == {"ok": True, "height": head.height}
        s, b = await h.get("/v1/validators")
        assert s == 200 and len(b["validators"]) == N_VALIDATORS and b["epoch"] == 0
        s, b = await h.get("/v1/peers")
        assert s == 200 and b["peers"][0]["connected"] is True
        s, text = await h.get("/metrics")
        assert s == 200 and f"ledger_height {head.height}" in text
        s, b = await h.get("/v1/codes")
        by_code = {c["code"]: c["name"] for c in b["codes"]}
        assert by_code[0] == "OK" and by_code[e.NOT_VISIBLE] == "NOT_VISIBLE"
        s, page = await h.get("/docs")
        assert s == 200 and "/v1/accounts/{account_id}/balances" in page and "<script" not in page
        s, spec = await h.get("/openapi.json")
        assert s == 200 and spec["openapi"] == "3.1.0"

    run(shared, body)


def test_routing_errors(shared: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        s, b = await h.get("/v1/nothing-here")
        error(s, b, 404, e.ROUTE_NOT_FOUND)
        async with h.client.delete("/v1/status") as r:
            error(r.status, await r.json(), 405, e.METHOD_NOT_ALLOWED)
            assert r.headers["Allow"] == "GET"
        # Allow names exactly the documented methods of the path, although /v1/tx/batch also matches the
        # template of GET /v1/tx/{tx_id}.
        for method in ("GET", "OPTIONS", "TRACE", "PUT"):
            async with h.client.request(method, "/v1/tx/batch") as r:
                error(r.status, await r.json(), 405, e.METHOD_NOT_ALLOWED)
                assert r.headers["Allow"] == "POST"
        s, b = await h.get("/v1/status", query="bogus=1")
        error(s, b, 400, e.BAD_REQUEST)
        s, b = await h.get("/v1/blocks", query="limit=0")
        error(s, b, 400, e.BAD_REQUEST)
        s, b = await h.get("/v1/blocks", query="limit=abc")
        error(s, b, 400, e.BAD_REQUEST)
        s, b = await h.get("/v1/accounts/NOT-AN-ID")
        error(s, b, 400, e.BAD_REQUEST)

    run(shared, body)


# -- accounts, balances, assets, holds, history --------------------------------------------------------------------


def test_account_balances_assets_holders(shared: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        s, b = await h.get(f"/v1/accounts/{DAVE}")
        assert s == 200 and b["custodian"] == CUSTODIAN and b["roles"] == [] and b["frozen"] is False
        s, b = await h.get("/v1/accounts/nobody@bank-a")
        error(s, b, 404, e.ACCOUNT_NOT_FOUND)
        s, b = await h.get(f"/v1/accounts/{DAVE}/balances", signer=DAVE)
        assert s == 200
        assert b["balances"] == [{"asset": "BOND-A", "account": DAVE, "available": 99_000, "held": 1_000,
                                  "frozen": 0, "total": 100_000}]
        s, b = await h.get(f"/v1/accounts/{BOB}/balances", signer=BOB, query="asset=CASH-T")
        assert s == 200 and b["balances"][0]["available"] == 7_000
        # at a past height (before DAVE's hold) through the state tree
        hold_height = shared.store.head().height
        s, b = await h.get(f"/v1/accounts/{DAVE}/balances", signer=DAVE, query=f"height={hold_height - 1}")
        assert s == 200 and b["balances"][0]["held"] == 0 and b["height"] == hold_height - 1
        s, b = await h.get(f"/v1/accounts/{DAVE}/balances", signer=DAVE, query="height=999999")
        error(s, b, 404, e.HEIGHT_UNKNOWN)
        s, b = await h.get("/v1/assets/BOND-A")
        assert s == 200 and b["definition"]["issuer"] == ISSUER and b["outstanding"] == 150_000
        s, b = await h.get("/v1/assets/NOPE")
        error(s, b, 404, e.ASSET_NOT_FOUND)
        # holders, paginated
        s, b = await h.get("/v1/assets/BOND-A/holders", signer=ISSUER, query="limit=2")
        assert s == 200 and [x["account"] for x in b["items"]] == [ALICE, BOB] and b["next"] == BOB
        s, b2 = await h.get("/v1/assets/BOND-A/holders", signer=ISSUER, query=f"limit=2&after={b['next']}")
        assert s == 200 and [x["account"] for x in b2["items"]] == [DAVE] and b2["next"] is None
        assert sum(x["total"] for x in b["items"] + b2["items"]) == 150_000

    run(shared, body)


def test_holds_and_history(shared: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        s, b = await h.get("/v1/holds/hold-1", signer=BOB)  # the recipient sees it
        assert s == 200 and b["status_name"] == "ordered" and b["hold"]["amount"] == 1_000
        s, b = await h.get("/v1/holds/hold-1", signer=ALICE)
        error(s, b, 403, e.NOT_VISIBLE)
        s, b = await h.get("/v1/holds/nope", signer=BOB)
        error(s, b, 404, e.HOLD_NOT_FOUND)
        s, b = await h.get(f"/v1/accounts/{DAVE}/holds", signer=CUSTODIAN)
        assert s == 200 and [x["hold_id"] for x in b["items"]] == ["hold-1"] and b["next"] is None
        # history pages: newest first, no overlap, cursor continues
        s, p1 = await h.get(f"/v1/accounts/{ALICE}/history", signer=ALICE, query="limit=1")
        assert s == 200 and len(p1["items"]) == 1 and p1["next"]
        s, p2 = await h.get(f"/v1/accounts/{ALICE}/history", signer=ALICE, query=f"limit=5&after={p1['next']}")
        assert s == 200 and p2["items"]
        heights = [x["height"] for x in p1["items"] + p2["items"]]
        assert heights == sorted(heights, reverse=True) and len(set(zip(heights, heights))) == len(heights)
        assert p1["items"][0]["events"][0]["kind"] == "transferred"
        s, b = await h.get(f"/v1/accounts/{ALICE}/history", signer=ALICE, query="after=bad")
        error(s, b, 400, e.BAD_REQUEST)

    run(shared, body)


def test_blocks_and_proofs(shared: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        s, b = await h.get("/v1/blocks/2")
        assert s == 200 and b["height"] == 2 and b["block_hash"] == shared.blocks[2].id.hex()
        assert b["certificate"] == shared.certificate(2).encode().hex()
        s, b = await h.get("/v1/blocks/99999")
        error(s, b, 404, e.BLOCK_NOT_FOUND)
        s, b = await h.get("/v1/blocks", query="from_height=0&limit=3")
        assert [x["height"] for x in b["items"]] == [0, 1, 2] and b["next"] == "3"
        # a public key's proof verifies against the block's state root
        key = account_key(ALICE)
        s, b = await h.get("/v1/proofs", query=f"key={key.hex()}&height=10")
        assert s == 200 and b["record"]["member"] == "bank-a"
        proof = StateProof.from_json(b["proof"])
        assert verify_proof(bytes.fromhex(b["state_root"]), key, bytes.fromhex(b["value"]), proof)
        assert b["state_root"] == shared.store.state_root_at(10).hex()
        # a balance key is private
        bkey = balance_key("BOND-A", DAVE)
        s, b = await h.get("/v1/proofs", query=f"key={bkey.hex()}")
        error(s, b, 401, e.AUTH_REQUIRED)
        s, b = await h.get("/v1/proofs", query=f"key={bkey.hex()}", signer=CUSTODIAN)
        assert s == 200 and b["record"]["held"] == 1_000
        # non-inclusion proof of an absent key
        s, b = await h.get("/v1/proofs", query=f"key={account_key('nobody@bank-a').hex()}")
        assert s == 200 and b["value"] is None
        assert verify_proof(bytes.fromhex(b["state_root"]), account_key("nobody@bank-a"), None,
                            StateProof.from_json(b["proof"]))
        # The replay index T is derived (not in the tree): refused, never answered with a proof of absence; the
        # id's replay bucket (tag e) is what proves it.
        bucket_key, raw = next(shared.store.iter_state(b"e"))
        s, b = await h.get("/v1/proofs", query=f"key={bucket_key.hex()}")
        assert s == 200 and b["value"] == raw.hex()
        assert verify_proof(bytes.fromhex(b["state_root"]), bucket_key, raw, StateProof.from_json(b["proof"]))
        seen = b"T" + bytes.fromhex(b["record"]["tx_ids"][0])
        assert shared.store.get_state(seen) is not None
        s, b = await h.get("/v1/proofs", query=f"key={seen.hex()}", signer=CUSTODIAN)
        error(s, b, 400, e.BAD_REQUEST)
        assert b["details"]["reason"] == "key_not_in_state_tree"

    run(shared, body)


def test_custody_statement_verifies_offline(shared: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        height = shared.store.head().height - 1  # the head's certificate needs the next block
        s, doc = await h.get(f"/v1/accounts/{DAVE}/statement", signer=CUSTODIAN, query=f"height={height}")
        assert s == 200, doc
        anchor = TrustAnchor(CHAIN, CHAIN_B, __import__("consensus.simulator").simulator.simulated_validator_set(4))
        verdict = verify_statement(doc, anchor)
        assert verdict.ok, verdict
        doc["holdings"][0]["available"] += 1
        assert not verify_statement(doc, anchor).ok
        s, b = await h.get(f"/v1/accounts/{DAVE}/statement", signer=CUSTODIAN)  # head: no certificate yet
        error(s, b, 404, e.NOT_AVAILABLE)
        s, b = await h.get(f"/v1/accounts/{DAVE}/statement", signer=ALICE, query=f"height={height}")
        error(s, b, 403, e.NOT_VISIBLE)
        s, b = await h.get(f"/v1/accounts/{DAVE}/statement", signer=CUSTODIAN, query="height=3")
        error(s, b, 404, e.ACCOUNT_NOT_FOUND)  # DAVE did not exist yet

    run(shared, body)


def test_statement_at_a_pruned_height_is_gone(world: MirrorWorld) -> None:
    """A statement for a height whose state was pruned answers 410 HEIGHT_PRUNED (not a generic 404)."""
    world.ok(ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1),)))
    old = world.store.head().height - 2
    world.store.prune_state_history(world.store.head().height - 1)

    async def body(h: ApiHarness) -> None:
        s, b = await h.get(f"/v1/accounts/{DAVE}/statement", signer=CUSTODIAN, query=f"height={old}")
        error(s, b, 410, e.HEIGHT_PRUNED)

    run(world, body)


# -- transactions ---------------------------------------------------------------------------------------------------


def test_submit_forms_wait_status_and_duplicates(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        t1 = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 10),)))
        s, b = await h.post("/v1/tx", {"tx": t1.to_bytes().hex()}, query="wait=commit&timeout=5")
        assert s == 200 and b["status"] == "committed" and b["receipt"]["code"] == 0
        assert b["tx_id"] == t1.tx_id.hex()
        s, b = await h.get(f"/v1/tx/{t1.tx_id.hex()}")
        assert s == 200 and b["status"] == "committed" and b["tx"] == t1.to_bytes().hex()
        # resubmitting a committed transaction is idempotent: its receipt, flagged duplicate
        s, b = await h.post("/v1/tx", {"tx": t1.to_bytes().hex()})
        assert s == 200 and b["duplicate"] is True and b["receipt"]["height"] == h.facade.head().height
        # msgpack body, no wait: 202 pending, then committed
        h.facade.auto_commit = False
        t2 = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 20),)))
        s, b = await h.post("/v1/tx", raw=t2.to_bytes(), content_type="application/msgpack")
        assert s == 202 and b["status"] == "pending" and b["receipt"] is None
        s, b = await h.get(f"/v1/tx/{t2.tx_id.hex()}")
        assert s == 200 and b["status"] == "pending"
        s, b = await h.post("/v1/tx", raw=t2.to_bytes(), content_type="application/msgpack")
        assert s == 202 and b["duplicate"] is True
        h.facade.produce()
        s, b = await h.get(f"/v1/tx/{t2.tx_id.hex()}")
        assert b["status"] == "committed" and b["receipt"]["events"][0]["attrs"]["amount"] == 20
        # JSON {body, signatures}; an executed refusal comes back committed with its code
        h.facade.auto_commit = True
        t3 = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 10**9),)))
        sigs = [{"account": x.account, "public_key": x.public_key.hex(), "signature": x.signature.hex()}
                for x in t3.signatures]
        s, b = await h.post("/v1/tx", {"body": body_to_json(t3.body, operations=OPERATIONS), "signatures": sigs}, query="wait=commit")
        assert s == 200 and b["tx_id"] == t3.tx_id.hex()
        assert b["receipt"]["code"] == codes.INSUFFICIENT_ACTIVE_BALANCE and b["status"] == "committed"
        s, b = await h.get("/v1/tx/" + "ab" * 32)
        error(s, b, 404, e.TX_NOT_FOUND)

    run(world, body)


def test_wait_commit_times_out_to_pending(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        t = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1),)))
        s, b = await h.post("/v1/tx", {"tx": t.to_bytes().hex()}, query="wait=commit&timeout=1")
        assert s == 202 and b["status"] == "pending"
        assert not h.app[__import__("node.api.app").api.app.CTX_KEY].hub.waiters  # the waiter was removed

    run(world, body, auto_commit=False)


def test_submit_refusals(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        t = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1),)))
        raw = bytearray(t.to_bytes())
        raw[-1] ^= 1  # corrupt the signature
        s, b = await h.post("/v1/tx", {"tx": bytes(raw).hex()})
        error(s, b, 422, codes.BAD_SIGNATURE)
        assert b["details"]["tx_id"] == t.tx_id.hex()
        s, b = await h.post("/v1/tx", {"tx": "00ff"})
        assert s == 422 and 1 <= b["code"] <= 99  # well-formed JSON, but the transaction does not decode
        s, b = await h.post("/v1/tx", {"tx": "XYZ"})
        error(s, b, 400, e.INVALID_JSON)
        s, b = await h.post("/v1/tx", raw=b"{not json")
        error(s, b, 400, e.INVALID_JSON)
        s, b = await h.post("/v1/tx", raw=b"[1, 2.5]")
        error(s, b, 400, e.INVALID_JSON)
        s, b = await h.post("/v1/tx", raw=b"x", content_type="text/plain")
        error(s, b, 415, e.UNSUPPORTED_MEDIA_TYPE)
        s, b = await h.post("/v1/tx", raw=b"0" * (3 * 1024 * 1024))
        error(s, b, 413, e.BODY_TOO_LARGE)
        bad_body = body_to_json(t.body, operations=OPERATIONS)
        bad_body["operations"][0]["legs"][0]["amount"] = 1.5
        s, b = await h.post("/v1/tx/encode", {"body": bad_body})
        error(s, b, 422, codes.FLOAT_FORBIDDEN)

    run(world, body)


def test_batch_submit(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        txs = [new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, i + 1),))) for i in range(3)]
        s, b = await h.post("/v1/tx/batch", {"txs": [t.to_bytes().hex() for t in txs] + ["c1"]})
        assert s == 200 and [r["code"] for r in b["results"][:3]] == [0, 0, 0]
        assert b["results"][3]["tx_id"] is None and b["results"][3]["code"] != 0
        more = [new_tx(world, BOB, o.Transfer(BOB, "CASH-T", (o.TransferLeg(ALICE, 1),)))]
        s, b = await h.post("/v1/tx/batch", raw=msgpack.packb([t.to_bytes() for t in more]),
                            content_type="application/msgpack")
        assert s == 200 and b["results"][0]["tx_id"] == more[0].tx_id.hex()
        s, b = await h.post("/v1/tx/batch", {"txs": ["00"] * 300})
        error(s, b, 413, e.BATCH_TOO_LARGE)
        s, b = await h.post("/v1/tx/batch", {"txs": []})
        error(s, b, 400, e.INVALID_JSON)

    run(world, body)


def test_encode_matches_local_signing(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        t = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 3),)))
        s, b = await h.post("/v1/tx/encode", {"body": body_to_json(t.body, operations=OPERATIONS)})
        assert s == 200 and b["tx_id"] == t.tx_id.hex() and b["body"] == t.body_bytes.hex()
        assert b["signing_message"] == signing_message(CHAIN, t.body_bytes).hex() and b["tx"] is None
        sigs = [{"account": x.account, "public_key": x.public_key.hex(), "signature": x.signature.hex()}
                for x in t.signatures]
        s, b = await h.post("/v1/tx/encode", {"body": body_to_json(t.body, operations=OPERATIONS), "signatures": sigs})
        assert s == 200 and b["tx"] == t.to_bytes().hex()
        s, b = await h.post("/v1/tx/encode", {"body": {"version": 1}})
        assert s == 422 and b["code"] == codes.MISSING_FIELD

    run(world, body)


def test_dry_run_gives_the_code_of_the_real_attempt(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        too_much = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 10**9),)))
        s, b = await h.post("/v1/tx/dry-run", {"tx": too_much.to_bytes().hex()})
        assert s == 200 and b["allowed"] is False and b["code"] == codes.INSUFFICIENT_ACTIVE_BALANCE
        assert b["failed_op"] == 0 and b["name"] == "INSUFFICIENT_ACTIVE_BALANCE"
        s, real = await h.post("/v1/tx", {"tx": too_much.to_bytes().hex()}, query="wait=commit")
        assert real["receipt"]["code"] == b["code"]
        fine = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1),)))
        s, b = await h.post("/v1/tx/dry-run", {"tx": fine.to_bytes().hex()})
        assert s == 200 and b["allowed"] is True and b["code"] == 0
        s, b = await h.post("/v1/tx/dry-run", {"nonsense": 1})
        error(s, b, 400, e.INVALID_JSON)

    run(world, body)


# -- limits, CORS, internal errors -----------------------------------------------------------------------------------


def test_rate_limit(shared: MirrorWorld) -> None:
    config = ApiConfig(limits=ApiLimits(rate_per_second=1, rate_burst=3))

    async def body(h: ApiHarness) -> None:
        statuses = [(await h.get("/v1/status"))[0] for _ in range(4)]
        assert statuses[:3] == [200, 200, 200]
        async with h.client.get("/v1/status") as r:
            b = await r.json()
            error(r.status, b, 429, e.RATE_LIMITED)
            assert int(r.headers["Retry-After"]) >= 1
        s, _ = await h.get("/health")  # exempt
        assert s == 200

    run(shared, body, config)


def test_cors(shared: MirrorWorld) -> None:
    config = ApiConfig(cors_origins=("https://custody.example",))

    async def body(h: ApiHarness) -> None:
        async with h.client.get("/v1/status", headers={"Origin": "https://custody.example"}) as r:
            assert r.headers["Access-Control-Allow-Origin"] == "https://custody.example"
        async with h.client.get("/v1/status", headers={"Origin": "https://evil.example"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
        pre = {"Origin": "https://custody.example", "Access-Control-Request-Method": "GET"}
        async with h.client.options("/v1/accounts/x@y/balances", headers=pre) as r:
            assert r.status == 204 and "X-Ledger-Signature" in r.headers["Access-Control-Allow-Headers"]
        async with h.client.get("/nope", headers={"Origin": "https://custody.example"}) as r:
            assert r.status == 404 and r.headers["Access-Control-Allow-Origin"] == "https://custody.example"

    run(shared, body, config)


def test_unexpected_exception_is_a_stable_error_without_trace(shared: MirrorWorld,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    async def body(h: ApiHarness) -> None:
        def broken() -> dict[str, Any]:
            raise RuntimeError("secret internals")

        h.facade.status = broken  # type: ignore[method-assign]
        async with h.client.get("/v1/status") as r:
            text = await r.text()
            assert r.status == 503
        b = json.loads(text)
        assert b["code"] == e.INTERNAL_ERROR and "incident" in b["details"]
        assert "secret" not in text and "Traceback" not in text
        assert any(b["details"]["incident"] in rec.getMessage() for rec in caplog.records)

    run(shared, body)


def test_request_timeout(world: MirrorWorld) -> None:
    config = ApiConfig(limits=ApiLimits(request_timeout=0.3, wait_commit_default=0.1, wait_commit_max=0.2))

    async def body(h: ApiHarness) -> None:
        async def stuck(tx: Any) -> Any:
            await asyncio.sleep(5)

        h.facade.submit = stuck  # type: ignore[method-assign]
        t = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1),)))
        s, b = await h.post("/v1/tx", {"tx": t.to_bytes().hex()})
        error(s, b, 504, e.REQUEST_TIMEOUT)

    run(world, body, config)
