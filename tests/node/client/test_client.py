"""The client SDK against the real HTTP API (node/api) served in-process on 127.0.0.1, over a test node facade whose
blocks are real ledger blocks in a LevelDB store with real BLS commit certificates (tests/node/chain/test_statement.py).

Scenario 6 end to end through the SDK: a custodian places a hold on its client's units, releases it, places another,
fetches the client's custody statement, and anyone holding only the genesis document verifies it offline."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from consensus import bls
from consensus.messages import CommitCertificate, decode_block
from consensus.simulator import _secret_key, simulated_validator_set
from ledger import operations as o
from ledger.rules import DEFAULT_ENGINE, RuleEngine
from ledger.state_keys import balance_key
from ledger.store import LedgerStore
from ledger.transaction import SignedTransaction
from node.api.app import create_app
from node.api.auth import Authenticator
from node.api.auth import canonical_request as server_canonical_request
from node.api.context import ApiConfig
from node.api.facade import AdmissionView, BlockView, CommitNotice, HeadInfo, PeerView, ValidatorView
from node.chain.certified import cert_key
from node.chain.genesis import Genesis, genesis_hash, make_document, parse_genesis, validator_entry
from node.chain.protocol import OPERATIONS
from node.chain.statement import build_statement, verify_statement_bytes
from node.client import (
    AccountKey,
    ApiError,
    AsyncLedgerClient,
    ClientError,
    LedgerClient,
    TransactionFailed,
    builder,
    operation,
    statement_bytes,
    verify_certificate,
    verify_state_proof,
    verify_statement,
)
from node.client.wire import canonical_request, signed_headers
from tests.ledger.world import ADMIN, CHAIN, T0, key_for, pub
from tests.node.api.api_world import NODE
from tests.node.chain.test_statement import (
    AGENT,
    CUSTODIAN,
    DAVE,
    ISSUER,
    N_VALIDATORS,
    StoreChain,
)

BOB = "bob@bank-b"
EVE = "eve@bank-b"


def genesis_document() -> dict[str, Any]:
    """A genesis file (node/chain/genesis.py format) for the test world: its hash is the consensus chain id."""
    backend = bls.get_backend()
    validators = [
        validator_entry(f"v{i}", "consortium", bytes(key_for(f"node {i}").verify_key),
                        backend.public_key(_secret_key(i)), backend.pop_prove(_secret_key(i)), None)
        for i in range(N_VALIDATORS)
    ]
    members = [("consortium", "Consortium")] + [(m, m.upper()) for m in ("bank-a", "bank-b", "issuer-co", "custody-c")]
    accounts = [{"id": ADMIN, "keys": [pub(ADMIN).hex()], "threshold": 1, "roles": ["admin"], "custodian": None}]
    return make_document(CHAIN, T0, members, validators, accounts)


_K = pub("x").hex()
# One instance of every operation kind (fields in the JSON form), used by the SDK and CLI tests.
OP_SAMPLES: dict[str, dict[str, Any]] = {
    "register_member": {"member": "bank-q", "name": "Bank Q"},
    "register_account": {"account": "new@bank-a", "keys": [_K], "threshold": 1, "custodian": None},
    "rotate_keys": {"keys": [_K], "threshold": 1},
    "grant_role": {"account": BOB, "role": "issuer"},
    "revoke_role": {"account": BOB, "role": "issuer"},
    "set_custodian": {"account": BOB, "custodian": CUSTODIAN},
    "define_asset": {"asset": "NEW-1", "decimals": 2, "supply_cap": 10**6, "name": "New", "isin": "",
                     "documents": [{"name": "Prospectus", "sha256": "ab" * 32}], "agents": [AGENT],
                     "rules": [{"name": "countries", "params": {"allow": "CN,HK"}}]},
    "set_asset_rules": {"asset": "BOND-A", "rules": []},
    "set_asset_agents": {"asset": "BOND-A", "agents": [AGENT]},
    "issue": {"asset": "BOND-A", "recipient": BOB, "amount": 1},
    "transfer": {"asset": "BOND-A", "legs": [{"recipient": BOB, "amount": 2**64 - 1}]},
    "redeem": {"asset": "BOND-A", "amount": 1},
    "create_hold": {"hold": "h-1", "asset": "BOND-A", "sender": DAVE, "recipient": BOB, "notary": CUSTODIAN,
                    "amount": 1, "expires_at": T0 + 5},
    "execute_hold": {"hold": "h-1"},
    "release_hold": {"hold": "h-1"},
    "expire_hold": {"hold": "h-1"},
    "freeze_account": {"account": BOB, "reason": "court order"},
    "unfreeze_account": {"account": BOB, "reason": "lifted"},
    "freeze_amount": {"asset": "BOND-A", "account": BOB, "amount": 3, "reason": "court order"},
    "unfreeze_amount": {"asset": "BOND-A", "account": BOB, "amount": 3, "reason": "lifted"},
    "pause_asset": {"asset": "BOND-A", "reason": "audit"},
    "unpause_asset": {"asset": "BOND-A", "reason": "done"},
    "forced_transfer": {"asset": "BOND-A", "sender": BOB, "recipient": EVE, "amount": 1, "from_frozen": True,
                        "reason": "court"},
    "recover_keys": {"account": BOB, "keys": [_K], "threshold": 1, "reason": "lost"},
    "migrate_account": {"account": BOB, "new_account": EVE, "reason": "lost"},
    "settle": {"reference": "dvp-1", "expiry_height": 99, "legs": [
        {"asset": "BOND-A", "sender": DAVE, "recipient": BOB, "amount": 1},
        {"asset": "CASH-T", "sender": BOB, "recipient": DAVE, "amount": 1}]},
    "propose": {"proposal_id": "p-1", "expiry_height": 500, "actions": [
        {"kind": "add_member", "member": "bank-q", "name": "Bank Q", "voter": True},
        {"kind": "add_validator", "node_id": "node-9", "member": "bank-q", "identity_key": _K,
         "bls_key": "a" * 96, "bls_pop": "b" * 192, "address": "127.0.0.1:7109", "power": 1},
        {"kind": "remove_validator", "node_id": "node-0"},
        {"kind": "rotate_validator_keys", "node_id": "node-1", "identity_key": _K, "bls_key": "c" * 96,
         "bls_pop": "d" * 192},
        {"kind": "set_role", "account": BOB, "role": "governor", "granted": True},
        {"kind": "set_approval_threshold", "threshold": 3},
        {"kind": "set_chain_params", "max_block_txs": 1000, "max_block_bytes": 1_000_000, "base_timeout_ms": 1500,
         "max_backoff_exponent": 5, "max_clock_drift_ms": 5000, "empty_block_interval_ms": 300}]},
    "approve": {"proposal_id": "p-1"},
    "cancel_proposal": {"proposal_id": "p-1"},
    "set_claim": {"account": BOB, "country": "HK", "level": 2, "expires_at": T0 + 10**7},
    "revoke_claim": {"account": BOB},
    "announce_action": {"action": "coupon-1", "action_kind": 1, "asset": "BOND-A", "pay_asset": "CASH-T",
                        "payer": ISSUER, "remainder_account": ISSUER, "record_height": 40, "rate_num": 3,
                        "rate_den": 100},
    "pay_action": {"action": "coupon-1", "max_holders": 64},
}


def account_key(account: str) -> AccountKey:
    return AccountKey(account, key_for(account))


class ChainFacade:
    """NodeFacade over a StoreChain: submitted transactions go into the next block, produced on the server's event
    loop right after the submission; commit listeners are called like the runtime calls them."""

    def __init__(self, chain: StoreChain) -> None:
        self.w = chain
        self.pending: list[SignedTransaction] = []
        self.listeners: list[Callable[[CommitNotice], None]] = []
        self.vs = simulated_validator_set(N_VALIDATORS)

    @property
    def chain_id(self) -> str:
        return CHAIN

    @property
    def node_id(self) -> str:
        return NODE

    @property
    def store(self) -> LedgerStore:
        return self.w.store

    @property
    def engine(self) -> RuleEngine:
        return DEFAULT_ENGINE

    def head(self) -> HeadInfo:
        head = self.w.store.head()
        assert head is not None
        return HeadInfo(head.height, head.block_hash, head.state_root, self.w.time)

    async def submit(self, tx: SignedTransaction) -> AdmissionView:
        if any(p.tx_id == tx.tx_id for p in self.pending) or self.w.store.get_tx(tx.tx_id) is not None:
            return AdmissionView(tx.tx_id, 0, duplicate=True)
        self.pending.append(tx)
        if len(self.pending) == 1:
            asyncio.get_running_loop().call_later(0.02, self.produce)
        return AdmissionView(tx.tx_id, 0)

    def produce(self) -> None:
        txs, self.pending = self.pending, []
        out = self.w.apply_block(list(txs))
        head = self.w.store.head()
        assert head is not None
        committed = CommitNotice(out.height, head.block_hash, self.w.time, out.state_root, out.receipts)
        for listener in list(self.listeners):
            listener(committed)

    def tx_pending(self, tx_id: bytes) -> bool:
        return any(p.tx_id == tx_id for p in self.pending)

    def block(self, height: int) -> BlockView | None:
        raw = self.w.store.get_block(height)
        if raw is None:
            return None
        block = decode_block(raw)
        h = block.header
        header = {"chain_id": h.chain_id.hex(), "epoch": h.epoch, "round": h.round, "height": h.height,
                  "parent_id": h.parent_id.hex(), "proposer": h.proposer, "payload_hash": h.payload_hash.hex()}
        root = self.w.store.state_root_at(height)
        assert root is not None
        tx_ids = self.w.tx_ids.get(height, ())
        return BlockView(height, block.id, T0 + height, root, tx_ids, header, self.w.store.get_extra(cert_key(height)))

    def validators(self) -> tuple[int, tuple[ValidatorView, ...]]:
        return 0, tuple(ValidatorView(i, v.id.decode(), v.public_key, v.power) for i, v in enumerate(self.vs.validators))

    def peers(self) -> tuple[PeerView, ...]:
        return ()

    def status(self) -> dict[str, Any]:
        return {"role": "test"}

    def add_commit_listener(self, listener: Callable[[CommitNotice], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def metrics_text(self) -> str:
        return ""

    def statement(self, account_id: str, height: int) -> dict[str, Any]:
        raw = self.w.store.get_extra(cert_key(height))
        if raw is None:
            raise KeyError(height)
        return build_statement(self.w.store, account_id, height, chain_id=CHAIN,
                               certificate=CommitCertificate.decode(raw), validator_set=self.vs)


class ServerThread:
    """The API app on 127.0.0.1 (ephemeral port) in a thread with its own event loop."""

    def __init__(self, facade: ChainFacade, config: ApiConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(facade, config)
        self.runner = web.AppRunner(self.app)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def start(self) -> str:
        self.thread.start()
        assert self.ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class ClientWorld:
    def __init__(self, path: str) -> None:
        self.document = genesis_document()
        self.genesis: Genesis = parse_genesis(self.document)
        w = StoreChain(path, consensus_chain_id=genesis_hash(self.document))
        w.account(ISSUER, roles=("issuer",))
        w.account(AGENT, roles=("agent",))
        w.account(CUSTODIAN, roles=("custodian",))
        w.account(DAVE, custodian=CUSTODIAN)
        w.account(BOB)
        self.bob_height = w.ledger.height
        w.account(EVE)
        w.account("auditor@consortium", roles=("auditor",))
        w.asset("BOND-A", ISSUER, cap=100_000_000, agents=(AGENT,))
        w.asset("CASH-T", ISSUER, cap=10**15, agents=(AGENT,))
        w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", DAVE, 5_000), o.Issue(ISSUER, "CASH-T", BOB, 10_000))
        self.chain = w
        self.facade = ChainFacade(w)
        self.server = ServerThread(self.facade, ApiConfig())
        self.url = self.server.start()

    def client(self, account: str | None = None) -> LedgerClient:
        return LedgerClient(self.url, None if account is None else account_key(account), timeout=20)

    def close(self) -> None:
        self.server.stop()
        self.chain.store.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientWorld]:
    w = ClientWorld(str(tmp_path_factory.mktemp("client") / "db"))
    yield w
    w.close()


# ---------------------------------------------------------------------------------------------------------------
# Read signing (no server needed)


def test_read_signing_matches_the_server_reference() -> None:
    key = account_key(CUSTODIAN)
    cases = [
        ("GET", "/v1/accounts/client-d@bank-a/balances", "asset=BOND-A", b""),
        ("GET", "/v1/accounts/client-d%40bank-a/balances", "limit=50&asset=BOND-A&cursor=", b""),
        ("POST", "/v1/tx/dry-run", "", b'{"signers":[]}'),
        ("GET", "/v1/events", "kind=issued,transferred&from_height=3&account=a%2Bb@x&x=%20+", b""),
    ]
    for method, path, query, body in cases:
        mine = canonical_request("testnet", "node-0", method, path, query, body, "1764064800", "4f1c2a9e0b7d6e35",
                                 key.account, key.public_key.hex())
        theirs = server_canonical_request("testnet", "node-0", method, path.replace("%40", "@"), query, body,
                                          "1764064800", "4f1c2a9e0b7d6e35", key.account, key.public_key.hex())
        assert mine == theirs
    lines = canonical_request("testnet", "node-3", "get", "/v1/x", "b=2&a=1", b"", "1", "n" * 8, "a@b",
                              "00").split(b"\n")
    assert lines[:6] == [b"CONSORTIUM-LEDGER/READ/v2", b"testnet", b"node-3", b"GET", b"/v1/x", b"a=1&b=2"]


def test_signed_headers_pass_the_server_authenticator(world: ClientWorld) -> None:
    key = account_key(DAVE)
    now = 1_800_000_000
    auth = Authenticator(CHAIN, NODE, world.chain.store, clock=lambda: now)
    headers = signed_headers(key, chain_id=CHAIN, node_id=NODE, method="GET",
                             path="/v1/accounts/dave@bank-a/balances", raw_query="asset=BOND-A", body=b"",
                             timestamp=now)
    who = auth.authenticate("GET", "/v1/accounts/dave@bank-a/balances", "asset=BOND-A", b"", headers)
    assert who is not None and who.account == DAVE
    with pytest.raises(Exception) as replay:
        auth.authenticate("GET", "/v1/accounts/dave@bank-a/balances", "asset=BOND-A", b"", headers)
    assert replay.value.code == 3204  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------------
# Scenario 6 through the API


def test_custody_statement_end_to_end(world: ClientWorld) -> None:
    with world.client(CUSTODIAN) as custodian:
        hold = operation("create_hold", actor=CUSTODIAN, hold="pending-trade-1", asset="BOND-A", sender=DAVE,
                         recipient=BOB, notary=CUSTODIAN, amount=1_000, expires_at=T0 + 10**6)
        placed = custodian.execute(hold)
        assert placed.status == "committed" and placed.ok
        held_height = placed.receipt["height"]  # type: ignore[index]
        custodian.execute(operation("release_hold", actor=CUSTODIAN, hold="pending-trade-1"))
        custodian.execute(operation("create_hold", actor=CUSTODIAN, hold="pending-trade-2", asset="BOND-A",
                                    sender=DAVE, recipient=BOB, notary=CUSTODIAN, amount=250,
                                    expires_at=T0 + 10**6))
        doc = custodian.statement(DAVE)
        at_hold = custodian.statement(DAVE, held_height)
    # Anyone with only the genesis file checks it, offline.
    verdict = verify_statement(doc, world.genesis)
    assert verdict.ok, verdict
    bond = doc["holdings"][0]
    assert (bond["asset"], bond["available"], bond["held"], bond["frozen"]) == ("BOND-A", 4_750, 250, 0)
    assert [h["hold"] for h in bond["holds"]] == ["pending-trade-2"]
    assert verify_statement(at_hold, world.genesis).ok
    assert at_hold["holdings"][0]["held"] == 1_000
    assert verify_statement_bytes(statement_bytes(doc), world.genesis).ok
    forged = copy.deepcopy(doc)
    forged["holdings"][0]["available"] = 1_000_000
    assert verify_statement(forged, world.genesis).code == "statement_value_mismatch"
    forged = copy.deepcopy(doc)
    forged["proofs"][0]["proof"]["depth"] += 1
    assert not verify_statement(forged, world.genesis).ok


def test_private_reads_need_a_visible_signer(world: ClientWorld) -> None:
    with world.client() as anonymous:
        with pytest.raises(ApiError) as e:
            anonymous.balances(DAVE)
        assert (e.value.status, e.value.code, e.value.name) == (401, 3200, "AUTH_REQUIRED")
        assert anonymous.status()["chain_id"] == CHAIN  # public
    with world.client(EVE) as eve:
        with pytest.raises(ApiError) as e:
            eve.balances(DAVE)
        assert (e.value.status, e.value.code) == (403, 3206)
        with pytest.raises(ApiError) as e:
            eve.statement(DAVE)
        assert e.value.code == 3206
    stranger = LedgerClient(world.url, AccountKey.generate(EVE), timeout=20)
    with stranger, pytest.raises(ApiError) as e:
        stranger.balances(EVE)
    assert e.value.code == 3205
    with world.client(DAVE) as dave, world.client(CUSTODIAN) as custodian, world.client("auditor@consortium") as aud:
        mine = dave.balances(DAVE)
        assert custodian.balances(DAVE) == mine == aud.balances(DAVE)


def test_refusals_are_typed(world: ClientWorld) -> None:
    with world.client(BOB) as bob:
        too_much = operation("transfer", actor=BOB, asset="CASH-T", legs=[{"recipient": EVE, "amount": 10**9}])
        with pytest.raises(TransactionFailed) as e:
            bob.execute(too_much)
        assert e.value.code >= 200 and e.value.receipt["code"] == e.value.code
        sent = bob.submit(builder.sign(bob.body([too_much]), [account_key(BOB)]), check=False)
        assert sent.status == "committed" and not sent.ok
        again = bob.execute(too_much, check=False)
        assert again.status == "committed" and again.receipt["code"] == e.value.code  # type: ignore[index]
        with pytest.raises(ApiError) as e:
            bob.submit(b"\x92\x01")
        assert e.value.status == 422 and 1 <= e.value.code < 100
        quick = bob.execute(operation("transfer", actor=BOB, asset="CASH-T", legs=[{"recipient": EVE, "amount": 5}]),
                            wait="none")
        assert quick.status in ("pending", "committed")
        with pytest.raises(ApiError) as e:
            bob.tx("00" * 32)
        assert e.value.code == 3110
    unreachable = LedgerClient("http://127.0.0.1:9", timeout=2)
    with unreachable, pytest.raises(ClientError) as e:
        unreachable.status()
    assert e.value.code == "connection_failed"


def test_every_operation_kind_encodes_like_the_node(world: ClientWorld) -> None:
    """Each operation kind, built by the SDK, gives the same body bytes as the node's encode endpoint (in bodies of
    at most 32 operations, the ledger's limit)."""
    samples = OP_SAMPLES
    assert set(samples) == set(builder.OPERATION_KINDS)
    ops = [operation(kind, actor=AGENT, **fields) for kind, fields in samples.items()]
    from ledger.jsonform import body_to_json
    from ledger.transaction import encode_body

    signers: set[str] = set()
    for chunk in (ops[:20], ops[20:]):
        body = builder.make_body(chunk, chain_id=CHAIN, expiry_height=50, nonce=7)
        signers.update(body.signers)
        with world.client() as anyone:
            answer = anyone.encode(body_to_json(body, operations=OPERATIONS))
        assert answer["body"] == encode_body(body, operations=OPERATIONS).hex()
    assert signers == {AGENT, BOB, DAVE, ISSUER}  # settlement legs' senders and the payer must sign too
    with pytest.raises(ClientError) as e:
        operation("issue", actor=AGENT, asset="BOND-A", recipient=BOB, amount=1.5)
    assert e.value.details["ledger_code"] > 0


