"""The runtime in one process: a single-validator dev chain commits signed transactions, survives a restart, feeds
subscribers (resumable), executes forks speculatively, and two nodes with different genesis files refuse each other. Four in-process
validators: a commit far above a node's head is caught up by block sync, never a halt. One validator claiming an
absurd height does not pull the others out of consensus. A failed replica action
restarts consensus; the API batch route admits through one mempool round."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from consensus.bls import get_backend
from consensus.certificates import SignatureVerifier
from consensus.messages import Block, BlockHeader, CommitCertificate, QuorumCert, payload_hash
from ledger import codes
from ledger.events import decode_receipt
from ledger.operations import CreateHold, Transfer, TransferLeg
from ledger.state import decode_value
from ledger.state_keys import balance_key
from ledger.store import LedgerStore
from ledger.transaction import TxBody, decode_transaction, sign_transaction
from ledger.transition import BLOCK_EVENTS_TX_ID
from node.chain.application import Application, PendingExecution
from node.chain.certified import block_events_key, bootstrap_store
from node.chain.commit_feed import CommitFeed, SubscriptionClosed
from node.chain.epochs import Epochs
from node.chain.execution import Executor
from node.chain.genesis import ChainParams, genesis_state, load_genesis, write_genesis
from node.chain.mempool import MempoolLimits
from node.chain.payload import decode_payload, encode_payload
from node.chain.protocol import OPERATIONS, node_protocol
from node.chain.sigverify import Ed25519Verifier
from node.errors import NodeError
from node.tools.localnet import CASH_ASSET, generate_network, load_accounts
from node.validator.config import load_config
from node.validator.keyfile import load_keys
from node.validator.node import ValidatorNode

PARAMS = ChainParams(base_timeout_ms=1000, empty_block_interval_ms=50)


@pytest.fixture(scope="module")
def sig_verifier():
    v = Ed25519Verifier(workers=0)
    yield v
    v.close()


def _dev(tmp_path, seed: bytes = b"dev"):
    layout = generate_network(str(tmp_path), 1, chain_id="dev-test", seed=seed, params=PARAMS, users=4)
    cfg = load_config(layout.config_paths[0])
    return layout, cfg, load_genesis(cfg.genesis_file), load_keys(cfg.keys_file)


def _transfers(chain_id: str, accounts, count: int, start_nonce: int = 0) -> list[bytes]:
    users = sorted(a for a in accounts if a.startswith("user-"))
    out = []
    for k in range(count):
        s, r = users[k % len(users)], users[(k + 1) % len(users)]
        body = TxBody(1, chain_id, (s,), start_nonce + k, 5000, (Transfer(s, CASH_ASSET, (TransferLeg(r, 3),)),))
        out.append(sign_transaction(body, [(s, accounts[s])], operations=OPERATIONS).to_bytes())
    return out


def _balance(store: LedgerStore, account: str) -> int:
    raw = store.get_state(balance_key(CASH_ASSET, account))
    return decode_value(balance_key(CASH_ASSET, account), raw).available


def test_dev_chain_commits_restarts_and_streams(tmp_path, sig_verifier) -> None:
    layout, cfg, genesis, keys = _dev(tmp_path)
    accounts = load_accounts(layout.accounts_path)

    async def first_run() -> tuple[int, bytes, list[int]]:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=sig_verifier, never_signed=True)
        await node.start()
        sub = node.app.feed.subscribe()
        txs = _transfers(genesis.chain_id, accounts, 40)
        answers = [a for batch in await asyncio.gather(*(node.submit_many([tx]) for tx in txs)) for a in batch]
        assert all(a.code == 0 for a in answers)
        (again,) = await node.submit_many([txs[0]])
        assert again.code != 0 and again.tx_id == answers[0].tx_id  # duplicate: already pending or committed
        seen: set[bytes] = set()
        heights = []
        while len(seen) < 40:
            block = await asyncio.wait_for(sub.next(), 20)
            heights.append(block.height)
            seen.update(r.tx_id for r in block.receipts if r.code == 0)
        assert heights == list(range(heights[0], heights[0] + len(heights)))  # no gaps
        assert seen == {a.tx_id for a in answers}
        users = sorted(a for a in accounts if a.startswith("user-"))
        # Every user sent 10 x 3 and received 10 x 3 units: balances unchanged, supply conserved.
        assert all(_balance(node.app.store, u) == 1_000_000_00 for u in users)
        assert (await node.submit_many([txs[1]]))[0].code != 0  # committed: a replay is refused
        await node.wait_for_height(node.app.head.height + 2, 10)
        head = node.app.head
        status = node.view.status()
        assert status["mode"] == "consensus" and status["committed_txs"] == 40 and status["fatal"] is None
        text = node.view.metrics_text()
        assert "ledger_height" in text
        exported = dict(line.split(" ") for line in text.splitlines() if line.startswith("ledger_sigverify_"))
        assert float(exported["ledger_sigverify_items"]) >= 40  # every admitted signature went through it
        assert float(exported["ledger_sigverify_tasks"]) == 0  # this verifier has no pool (workers=0): no tasks
        await node.stop()
        return head.height, head.state_root, heights

    height, root, heights = asyncio.run(first_run())

    async def second_run() -> None:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=sig_verifier, never_signed=True)
        assert node.app.head.height == height and node.app.head.state_root == root
        safety, _ = node.safety_store.load()
        assert safety is not None and safety.highest_vote_round > 0
        # Resume the event stream from an old height: the store answers, in order.
        sub = node.app.feed.subscribe(from_height=heights[0])
        old = await asyncio.wait_for(sub.next(), 5)
        assert old.height == heights[0] and old.certificate is not None
        await node.start()
        assert await node.wait_for_height(height + 3, 20)
        assert node.app.store.state_root_at(height) == root
        txs = _transfers(genesis.chain_id, accounts, 5, start_nonce=1000)
        assert all(a.code == 0 for a in await node.submit_many(txs))
        assert await node.wait_for_height(node.app.head.height + 3, 20)
        assert len(node.app.mempool) == 0
        await node.stop()

    asyncio.run(second_run())


def test_slow_subscriber_is_closed_with_a_resume_height(tmp_path, sig_verifier) -> None:
    _, cfg, genesis, keys = _dev(tmp_path, b"slow")

    async def run() -> None:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=sig_verifier, never_signed=True)
        await node.start()
        sub = node.app.feed.subscribe(max_queue=2)
        assert await node.wait_for_height(6, 20)
        with pytest.raises(SubscriptionClosed) as info:
            for _ in range(10):
                await asyncio.wait_for(sub.next(), 5)
        assert info.value.reason == "slow_consumer" and info.value.resume_height >= 1
        await node.stop()

    asyncio.run(run())


def _child(parent_id: bytes, parent_round: int, parent_root: bytes, height: int, chain: bytes, time_ms: int,
           txs: list[bytes], round_: int | None = None) -> Block:
    payload = encode_payload(time_ms, txs)
    qc = QuorumCert(0, parent_round, parent_id, parent_root, b"\x80", bytes(96)) if parent_round else \
        QuorumCert(0, 0, parent_id, parent_root, b"", b"")
    header = BlockHeader(chain, 0, round_ or parent_round + 1, height, parent_id, 0, payload_hash(payload), qc)
    return Block(header, payload)


class _NothingKnown:
    """No transaction decoded or verified ahead: execution decodes and verifies every one itself."""

    def lookup(self, raw: bytes) -> None:
        return None

    def is_verified(self, raw: bytes) -> bool:
        return False


def test_executor_runs_forks_on_overlays_and_discards_the_loser(tmp_path) -> None:
    layout, _cfg, genesis, _ = _dev(tmp_path, b"forks")
    accounts = load_accounts(layout.accounts_path)
    store = LedgerStore.open(os.path.join(str(tmp_path), "store"))
    try:
        state = genesis_state(genesis)
        bootstrap_store(store, genesis, state)
        ex = Executor(store, genesis, node_protocol(), Epochs(store, genesis, get_backend()), _NothingKnown())
        chain = genesis.consensus_chain_id
        g, t0 = genesis.block(), genesis.genesis_time * 1000
        txs = _transfers(genesis.chain_id, accounts, 4)
        a = _child(g.id, 0, state.state_root, 1, chain, t0 + 1000, txs[:2], round_=1)
        b = _child(g.id, 0, state.state_root, 1, chain, t0 + 1000, txs[2:], round_=2)
        ea, eb = ex.execute(a, state.state_root), ex.execute(b, state.state_root)
        assert ea is not None and eb is not None and ea.state_root != eb.state_root
        # A child of the uncommitted block A sees A's writes (its transactions are replays there).
        c = _child(a.id, 1, ea.state_root, 2, chain, t0 + 2000, txs[:1])
        ec = ex.execute(c, ea.state_root)
        assert ec is not None and ec.receipts[0].code != 0
        # Time going backwards is refused; so is a wrong parent root.
        assert ex.execute(_child(a.id, 1, ea.state_root, 2, chain, t0, [], round_=3), ea.state_root) is None
        assert ex.execute(_child(a.id, 1, ea.state_root, 2, chain, t0 + 5, [], round_=4), eb.state_root) is None
        d = _child(c.id, 2, ec.state_root, 3, chain, t0 + 3000, [])
        cert_a = CommitCertificate((a.header, c.header, d.header), QuorumCert(0, 3, d.id, bytes(32), b"\x80",
                                                                            bytes(96)))
        committed = ex.write(ex.finalize(a, cert_a))
        assert committed.height == 1 and store.head().state_root == ea.state_root
        assert b.id not in ex.executed and c.id in ex.executed
        assert store.get_tx(ea.executed[0][0]) is not None and store.get_tx(eb.executed[0][0]) is None
        # A certificate whose root differs from this node's execution halts the node.
        wrong_root_child = _child(c.id, 2, bytes(32), 3, chain, t0 + 3000, [])
        bad = CommitCertificate((c.header, wrong_root_child.header), QuorumCert(0, 3, wrong_root_child.id, bytes(32),
                                                                               b"\x80", bytes(96)))
        with pytest.raises(NodeError) as info:
            ex.finalize(c, bad)
        assert info.value.code == "state_root_mismatch"
    finally:
        store.close()


def _transfer(chain_id: str, accounts, sender: str, nonce: int, expiry: int) -> bytes:
    users = sorted(a for a in accounts if a.startswith("user-"))
    recipient = next(u for u in users if u != sender)
    body = TxBody(1, chain_id, (sender,), nonce, expiry, (Transfer(sender, CASH_ASSET, (TransferLeg(recipient, 3),)),))
    return sign_transaction(body, [(sender, accounts[sender])], operations=OPERATIONS).to_bytes()


@contextlib.contextmanager
def _bare_executor(tmp_path, seed: bytes) -> Iterator[tuple[Executor, Any, Any, dict, LedgerStore]]:
    """An Executor over a fresh store at a dev chain's genesis: (executor, genesis, genesis state, accounts, store)."""
    layout, _cfg, genesis, _ = _dev(tmp_path, seed)
    accounts = load_accounts(layout.accounts_path)
    store = LedgerStore.open(os.path.join(str(tmp_path), "store"))
    try:
        state = genesis_state(genesis)
        bootstrap_store(store, genesis, state)
        yield (Executor(store, genesis, node_protocol(), Epochs(store, genesis, get_backend()), _NothingKnown()),
               genesis, state, accounts, store)
    finally:
        store.close()


