"""The validator driver (sans-IO) when a store's write fails: the node stops at once, signs and writes nothing more,
reports the failure (code, path, cause) in its status and metrics, logs it once, and never retries; restarted on the
same directories with the disk back, it resumes from the last block it wrote (docs/operations.md, "A failing disk").

A one-validator dev chain driven by hand: a virtual clock, the driver's effects taken after every input, timers fired
at `next_deadline()`. The stores are the real LevelDB ones, with a switch that makes their next write raise the
OSError a full disk gives.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Iterable

import pytest

from consensus.certificates import SignatureVerifier
from consensus.messages import Block, SafetyState
from ledger.store import BlockCommit, LedgerStore
from node.chain.application import Application
from node.chain.genesis import ChainParams, load_genesis
from node.chain.mempool import MempoolLimits
from node.chain.protocol import bls_backend, node_protocol
from node.chain.sigverify import Ed25519Verifier
from node.net.messages import CH_CONSENSUS
from node.tools.localnet import generate_network
from node.validator.config import load_config
from node.validator.driver import ValidatorDriver
from node.validator.effects import Broadcast, Effect, StorageFailed
from node.validator.keyfile import load_keys
from node.validator.keyring import KeyRing
from node.validator.metrics import NodeMetrics
from node.validator.safety_store import SafetyStore
from node.validator.view import NodeView
from tests.node.validator.virtual_clock import VirtualClock

NO_SPACE = "No space left on device"


GENESIS_TIME = int(time.time()) - 60


class FailingLedgerStore(LedgerStore):
    """A ledger store whose block writes raise the full disk's OSError while `failing` is set."""

    failing = False
    attempts = 0

    def commit_block(self, commit: BlockCommit) -> None:
        if self.failing:
            self.attempts += 1
            raise OSError(errno.ENOSPC, NO_SPACE, "/data/ledger/000012.log")
        super().commit_block(commit)


class FailingSafetyStore(SafetyStore):
    failing = False
    attempts = 0

    def persist(self, state: SafetyState, blocks: Iterable[Block], committed_height: int) -> int:
        if self.failing:
            self.attempts += 1
            raise OSError(errno.ENOSPC, NO_SPACE, "/data/consensus/000007.log")
        return super().persist(state, blocks, committed_height)