def test_proofs_and_certificates_verify_offline(world: ClientWorld) -> None:
    with world.client(DAVE) as dave:
        height = dave.head_height()
        key = balance_key("BOND-A", DAVE).hex()
        p = dave.proof(key, height)
        block = dave.block(height)
    h, block_id, root = verify_certificate(block["certificate"], world.genesis)
    assert (h, root.hex(), block_id.hex()) == (height, p["state_root"], block["block_hash"])
    assert verify_state_proof(root, key, p["value"], p["proof"])
    assert not verify_state_proof(root, key, "00" + p["value"][2:], p["proof"])
    forged = block["certificate"][:-4] + ("0000" if block["certificate"][-4:] != "0000" else "1111")
    with pytest.raises(ClientError) as e:
        verify_certificate(forged, world.genesis)
    assert e.value.code == "certificate_invalid"


def test_dry_run(world: ClientWorld) -> None:
    with world.client(DAVE) as dave:
        over = operation("transfer", actor=DAVE, asset="BOND-A", legs=[{"recipient": BOB, "amount": 10**9}])
        unsigned = dave.dry_run(ops=[over])
        signed = dave.dry_run(builder.sign(dave.body([over]), [account_key(DAVE)]))
    assert unsigned["allowed"] is False and unsigned["code"] == signed["code"] >= 200