def test_a_transaction_rejected_for_good_in_a_block_gets_a_stored_receipt(tmp_path) -> None:
    """An expired transaction in a block gets its TX_EXPIRED receipt stored (GET /v1/tx answers with it); an id
    that was executed before keeps its first receipt when a later block carries it again, expired."""
    with _bare_executor(tmp_path, b"rejections") as (ex, genesis, state, accounts, store):
        chain, g, t0 = genesis.consensus_chain_id, genesis.block(), genesis.genesis_time * 1000
        users = sorted(a for a in accounts if a.startswith("user-"))
        ok_once = _transfer(genesis.chain_id, accounts, users[0], 1, expiry=1)
        expired = _transfer(genesis.chain_id, accounts, users[1], 1, expiry=0)
        a = _child(g.id, 0, state.state_root, 1, chain, t0 + 1000, [ok_once, expired, expired])
        ea = ex.execute(a, state.state_root)
        assert ea is not None and [r.code for r in ea.receipts] == [0, codes.TX_EXPIRED, codes.TX_EXPIRED]
        b = _child(a.id, 1, ea.state_root, 2, chain, t0 + 2000, [ok_once])
        eb = ex.execute(b, ea.state_root)
        assert eb is not None and [r.code for r in eb.receipts] == [codes.TX_EXPIRED]
        c = _child(b.id, 2, eb.state_root, 3, chain, t0 + 3000, [])
        d = _child(c.id, 3, bytes(32), 4, chain, t0 + 4000, [])
        ex.write(ex.finalize(a, CommitCertificate((a.header, b.header, c.header),
                                                  QuorumCert(0, 3, c.id, bytes(32), b"\x80", bytes(96)))))
        ex.write(ex.finalize(b, CommitCertificate((b.header, c.header, d.header),
                                                  QuorumCert(0, 4, d.id, bytes(32), b"\x80", bytes(96)))))
        tx_ok, tx_expired = (decode_transaction(x, operations=OPERATIONS).tx_id for x in (ok_once, expired))
        stored = decode_receipt(store.get_receipt(tx_expired), operations=OPERATIONS)
        assert (stored.code, stored.height, stored.index, stored.failed_op) == (codes.TX_EXPIRED, 1, 1, None)
        assert store.get_tx(tx_expired) == (1, 1, expired)
        first = decode_receipt(store.get_receipt(tx_ok), operations=OPERATIONS)
        assert (first.code, first.height) == (0, 1) and store.get_tx(tx_ok) == (1, 0, ok_once)