class DevNode:
    """One validator of a dev chain: real Application and stores, the driver run by hand."""

    def __init__(self, directory: str, first_start: bool, verifier: Ed25519Verifier) -> None:
        # A restarted node (first_start False) reuses the directory's keys, genesis and config: generating them again
        # would be refused (`ledger init` never overwrites them).
        if first_start:
            generate_network(directory, 1, chain_id="dev-disk", seed=b"disk", users=2, genesis_time=GENESIS_TIME,
                             params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=50))
        cfg = load_config(os.path.join(directory, "node-0", "config.toml"))
        genesis, keys = load_genesis(cfg.genesis_file), load_keys(cfg.keys_file)
        self.clock = VirtualClock(time.time_ns() // 1_000_000)
        self.store = FailingLedgerStore.open(f"{cfg.data_dir}/ledger")
        self.app = Application(self.store, genesis, protocol=node_protocol(), tx_verifier=verifier,
                               bls=SignatureVerifier(bls_backend()), mempool_limits=MempoolLimits(),
                               clock=lambda: self.clock.now / 1000)
        self.safety = FailingSafetyStore(f"{cfg.data_dir}/consensus")
        self.safety.bind_genesis(genesis.hash, never_signed_epoch=self.app.epochs.epoch if first_start else None)
        self.metrics = NodeMetrics()
        self.driver = ValidatorDriver(self.app, self.safety, KeyRing(keys), self.clock, self.metrics)
        self.effects: list[Effect] = []

    def close(self) -> None:
        self.safety.close()
        self.store.close()

    def run_until(self, done, limit_ms: int = 30_000) -> None:
        """Fire the driver's timers in virtual time until `done()` or the driver has nothing left to do."""
        self.effects.extend(self.driver.take())
        stop = self.clock.now + limit_ms
        while not done() and self.clock.now < stop:
            deadline = self.driver.next_deadline()
            if deadline is None:
                return
            self.clock.now = max(self.clock.now, deadline)
            self.driver.handle_timer()
            self.effects.extend(self.driver.take())


@pytest.fixture(scope="module")
def verifier():
    v = Ed25519Verifier(workers=0)
    yield v
    v.close()


def _consensus_broadcasts(effects: list[Effect]) -> list[Effect]:
    return [e for e in effects if isinstance(e, Broadcast) and e.data[:1] == bytes((CH_CONSENSUS,))]


def test_a_failed_block_write_stops_the_node_once_and_reports_it(tmp_path, verifier, caplog) -> None:
    node = DevNode(str(tmp_path), True, verifier)
    try:
        node.driver.start()
        node.run_until(lambda: node.app.head.height >= 3)
        assert node.driver.mode == "consensus" and node.app.head.height >= 3
        head = node.app.head
        node.store.failing = True
        node.effects.clear()
        with caplog.at_level(logging.INFO, logger="node.validator.driver"):
            node.run_until(lambda: node.driver.mode == "halted")
            node.clock.now += 60_000  # a minute later: nothing was retried
            node.driver.handle_timer()
            node.effects.extend(node.driver.take())
        driver = node.driver
        assert driver.mode == "halted" and driver.replica is None and driver.next_deadline() is None
        assert node.store.attempts == 1  # one write attempted, never retried
        assert node.app.head == head  # the committed head is the last block written
        failed = [e for e in node.effects if isinstance(e, StorageFailed)]
        assert len(failed) == 1 and node.effects[-1] is failed[0]
        failure = failed[0].failure
        assert (failure.code, failure.path, failure.cause) == ("storage_failed", "/data/ledger/000012.log", NO_SPACE)
        # Logged once, at CRITICAL, with the path and the cause; no traceback, no retry loop.
        records = [r for r in caplog.records if r.name == "node.validator.driver"]
        critical = [r for r in records if r.levelno == logging.CRITICAL]
        assert len(critical) == 1 and not any(r.exc_info for r in records)
        text = critical[0].getMessage()
        assert "code=storage_failed" in text and "/data/ledger/000012.log" in text and NO_SPACE in text
        assert not any("replica_action_failed" in r.getMessage() or "_failed node=" in r.getMessage()
                       for r in records)
        # Status (the API's /v1/status and /health read it) and the metric.
        status = NodeView(node.app, driver, node.metrics, None, None).status()  # type: ignore[arg-type]
        assert status["mode"] == "halted"
        assert status["fatal"] == {"code": "storage_failed", "message": failure.message,
                                   "path": "/data/ledger/000012.log", "cause": NO_SPACE}
        assert 'ledger_fatal{code="storage_failed"} 1.0' in node.metrics.render()
        # Inputs after the failure change nothing.
        driver.on_admitted()
        driver.on_message("peer", bytes((CH_CONSENSUS,)) + b"\x00")
        assert driver.take() == [] and driver.mode == "halted"
    finally:
        node.close()


def test_a_failed_safety_write_sends_nothing_it_would_have_signed(tmp_path, verifier) -> None:
    node = DevNode(str(tmp_path), True, verifier)
    try:
        node.driver.start()
        node.run_until(lambda: node.app.head.height >= 2)
        node.safety.failing = True
        writes = node.safety.writes
        node.effects.clear()
        node.run_until(lambda: node.driver.mode == "halted")
        assert node.driver.mode == "halted" and node.safety.attempts == 1 and node.safety.writes == writes
        # The proposal or vote that PersistSafety was guarding never left: no consensus message after it.
        assert _consensus_broadcasts(node.effects) == []
        assert isinstance(node.effects[-1], StorageFailed)
        assert node.effects[-1].failure.path == "/data/consensus/000007.log"
    finally:
        node.close()


def test_restarted_with_the_disk_back_it_resumes_from_its_last_block(tmp_path, verifier) -> None:
    node = DevNode(str(tmp_path), True, verifier)
    try:
        node.driver.start()
        node.run_until(lambda: node.app.head.height >= 3)
        node.store.failing = True
        node.run_until(lambda: node.driver.mode == "halted")
        written = node.app.head
        blocks = [node.store.get_block(h) for h in range(written.height + 1)]
    finally:
        node.close()
    again = DevNode(str(tmp_path), False, verifier)  # the same directories; the disk has space again
    try:
        assert again.app.head == written  # nothing committed was lost
        again.driver.start()
        again.run_until(lambda: again.app.head.height >= written.height + 3)
        assert again.driver.mode == "consensus" and again.driver.fatal is None
        assert again.app.head.height >= written.height + 3
        assert [again.store.get_block(h) for h in range(written.height + 1)] == blocks
    finally:
        again.close()