def test_event_stream_is_gap_free_and_resumable(world: ClientWorld) -> None:
    async def run() -> tuple[list[Any], list[Any]]:
        async with AsyncLedgerClient(world.url, account_key("auditor@consortium")) as auditor:
            first: list[Any] = []
            stream = auditor.events(accounts=[BOB], from_height=1, checkpoints=True)
            async for item in stream:
                first.append(item)
                if item.type == "block" and item.height >= 10:
                    break
            await stream.aclose()
            rest: list[Any] = []
            async with AsyncLedgerClient(world.url, account_key(BOB)) as bob:
                tx = await bob.execute(operation("transfer", actor=BOB, asset="CASH-T",
                                                 legs=[{"recipient": EVE, "amount": 7}]))
                height = tx.receipt["height"]  # type: ignore[index]
            stream = auditor.events(accounts=[BOB], kinds=["transferred"], from_height=11)
            async for item in stream:
                rest.append(item)
                if item.height >= height:
                    break
            await stream.aclose()
            return first, rest

    first, rest = asyncio.run(run())
    assert [i.height for i in first if i.type == "block"] == list(range(1, 11))
    registered = [i for i in first if i.type == "event" and i.message["event"]["kind"] == "account_registered"]
    assert registered and registered[0].height == world.bob_height <= 10
    assert rest and rest[-1].message["event"]["kind"] == "transferred"
    assert all(i.type == "event" for i in rest)
    heights = [i.height for i in rest]
    assert heights == sorted(heights)