def test_a_block_that_releases_expired_holds_stores_and_replays_its_events(tmp_path) -> None:
    """The block whose time reaches a hold's expiry releases it; its hold_expired event is stored with the block and
    comes back, first, when the commit feed rebuilds the block from the store (replay of the event stream)."""
    layout, _cfg, genesis, _ = _dev(tmp_path, b"hold-expiry")
    accounts = load_accounts(layout.accounts_path)
    store = LedgerStore.open(os.path.join(str(tmp_path), "store"))
    try:
        state = genesis_state(genesis)
        bootstrap_store(store, genesis, state)
        ex = Executor(store, genesis, node_protocol(), Epochs(store, genesis, get_backend()), _NothingKnown())
        chain, g, t0 = genesis.consensus_chain_id, genesis.block(), genesis.genesis_time * 1000
        u0, u1 = sorted(a for a in accounts if a.startswith("user-"))[:2]
        body = TxBody(1, genesis.chain_id, (u0,), 1, 100,
                      (CreateHold(u0, "h-1", CASH_ASSET, u0, u1, u1, 7, genesis.genesis_time + 2),))
        create = sign_transaction(body, [(u0, accounts[u0])], operations=OPERATIONS).to_bytes()
        a = _child(g.id, 0, state.state_root, 1, chain, t0 + 1000, [create])
        ea = ex.execute(a, state.state_root)
        assert ea is not None and [r.code for r in ea.receipts] == [0] and ea.block_events == ()
        b = _child(a.id, 1, ea.state_root, 2, chain, t0 + 2000, [])
        eb = ex.execute(b, ea.state_root)
        assert eb is not None and [ev.kind for ev in eb.block_events] == ["hold_expired"]
        c = _child(b.id, 2, eb.state_root, 3, chain, t0 + 3000, [])
        d = _child(c.id, 3, bytes(32), 4, chain, t0 + 4000, [])
        ex.write(ex.finalize(a, CommitCertificate((a.header, b.header, c.header),
                                                  QuorumCert(0, 3, c.id, bytes(32), b"\x80", bytes(96)))))
        live = ex.write(ex.finalize(b, CommitCertificate((b.header, c.header, d.header),
                                                         QuorumCert(0, 4, d.id, bytes(32), b"\x80", bytes(96)))))
        assert live.block_events == eb.block_events and live.events == eb.block_events
        assert store.get_extra(block_events_key(1)) is None
        rebuilt = CommitFeed(store, 100, 1 << 20, operations=OPERATIONS).load(2)
        assert rebuilt.events == live.events and rebuilt.block_events == live.block_events
        [ev] = rebuilt.events
        assert ev.tx_id == BLOCK_EVENTS_TX_ID and dict(ev.attrs)["hold"] == "h-1" and dict(ev.attrs)["amount"] == 7
    finally:
        store.close()


