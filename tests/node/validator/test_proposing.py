"""A pipelined leader proposes only on a branch it has executed (node/validator/proposing.py, Application.branch_executed).

Four validators of a generated network, driven by hand over a virtual clock and an in-test network that delivers
every message at once. node-0 executes on its (simulated) execution thread, whose jobs this test runs only when it
chooses; the three others execute at once, so they vote, certify and extend the chain without node-0. When node-0
leads, the parent it is asked to extend was certified by the others' votes while node-0 still holds it back behind
its own ancestors' executions. Its proposal must carry none of the transactions that branch carries: it used to
propose every pooled one, and each became a copy with a TX_REPLAYED receipt in the committed block
(docs/benchmarks.md, "Copies of committed transactions in blocks: the cause").
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from consensus.actions import RequestPayload
from consensus.certificates import SignatureVerifier
from consensus.messages import Proposal, decode_message
from ledger.operations import Transfer, TransferLeg
from ledger.store import LedgerStore
from ledger.transaction import TxBody, sign_transaction
from node.chain.application import Application
from node.chain.genesis import ChainParams, load_genesis
from node.chain.mempool import MempoolLimits
from node.chain.payload import decode_payload
from node.chain.protocol import OPERATIONS, bls_backend, node_protocol
from node.chain.sigverify import Ed25519Verifier
from node.net.messages import CH_CONSENSUS
from node.tools.localnet import CASH_ASSET, generate_network, load_accounts
from node.validator.config import load_config
from node.validator.driver import ValidatorDriver
from node.validator.effects import Broadcast, RunExecution, SendTo
from node.validator.keyfile import load_keys
from node.validator.keyring import KeyRing
from node.validator.metrics import NodeMetrics
from node.validator.proposing import MIN_BLOCK_INTERVAL_MS, PayloadWait
from node.validator.safety_store import SafetyStore
from tests.node.validator.virtual_clock import VirtualClock

# Long rounds: no round times out in this test, whatever the machine's speed (the clock is virtual anyway).
PARAMS = ChainParams(base_timeout_ms=60_000, empty_block_interval_ms=50)


class HandNet:
    """Four drivers; effects delivered at once; node-0's executions held in `held` until run_held()."""

    def __init__(self, directory: str, verifier: Ed25519Verifier) -> None:
        layout = generate_network(directory, 4, chain_id="testnet-propose", seed=b"propose-branch", users=8,
                                  genesis_time=1_700_000_000, params=PARAMS)
        self.clock = VirtualClock()
        self.accounts = load_accounts(layout.accounts_path)
        self.apps: list[Application] = []
        self.safety: list[SafetyStore] = []
        self.drivers: list[ValidatorDriver] = []
        for i, path in enumerate(layout.config_paths):
            cfg = load_config(path)
            genesis = load_genesis(cfg.genesis_file)
            app = Application(LedgerStore.open(f"{cfg.data_dir}/ledger"), genesis, protocol=node_protocol(),
                              tx_verifier=verifier, bls=SignatureVerifier(bls_backend()),
                              mempool_limits=MempoolLimits(), clock=lambda: self.clock.now / 1000)
            safety = SafetyStore(f"{cfg.data_dir}/consensus")
            safety.bind_genesis(genesis.hash, never_signed_epoch=0)
            self.apps.append(app)
            self.safety.append(safety)
            self.drivers.append(ValidatorDriver(app, safety, KeyRing(load_keys(cfg.keys_file)), self.clock,
                                                NodeMetrics(), pipelined=i == 0))
        self.genesis = self.apps[0].genesis
        self.index = {d.node_id: i for i, d in enumerate(self.drivers)}
        self.held: list[RunExecution] = []
        self.proposals: list[tuple[int, Proposal]] = []  # (proposer, proposal), in the order sent

    def close(self) -> None:
        for safety, app in zip(self.safety, self.apps, strict=True):
            safety.close()
            app.store.close()

    def transfers(self, count: int, first: int) -> list[bytes]:
        users = sorted(a for a in self.accounts if a.startswith("user-"))
        out = []
        for k in range(first, first + count):
            sender, recipient = users[k % len(users)], users[(k + 1) % len(users)]
            body = TxBody(1, self.genesis.chain_id, (sender,), k, 5000,
                          (Transfer(sender, CASH_ASSET, (TransferLeg(recipient, 1),)),))
            out.append(sign_transaction(body, [(sender, self.accounts[sender])], operations=OPERATIONS).to_bytes())
        return out

    def pump(self) -> None:
        """Deliver every queued effect (which may queue more) until none is left."""
        moved = True
        while moved:
            moved = False
            for i, driver in enumerate(self.drivers):
                for effect in driver.take():
                    moved = True
                    if isinstance(effect, SendTo):
                        self.drivers[self.index[effect.peer]].on_message(driver.node_id, effect.data)
                    elif isinstance(effect, Broadcast):
                        if effect.data[0] == CH_CONSENSUS:
                            message = decode_message(effect.data[1:])
                            if isinstance(message, Proposal):
                                self.proposals.append((i, message))
                        for j, other in enumerate(self.drivers):
                            if j != i:
                                other.on_message(driver.node_id, effect.data)
                    elif isinstance(effect, RunExecution):
                        assert i == 0
                        self.held.append(effect)
                    # PeersChanged: nothing to connect; SubmitGossip: every pool is filled by the test itself

    def advance(self, ms: int) -> None:
        """Fire every timer due in the next `ms` virtual milliseconds, delivering what each queues."""
        self.pump()
        stop = self.clock.now + ms
        while True:
            due = [(d.next_deadline(), i) for i, d in enumerate(self.drivers)]
            due = [(at, i) for at, i in due if at is not None and at <= stop]
            if not due:
                break
            at, i = min(due)
            self.clock.now = max(self.clock.now, at)
            self.drivers[i].handle_timer()
            self.pump()
        self.clock.now = stop

    def run_held(self) -> None:
        """node-0's execution thread runs what waits (one at a time, as the host does), and answers."""
        while self.held:
            pending = self.held.pop(0).pending
            self.drivers[0].execution_done(pending, pending.run())
            self.advance(0)


