"""The validator driver (sans-IO) with full-node peers: a full node may follow (STATUS, block sync) and forward
transactions, but its consensus messages are refused with NOT_A_VALIDATOR, logged once per peer, and nothing is
written; a node configured `role = "full"` runs no replica and fetches what a peer reports by block sync.

One validator of a generated 4-validator network driven by hand: a virtual clock, effects taken after every input.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

import pytest

from consensus.certificates import SignatureVerifier
from ledger.store import LedgerStore
from node.chain.application import Application
from node.chain.genesis import ChainParams, load_genesis
from node.chain.mempool import MempoolLimits
from node.chain.protocol import bls_backend, node_protocol
from node.chain.sigverify import Ed25519Verifier
from node.net.messages import CH_CONSENSUS, GetBlocks, Status, encode_node_message
from node.tools.localnet import generate_network
from node.validator.config import ConfigError, load_config, write_config
from node.validator.driver import NOT_A_VALIDATOR, ValidatorDriver
from node.validator.effects import Broadcast, SendTo
from node.validator.keyfile import NodeKeys, load_keys
from node.validator.keyring import KeyRing
from node.validator.metrics import NodeMetrics
from node.validator.safety_store import SafetyStore
from tests.node.validator.virtual_clock import VirtualClock

FULL = NodeKeys.generate("full-a", b"driver|full")


class Node:
    def __init__(self, directory: str, verifier: Ed25519Verifier, index: int = 0, **driver_args: object) -> None:
        layout = generate_network(
            directory,
            4,
            chain_id="testnet-full",
            seed=b"full-driver",
            users=2,
            genesis_time=int(time.time()) - 60,
            params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=50),
        )
        cfg = load_config(layout.config_paths[index])
        self.genesis = load_genesis(cfg.genesis_file)
        self.clock = VirtualClock()
        self.app = Application(
            LedgerStore.open(f"{cfg.data_dir}/ledger"),
            self.genesis,
            protocol=node_protocol(),
            tx_verifier=verifier,
            bls=SignatureVerifier(bls_backend()),
            mempool_limits=MempoolLimits(),
            clock=lambda: self.clock.now / 1000,
        )
        self.safety = SafetyStore(f"{cfg.data_dir}/consensus")
        self.safety.bind_genesis(self.genesis.hash, never_signed_epoch=0)
        self.metrics = NodeMetrics()
        self.driver = ValidatorDriver(
            self.app, self.safety, KeyRing(load_keys(cfg.keys_file)), self.clock, self.metrics, **driver_args
        )  # type: ignore[arg-type]

    def close(self) -> None:
        self.safety.close()
        self.app.store.close()

    def advance(self, ms: int) -> list[object]:
        """Fire the timers due in the next `ms` virtual milliseconds; the effects."""
        out = list(self.driver.take())
        stop = self.clock.now + ms
        while (deadline := self.driver.next_deadline()) is not None and deadline <= stop:
            self.clock.now = max(self.clock.now, deadline)
            self.driver.handle_timer()
            out.extend(self.driver.take())
        self.clock.now = stop
        return out


@pytest.fixture(scope="module")
def verifier() -> Iterator[Ed25519Verifier]:
    v = Ed25519Verifier(workers=0)
    yield v
    v.close()


def test_a_full_nodes_consensus_messages_are_refused_once_logged_and_change_nothing(tmp_path, verifier, caplog) -> None:
    node = Node(str(tmp_path), verifier, full_nodes={"full-a": FULL.identity_key})
    try:
        driver = node.driver
        peer = driver.members.peers.get("full-a")
        assert peer is not None and peer.full and peer.address is None
        assert "full-a" not in driver.members.peer_ids  # never waited for, never a sync source, never a voter
        driver.start()
        node.advance(4_000)  # the startup wait ends: consensus starts (no peer answers in this test)
        assert driver.mode == "consensus" and driver.replica is not None
        replica_round, safety = driver.replica.current_round, node.safety.load()
        head = node.app.head
        with caplog.at_level(logging.WARNING, logger="node.validator.driver"):
            for payload in (b"\x00" * 40, b"\x01proposal", b"\x02vote"):
                driver.on_message("full-a", bytes((CH_CONSENSUS,)) + payload)
                assert driver.take() == []  # nothing sent, nothing applied
        assert driver.counters[NOT_A_VALIDATOR] == 3
        assert NOT_A_VALIDATOR in node.metrics.render()
        refused = [r for r in caplog.records if NOT_A_VALIDATOR in r.getMessage()]
        assert len(refused) == 1 and "peer=full-a" in refused[0].getMessage()  # once per peer
        assert driver.replica.current_round == replica_round and node.safety.load() == safety
        assert node.app.head == head
        # It may follow: its STATUS is recorded and its GET_BLOCKS answered.
        driver.on_message("full-a", encode_node_message(Status(node.genesis.hash, 0, b"\x00" * 32)))
        driver.on_message("full-a", encode_node_message(GetBlocks(7, 1, 16)))
        answers = [e for e in driver.take() if isinstance(e, SendTo) and e.peer == "full-a"]
        assert len(answers) == 1 and "full-a" in driver.reports.heights
        # A reload that drops it: it is no longer a peer.
        driver.set_full_nodes({})
        assert driver.members.peers.get("full-a") is None and "full-a" not in driver.reports.heights
    finally:
        node.close()


def test_a_node_configured_full_runs_no_replica_and_follows_what_peers_report(tmp_path, verifier) -> None:
    node = Node(str(tmp_path), verifier, index=1, full_only=True)
    try:
        driver = node.driver
        assert driver.role == "full" and driver.members.signing_keys is None
        driver.start()
        effects = node.advance(4_000)
        assert driver.mode == "following" and driver.replica is None
        # Its STATUS goes to every peer; nothing of consensus kind is ever sent.
        assert any(isinstance(e, Broadcast) and e.audience == "all" for e in effects)
        assert not any(isinstance(e, Broadcast | SendTo) and e.data[:1] == bytes((CH_CONSENSUS,)) for e in effects)
        # A validator reports a higher height: block sync asks it for the blocks.
        driver.on_message("node-0", encode_node_message(Status(node.genesis.hash, 5, b"\x01" * 32)))
        requests = [e for e in driver.take() if isinstance(e, SendTo) and e.sync_request]
        assert len(requests) == 1 and requests[0].peer == "node-0" and driver.mode == "syncing"
    finally:
        node.close()


def test_the_config_names_the_role_and_the_full_nodes_and_refuses_bad_entries(tmp_path) -> None:
    layout = generate_network(str(tmp_path / "net"), 1, chain_id="testnet-cfg", seed=b"cfg", users=1)
    cfg = load_config(layout.config_paths[0])
    assert cfg.role == "validator" and cfg.full_nodes == {}
    path = str(tmp_path / "full.toml")
    write_config(path, dataclasses.replace(cfg, role="full", full_nodes={"full-a": FULL.identity_key}))
    again = load_config(path)
    assert again.role == "full" and again.full_nodes == {"full-a": FULL.identity_key}
    key = FULL.identity_key.hex()
    for text in (
        'node_id = "a"\nrole = "observer"\n',
        'node_id = "a"\n[p2p.full_nodes]\nfull-a = "abcd"\n',
        f'node_id = "a"\n[p2p.full_nodes]\nfull-a = "{key}"\nfull-b = "{key}"\n',
        'node_id = "a"\n[p2p]\nfull_nodes = ["x"]\n',
    ):
        (tmp_path / "bad.toml").write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(str(tmp_path / "bad.toml"))
        assert info.value.code == "config_bad_field", text


def test_a_link_coming_up_gets_this_nodes_status_at_once(tmp_path, verifier) -> None:
    """The STATUS a node broadcasts at start reaches no one (its links are not up yet) and the next is a second
    away; a starting peer waits for every peer's STATUS. So a link coming up gets one at once, without the clock
    moving."""
    node = Node(str(tmp_path), verifier)
    try:
        driver = node.driver
        driver.start()
        driver.take()
        driver.on_peer_connected("node-2")
        [greeting] = driver.take()
        assert isinstance(greeting, SendTo) and greeting.peer == "node-2" and not greeting.sync_request
        head = node.app.head
        assert greeting.data == encode_node_message(Status(node.genesis.hash, head.height, head.block_id))
        driver.stop()
        driver.on_peer_connected("node-3")
        assert driver.take() == []  # a stopped node greets no one
    finally:
        node.close()