def test_proposer_evicts_transactions_expired_at_the_height_it_proposes(tmp_path, sig_verifier) -> None:
    """Admitted at committed height 0 with expiry height 1, a transfer can go into block 1 only: a proposal for
    height 2 (on an uncommitted block 1 that does not carry it) leaves it out and drops it from the pool."""
    layout, _cfg, genesis, _ = _dev(tmp_path, b"evict")
    accounts = load_accounts(layout.accounts_path)
    store = LedgerStore.open(os.path.join(str(tmp_path), "store"))
    try:
        app = Application(store, genesis, protocol=node_protocol(), tx_verifier=sig_verifier,
                          bls=SignatureVerifier(get_backend()), mempool_limits=MempoolLimits(), clock=lambda: 0.0)
        users = sorted(a for a in accounts if a.startswith("user-"))
        short, long = (_transfer(genesis.chain_id, accounts, users[0], n, expiry=e) for n, e in ((1, 1), (2, 50)))
        assert [a.code for a in app.admit_now([short, long])] == [0, 0]
        g, t0 = genesis.block(), genesis.genesis_time * 1000
        assert decode_payload(app.propose(g.id, t0 + 1000), 100, 1 << 20).txs == (short, long)
        root = app.head.state_root
        block_1 = _child(g.id, 0, root, 1, genesis.consensus_chain_id, t0 + 1000, [])
        assert app.execute(block_1, root, None).state_root is not None
        assert decode_payload(app.propose(block_1.id, t0 + 2000), 100, 1 << 20).txs == (long,)
        assert len(app.mempool) == 1
    finally:
        store.close()