@pytest.fixture(scope="module")
def verifier() -> Iterator[Ed25519Verifier]:
    v = Ed25519Verifier(workers=0)
    yield v
    v.close()


def _txs(proposal: Proposal) -> set[bytes]:
    return set(decode_payload(proposal.block.payload, 10_000, 1 << 24).txs)


def _copies(net: HandNet, proposer: int) -> int:
    """Transactions the proposals of `proposer` carry that a block of the branch each extends already carries (every
    block of this test is a proposal the test saw, so its branch is known down to the genesis)."""
    blocks = {p.block.id: p for _, p in net.proposals}
    copies = 0
    for i, p in net.proposals:
        if i != proposer:
            continue
        branch: set[bytes] = set()
        cursor = p.block.header.parent_id
        while cursor in blocks:
            branch |= _txs(blocks[cursor])
            cursor = blocks[cursor].block.header.parent_id
        copies += len(_txs(p) & branch)
    return copies


def test_a_leader_never_proposes_what_the_branch_it_extends_carries(tmp_path, verifier) -> None:
    net = HandNet(str(tmp_path), verifier)
    try:
        # Each of node-1..3 pools transactions of its own; node-0 pools all of them and some that no one else has.
        own = [net.transfers(4, 4 * i) for i in range(4)]
        for i in (1, 2, 3):
            assert all(a.ok for a in net.apps[i].admit_now(own[i]))
        assert all(a.ok for a in net.apps[0].admit_now([tx for txs in own for tx in txs]))
        for driver in net.drivers:
            driver.start()
        net.advance(10)  # every STATUS delivered: the replicas start
        assert all(d.mode == "consensus" for d in net.drivers)
        # node-1..3 propose, vote and certify by themselves; node-0 executes nothing yet and so never votes. Its
        # replica asks for the execution of block 1 only (on the execution thread, held) and holds the later ones
        # back until block 1's answers.
        for _ in range(200):
            net.advance(10)
            replica = net.drivers[0].replica
            if replica is not None and replica.leader_index(replica.current_round) == 0 and \
                    replica.current_round > 2:
                break
        else:
            pytest.fail("node-0 never led a round")
        net.advance(10)  # the payload waits are over
        carried = set().union(*(_txs(p) for i, p in net.proposals if i != 0))
        assert carried and len(net.held) == 1  # blocks with transactions; node-0 still executes the first one
        # Asked to extend a parent it has not executed, node-0 proposes at once (the QC must not wait) and copies
        # nothing: it used to propose every transaction of its pool, those of the blocks it extends included.
        early = [p for i, p in net.proposals if i == 0]
        assert early, "node-0 did not propose in its round"
        assert _copies(net, 0) == 0, f"node-0 proposed {_copies(net, 0)} transactions its branch already carries"
        assert [_txs(p) for p in early] == [set()]

        # Its execution thread catches up (and keeps up): once it leads on a branch it has executed, its block carries
        # what it alone pooled, and never what the branch carries.
        for _ in range(400):
            net.run_held()
            net.advance(10)
            if any(_txs(p) for i, p in net.proposals if i == 0):
                break
        else:
            pytest.fail("node-0 never proposed its own transactions")
        assert _copies(net, 0) == 0
        assert [_txs(p) for i, p in net.proposals if i == 0 and _txs(p)] == [set(own[0])]
        assert all(_copies(net, i) == 0 for i in (1, 2, 3))
    finally:
        net.close()


class _App:
    """What PayloadWait reads of the Application."""

    def __init__(self, executed: bool, pooled: int) -> None:
        self.epochs = SimpleNamespace(params=PARAMS)
        self.executed, self.pooled = executed, pooled

    def branch_executed(self, parent_id: bytes) -> bool:
        return self.executed

    def has_work(self, parent_id: bytes) -> bool:
        return self.executed and self.pooled > 0

    def pending_beyond(self, parent_id: bytes) -> int:
        return self.pooled if self.executed else 0


def test_on_a_branch_not_executed_here_a_leader_proposes_at_once() -> None:
    """No wait for work nor for MIN_BLOCK_INTERVAL_MS: nothing could be added to the block, and its QC may be the one
    that commits an epoch-ending block (a leader the epoch change removes leaves as soon as that commits here)."""
    replica = SimpleNamespace(current_round=7)
    request = RequestPayload(7, 5, b"p" * 32)
    wait = PayloadWait()
    wait.request(replica, request, now_ms=1_000)
    assert wait.check(_App(executed=True, pooled=0), replica, 1_000) == (False, 1_000 + PARAMS.empty_block_interval_ms)
    assert wait.check(_App(executed=False, pooled=0), replica, 1_001) == (True, None)
    assert wait.pending is None
    wait.request(replica, request, now_ms=1_002)  # right after a proposal: the minimum interval applies ...
    assert wait.check(_App(executed=True, pooled=5), replica, 1_002) == (False, 1_001 + MIN_BLOCK_INTERVAL_MS)
    assert wait.check(_App(executed=False, pooled=5), replica, 1_003) == (True, None)  # ... but not here