def test_event_stream_resumes_after_a_slow_consumer_disconnect_without_gaps_or_repeats() -> None:
    """A scripted node: the first connection is cut (slow consumer) in the middle of height 5; the client reconnects
    from resume_from=5 and skips the two events of height 5 it already yielded."""
    from aiohttp.test_utils import TestServer

    connections: list[dict[str, str]] = []

    def ev(height: int, n: int) -> dict[str, Any]:
        return {"type": "event", "height": height, "event": {"kind": "transferred", "n": n}}

    async def status(_request: web.Request) -> web.Response:
        return web.json_response({"chain_id": CHAIN, "node_id": NODE, "height": 6})

    async def events(request: web.Request) -> web.WebSocketResponse:
        connections.append(dict(request.query))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if len(connections) == 1:
            for m in (ev(4, 0), {"type": "block", "height": 4}, {"type": "heartbeat"}, ev(5, 1), ev(5, 2)):
                await ws.send_json(m)
            await ws.send_json({"type": "error", "code": 3130, "message": "slow", "resume_from": 5})
        else:
            for m in (ev(5, 1), ev(5, 2), ev(5, 3), {"type": "block", "height": 5}, ev(6, 4),
                      {"type": "block", "height": 6}):
                await ws.send_json(m)
            await ws.send_json({"type": "error", "code": 3132, "message": "shutdown", "resume_from": 7})
        await ws.close()
        return ws

    async def run() -> list[int]:
        app = web.Application()
        app.router.add_get("/v1/status", status)
        app.router.add_get("/v1/events", events)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            seen: list[int] = []
            async with AsyncLedgerClient(str(server.make_url("")), account_key(BOB)) as client:
                stream = client.events(accounts=[BOB, EVE], from_height=4)
                async for item in stream:
                    seen.append(item.message["event"]["n"])
                    if item.height == 6:
                        break
                await stream.aclose()
            return seen
        finally:
            await server.close()

    assert asyncio.run(run()) == [0, 1, 2, 3, 4]
    assert connections[0]["from_height"] == "4" and connections[0]["account"] == f"{BOB},{EVE}"
    assert connections[1]["from_height"] == "5"