def test_peers_with_different_genesis_refuse_each_other_in_the_handshake(tmp_path, sig_verifier, caplog) -> None:
    from tests.node.tools.cluster import free_ports

    ports = free_ports(2)
    layout = generate_network(str(tmp_path / "a"), 2, chain_id="testnet-two", seed=b"two", base_port=ports[0],
                              params=PARAMS, genesis_time=1_700_000_000)
    import json

    with open(layout.genesis_path, encoding="utf-8") as f:
        doc = json.load(f)
    for i, v in enumerate(doc["validators"]):
        v["address"] = f"127.0.0.1:{ports[i]}"
    write_genesis(layout.genesis_path, doc)
    doc["genesis_time"] += 1  # same keys and chain id, another genesis
    other_path = str(tmp_path / "other.json")
    write_genesis(other_path, doc)
    g0, g1 = load_genesis(layout.genesis_path), load_genesis(other_path)
    assert g0.hash != g1.hash
    keys = [load_keys(os.path.join(os.path.dirname(p), "node_keys.json")) for p in layout.config_paths]

    async def run() -> None:
        n0 = ValidatorNode(g0, keys[0], str(tmp_path / "d0"), listen=("127.0.0.1", ports[0]), sig_verifier=sig_verifier, never_signed=True)
        n1 = ValidatorNode(g1, keys[1], str(tmp_path / "d1"), listen=("127.0.0.1", ports[1]), sig_verifier=sig_verifier, never_signed=True)
        await n0.start()
        await n1.start()
        t0, t1 = n0.transport, n1.transport
        assert t0 is not None and t1 is not None
        try:
            # The nodes pass their genesis hash to the transport: each handshake is refused on both sides with
            # wrong_genesis, so no link comes up and no STATUS (or anything else) ever flows.
            for _ in range(200):
                if min(t.counters.handshake_failures["wrong_genesis"] for t in (t0, t1)) >= 2:
                    break
                await asyncio.sleep(0.05)
            for t in (t0, t1):
                assert t.counters.handshake_failures["wrong_genesis"] >= 2
                assert t.counters.connects == 0 and t.connected_peers() == frozenset()
            for n in (n0, n1):
                assert n.driver.reports.heights == {} and n.driver.reports.mismatched == set()
            assert n0.app.head.height == 0 and n1.app.head.height == 0
        finally:
            await n0.stop()
            await n1.stop()

    with caplog.at_level("WARNING"):
        asyncio.run(run())
    refused = [r.getMessage() for r in caplog.records if "reason=wrong_genesis" in r.getMessage()]
    assert any(f"runs genesis {g1.hash.hex()[:16]}…, this node runs genesis {g0.hash.hex()[:16]}…" in m
               for m in refused)
    assert any(f"runs genesis {g0.hash.hex()[:16]}…, this node runs genesis {g1.hash.hex()[:16]}…" in m
               for m in refused)
    # The STATUS check stays as a second line: a STATUS naming another genesis is refused and logged.
    from node.net.messages import Status
    from node.validator.membership import PeerReports

    reports = PeerReports(g0.hash)
    with caplog.at_level("ERROR"):
        assert not reports.status("node-1", Status(g1.hash, 5, bytes(32)), 0)
    assert reports.mismatched == {"node-1"} and reports.heights == {}
    assert any("genesis_mismatch" in r.getMessage() for r in caplog.records)
    assert reports.status("node-1", Status(g0.hash, 5, bytes(32)), 0) and reports.mismatched == set()


class _FourValidatorNet:
    """A generated 4-validator testnet genesis whose validators listen on free loopback ports (in-process tests)."""

    def __init__(self, tmp_path, chain_id: str, seed: bytes) -> None:
        import json

        from tests.node.tools.cluster import free_ports

        self.tmp_path = tmp_path
        self.ports = free_ports(4)
        layout = generate_network(str(tmp_path / "net"), 4, chain_id=chain_id, seed=seed, base_port=self.ports[0],
                                  params=PARAMS, genesis_time=1_700_000_000)
        with open(layout.genesis_path, encoding="utf-8") as f:
            doc = json.load(f)
        for i, v in enumerate(doc["validators"]):
            v["address"] = f"127.0.0.1:{self.ports[i]}"
        write_genesis(layout.genesis_path, doc)
        self.genesis = load_genesis(layout.genesis_path)
        self.keys = [load_keys(os.path.join(os.path.dirname(p), "node_keys.json")) for p in layout.config_paths]

    def validators(self, sig_verifier, clocks=None) -> list[ValidatorNode]:
        return [ValidatorNode(self.genesis, self.keys[i], str(self.tmp_path / f"d{i}"),
                              listen=("127.0.0.1", self.ports[i]), sig_verifier=sig_verifier,
                              clock=(clocks or {}).get(i), never_signed=True) for i in range(4)]


def test_commit_above_head_catches_up_by_block_sync_instead_of_halting(tmp_path, sig_verifier) -> None:
    """A replica's Commit for head + 3 (its ancestors never applied here, as after a partition or a restart) must
    not halt the node: the missing certified heights come by block sync, then the commit applies."""
    from consensus.actions import Commit
    from consensus.messages import decode_block

    net = _FourValidatorNet(tmp_path, "testnet-gap", b"gap")

    async def run() -> None:
        nodes = net.validators(sig_verifier)
        for node in nodes:
            await node.start()
        try:
            assert all([await node.wait_for_height(3, 60) for node in nodes])
            lagging, leader = nodes[3], nodes[0]
            # Hold the lagging node out of consensus while the other three commit three more blocks.
            driver = lagging.driver
            for _ in range(400):
                if driver.replica is not None:
                    break
                await asyncio.sleep(0.05)
            driver._stop_consensus()
            base = lagging.app.head.height
            assert await leader.wait_for_height(base + 3, 60)
            target = base + 3
            block = decode_block(leader.app.store.get_block(target))
            cert = leader.app.certificate(target)
            driver._start_consensus()
            assert driver.replica is not None and lagging.app.head.height == base
            driver._run([Commit(block, cert)])
            lagging._perform()
            assert await lagging.wait_for_height(target, 60), lagging.view.status()
            assert lagging.fatal is None
            assert lagging.app.store.get_block(target) == leader.app.store.get_block(target)
            assert lagging.app.store.state_root_at(target) == leader.app.store.state_root_at(target)
            assert driver.counters["commit_gaps"] == 1
            # Consensus resumes on the caught-up node: it keeps following the chain.
            assert await lagging.wait_for_height(target + 2, 60), lagging.view.status()
            assert lagging.fatal is None and driver.replica is not None
        finally:
            for node in nodes:
                await node.stop()

    asyncio.run(run())


def test_one_peer_claiming_an_absurd_height_does_not_pull_nodes_out_of_consensus(tmp_path, sig_verifier) -> None:
    """A Byzantine validator (f = 1 of 4) that reports height 10^9 in STATUS and never serves GET_BLOCKS must not make
    the honest nodes leave consensus: catch-up needs f+1 validators ahead. Two peers ahead still trigger it."""
    from node.net.messages import Status, encode_node_message
    from node.validator.driver import SYNC_LAG

    net = _FourValidatorNet(tmp_path, "testnet-liar", b"liar")

    async def run() -> None:
        nodes = net.validators(sig_verifier)
        for node in nodes:
            await node.start()
        try:
            assert all([await node.wait_for_height(3, 60) for node in nodes])
            honest, liar = nodes[:3], nodes[3]

            def lying_status() -> None:
                assert liar.transport is not None
                liar.transport.broadcast(encode_node_message(
                    Status(net.genesis.hash, 10**9, liar.app.head.block_id)))

            liar.driver.status_exchange.broadcast = lying_status  # type: ignore[method-assign]
            liar.driver.sync.serve = lambda *args: None  # type: ignore[method-assign]
            lying_status()
            start = min(n.app.head.height for n in honest)
            left: list[str] = []
            for _ in range(80):  # about 4 s: several lying STATUS messages reach every honest node
                left += [n.node_id for n in honest if n.driver.replica is None or n.driver.mode != "consensus"]
                await asyncio.sleep(0.05)
            assert all(n.driver.reports.heights["node-3"][0] == 10**9 for n in honest)
            assert not left, f"honest nodes left consensus: {sorted(set(left))}"
            assert all(n.driver.counters["fell_behind"] == 0 for n in honest)
            assert all(n.driver.best_peer_height() == 10**9 and n.driver.sync_target_height() < 10**9
                       for n in honest)
            assert all([await n.wait_for_height(start + 3, 30) for n in honest]), [n.view.status() for n in honest]

            # f+1 = 2 validators ahead (the liar and one more report): catch-up is triggered.
            node = honest[0]
            driver = node.driver
            assert driver.replica is not None
            now = driver.clock.monotonic_ms()
            driver.reports.heights["node-1"] = (node.app.head.height + SYNC_LAG + 50, now)
            driver.reports.heights["node-3"] = (10**9, now)
            driver.status_exchange.maybe_fall_behind()
            node._perform()
            assert driver.counters["fell_behind"] == 1 and driver.replica is None
            # The claim was false: catch-up finds nothing certified above the head and the node rejoins.
            resume = max(n.app.head.height for n in honest)
            assert await node.wait_for_height(resume + 2, 60), node.view.status()
            for _ in range(1200):  # under load, catch-up may still be applying blocks the others keep committing
                if driver.replica is not None or node.fatal is not None:
                    break
                await asyncio.sleep(0.05)
            assert node.fatal is None and driver.replica is not None
            assert len(driver.sync.backoff) <= len(driver.members.peer_ids)
            await asyncio.sleep(0.05)
            # The receive loop still runs, and no task died of an error (an execution or gossip task may have just
            # finished normally: it leaves the set on the loop's next turn).
            assert any(t.get_name() == "receive" and not t.done() for t in node._tasks), node._tasks
            assert not [t for t in node._tasks if t.done() and not t.cancelled() and t.exception() is not None]
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(run())


def test_validator_with_clock_far_behind_withholds_votes_but_follows_and_commits(tmp_path, sig_verifier) -> None:
    """Block time too far ahead of the local clock is a voting policy, not a validity rule: a validator whose clock
    is far behind votes for no block of the others, yet executes them, follows their certificates and commits the
    same chain in consensus (no stall, no block sync). The three others are a quorum."""


    from node.validator.effects import SystemClock

    class ClockBehind(SystemClock):
        def wall_ms(self) -> int:
            return super().wall_ms() - skew_ms

    net = _FourValidatorNet(tmp_path, "testnet-skew", b"skew")
    skew_ms = 10 * PARAMS.max_clock_drift_ms

    async def run() -> None:
        nodes = net.validators(sig_verifier, clocks={3: ClockBehind()})
        skewed = nodes[3]
        for node in nodes:
            await node.start()
        try:
            assert all([await node.wait_for_height(6, 60) for node in nodes]), [n.view.status() for n in nodes]
            replica = skewed.driver.replica
            assert replica is not None and replica.counters["vote_withheld_by_application"] > 0
            assert replica.counters["block_rejected_by_application"] == 0
            assert skewed.driver.counters["fell_behind"] == 0 and skewed.fatal is None
            assert skewed.driver.mode == "consensus"
            for h in range(1, 7):
                assert skewed.app.store.get_block(h) == nodes[0].app.store.get_block(h)
                assert skewed.app.store.state_root_at(h) == nodes[0].app.store.state_root_at(h)
        finally:
            for node in nodes:
                await node.stop()

    asyncio.run(run())


class _FailingJob:
    """An execution job whose run fails with `error` (everything else: the real job)."""

    def __init__(self, job, error: BaseException) -> None:
        self._job, self._error = job, error

    def __getattr__(self, name):
        return getattr(self._job, name)

    def run(self):
        raise self._error


@pytest.mark.parametrize("where", ["begin", "thread"])
def test_failed_action_restarts_consensus_from_the_head(tmp_path, sig_verifier, where) -> None:
    """An unexpected error while performing a replica action (here: executing a block, on the loop or on the
    execution thread) must not drop the rest of the action list silently -- that left the replica ahead of the
    store; the node restarts consensus instead."""
    _layout, cfg, genesis, keys = _dev(tmp_path)

    async def run() -> None:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=sig_verifier, never_signed=True)
        await node.start()
        try:
            assert await node.wait_for_height(2, 20)
            begin = node.app.begin_execution
            failures = []

            def failing_once(block, parent_root, now_ms, certificate=None):
                started = begin(block, parent_root, now_ms, certificate)
                if failures or not isinstance(started, PendingExecution):
                    return started
                failures.append(block.header.height)
                if where == "begin":
                    raise RuntimeError("disk full")
                return PendingExecution(_FailingJob(started.job, RuntimeError("a bug")), started.vote_refusal)

            node.app.begin_execution = failing_once  # type: ignore[method-assign]
            height = node.app.head.height
            assert await node.wait_for_height(height + 4, 20), node.view.status()
            assert failures and node.driver.counters["replica_restarts"] == 1
            assert node.fatal is None and node.driver.replica is not None
        finally:
            await node.stop()

    asyncio.run(run())


def test_api_batch_admits_through_one_mempool_round(tmp_path, sig_verifier) -> None:
    """/v1/tx/batch on the real node hands the decodable transactions to ValidatorNode.submit_many (one mempool
    verification round) and answers one result per item, in order: garbage, duplicates and fresh ones."""
    from aiohttp.test_utils import TestClient, TestServer

    from node.api.app import create_app
    from node.api.context import ApiConfig

    layout, cfg, genesis, keys = _dev(tmp_path)
    accounts = load_accounts(layout.accounts_path)

    async def run() -> None:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=sig_verifier, never_signed=True)
        await node.start()
        rounds = []
        submit_many = node.app.mempool.submit_many

        async def counting(raws, origin=None):
            rounds.append(len(raws))
            return await submit_many(raws, origin)

        node.app.mempool.submit_many = counting  # type: ignore[method-assign]
        client = TestClient(TestServer(create_app(node.view, ApiConfig())))
        await client.start_server()
        try:
            txs = _transfers(genesis.chain_id, accounts, 6)
            body = {"txs": [t.hex() for t in txs[:5]] + ["c1", txs[0].hex(), txs[5].hex()]}
            resp = await client.post("/v1/tx/batch", json=body)
            assert resp.status == 200, await resp.text()
            results = (await resp.json())["results"]
            assert len(results) == 8
            assert [r["code"] for r in results[:5]] == [0] * 5 and results[7]["code"] == 0
            assert results[5]["code"] != 0 and results[5]["tx_id"] is None  # not a transaction
            assert results[6]["tx_id"] == results[0]["tx_id"] and results[6]["code"] == 0 and results[6]["duplicate"]
            assert rounds == [7]
            sub = node.app.feed.subscribe(1)
            seen: set[str] = set()
            while len(seen) < 6:
                block = await asyncio.wait_for(sub.next(), 20)
                seen.update(r.tx_id.hex() for r in block.receipts if r.code == 0)
            assert seen == {r["tx_id"] for r in results if r["tx_id"] is not None}
        finally:
            await client.close()
            await node.stop()

    asyncio.run(run())


def test_only_a_first_start_signs_at_once_a_wiped_directory_does_not(tmp_path, sig_verifier) -> None:
    """The marker written beside a new node's key file says its keys never signed: the first start consumes it when
    it creates the consensus directory (marked for epoch 0), so the node signs at once. Wiped afterwards, the node
    finds no marker: it may have signed before the wipe, so its replica starts with its safety state lost and signs
    nothing in that epoch (a lone dev validator cannot recover it: no other validator can vouch for it,
    docs/consensus.md §13; it then commits nothing) -- before, a wipe at genesis looked like a first start and could
    double-sign."""
    import shutil

    from node.validator.keyfile import never_signed_path

    _, cfg, _genesis, _ = _dev(tmp_path, b"marker")
    marker = never_signed_path(cfg.keys_file)
    assert os.path.exists(marker)

    async def first_start() -> None:
        node = ValidatorNode.from_config(cfg, sig_verifier=sig_verifier)
        assert not os.path.exists(marker) and node.safety_store.epoch_mark() == 0
        await node.start()
        try:
            assert await node.wait_for_height(3, 20), node.view.status()
            assert not node.view.status()["safety_lost"]
        finally:
            await node.stop()

    async def after_wipe() -> None:
        node = ValidatorNode.from_config(cfg, sig_verifier=sig_verifier)
        assert node.safety_store.epoch_mark() is None
        await node.start()
        try:
            assert not await node.wait_for_height(1, 1.5)
            assert node.view.status()["safety_lost"] and node.driver.replica is not None
        finally:
            await node.stop()

    asyncio.run(first_start())
    shutil.rmtree(cfg.data_dir)
    asyncio.run(after_wipe())


def test_a_store_read_failing_on_the_execution_thread_stops_the_node(tmp_path, sig_verifier) -> None:
    """A disk error while a block executes off the loop is a storage failure like any other (the node stops, signs
    and writes nothing more), not an action failure to retry."""
    _layout, cfg, genesis, keys = _dev(tmp_path)

    async def run() -> None:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=sig_verifier, never_signed=True)
        await node.start()
        try:
            assert await node.wait_for_height(2, 20)
            begin = node.app.begin_execution

            def failing(block, parent_root, now_ms, certificate=None):
                started = begin(block, parent_root, now_ms, certificate)
                if not isinstance(started, PendingExecution):
                    return started
                return PendingExecution(_FailingJob(started.job, OSError(5, "Input/output error")),
                                        started.vote_refusal)

            node.app.begin_execution = failing  # type: ignore[method-assign]
            for _ in range(200):
                if node.driver.mode == "halted":
                    break
                await asyncio.sleep(0.05)
            assert node.driver.mode == "halted" and node.storage_failure is not None
            assert node.driver.counters["replica_restarts"] == 0
            height = node.app.head.height
            await asyncio.sleep(0.3)
            assert node.app.head.height == height
        finally:
            await node.stop()

    asyncio.run(run())


def test_a_block_carrying_a_committed_transaction_again_counts_it_once(tmp_path) -> None:
    """A transaction a later block carries again gets TX_REPLAYED and is not made final twice: the committed
    counts (metrics, `commit_times`, ledger bench's latency curve) add `newly_final_txs`, not the block's length."""
    with _bare_executor(tmp_path, b"replayed-copy") as (ex, genesis, state, accounts, store):
        chain, g, t0 = genesis.consensus_chain_id, genesis.block(), genesis.genesis_time * 1000
        users = sorted(a for a in accounts if a.startswith("user-"))
        once = _transfer(genesis.chain_id, accounts, users[0], 1, expiry=100)
        other = _transfer(genesis.chain_id, accounts, users[1], 1, expiry=100)
        a = _child(g.id, 0, state.state_root, 1, chain, t0 + 1000, [once])
        ea = ex.execute(a, state.state_root)
        assert ea is not None
        b = _child(a.id, 1, ea.state_root, 2, chain, t0 + 2000, [once, other, other])
        eb = ex.execute(b, ea.state_root)
        assert eb is not None and [r.code for r in eb.receipts] == [codes.TX_REPLAYED, 0, codes.TX_REPLAYED]
        c = _child(b.id, 2, eb.state_root, 3, chain, t0 + 3000, [])
        d = _child(c.id, 3, bytes(32), 4, chain, t0 + 4000, [])
        first = ex.write(ex.finalize(a, CommitCertificate((a.header, b.header, c.header),
                                                          QuorumCert(0, 3, c.id, bytes(32), b"\x80", bytes(96)))))
        second = ex.write(ex.finalize(b, CommitCertificate((b.header, c.header, d.header),
                                                           QuorumCert(0, 4, d.id, bytes(32), b"\x80", bytes(96)))))
        assert (first.tx_count, first.newly_final_txs) == (1, 1)
        assert (second.tx_count, second.newly_final_txs) == (3, 1)
        tx_once = decode_transaction(once, operations=OPERATIONS).tx_id
        kept = decode_receipt(store.get_receipt(tx_once), operations=OPERATIONS)
        assert (kept.code, kept.height) == (0, 1)  # the first receipt stays
