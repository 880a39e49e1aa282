"""Block sync fetches one batch ahead (node/chain/block_sync.py): while the host applies a batch, the driver already
asks for the next one from the height that batch ends at; an answer that arrives before the batch is applied waits
and is applied next; a batch that stops short drops what was fetched ahead (its late answer is unsolicited, nobody is
blamed). The blocks come from a real dev chain; the follower's state roots equal the chain's at every height."""

from __future__ import annotations

import os

from consensus.certificates import SignatureVerifier
from consensus.messages import CommitCertificate, decode_block
from ledger.store import LedgerStore
from node.chain.application import Application
from node.chain.genesis import load_genesis
from node.chain.mempool import MempoolLimits
from node.chain.protocol import bls_backend, node_protocol
from node.net.messages import CH_NODE, Blocks, GetBlocks, Status, decode_node_message, encode_node_message
from node.validator.driver import ValidatorDriver
from node.validator.effects import ApplyBlocks, SendTo
from node.validator.keyfile import NodeKeys
from node.validator.keyring import KeyRing
from node.validator.metrics import NodeMetrics
from node.validator.safety_store import SafetyStore
from tests.node.validator.test_driver_storage import DevNode, VirtualClock, verifier  # noqa: F401 -- the fixture

FOLLOWER = NodeKeys.generate("follower", b"sync-ahead|follower")


class Follower:
    """A full node of the dev chain, driven by hand: its requests answered from the dev node's store."""

    def __init__(self, directory: str, source: DevNode, verifier) -> None:  # noqa: F811
        self.source = source
        genesis = load_genesis(os.path.join(directory, "genesis.json"))
        self.clock = VirtualClock()
        self.app = Application(
            LedgerStore.open(os.path.join(directory, "follower", "ledger")),
            genesis,
            protocol=node_protocol(),
            tx_verifier=verifier,
            bls=SignatureVerifier(bls_backend()),
            mempool_limits=MempoolLimits(),
            clock=lambda: self.clock.now / 1000,
        )
        self.safety = SafetyStore(os.path.join(directory, "follower", "consensus"))
        self.safety.bind_genesis(genesis.hash, never_signed_epoch=0)
        self.metrics = NodeMetrics()
        self.driver = ValidatorDriver(
            self.app, self.safety, KeyRing(FOLLOWER), self.clock, self.metrics, full_only=True
        )

    def close(self) -> None:
        self.safety.close()
        self.app.store.close()

    def requests(self, effects: list[object]) -> list[GetBlocks]:
        out = []
        for e in effects:
            if isinstance(e, SendTo) and e.sync_request and e.data[0] == CH_NODE:
                msg = decode_node_message(e.data[1:])
                assert isinstance(msg, GetBlocks)
                out.append(msg)
        return out

    def answer(self, request: GetBlocks, count: int) -> list[object]:
        """The dev node's blocks from the request's start (`count` of them), delivered; the effects."""
        items = self.source.app.certified_raw(request.start, count, 1 << 30)
        self.driver.on_message("node-0", encode_node_message(Blocks(request.request_id, items)))
        return self.driver.take()

    def apply(self, batch: ApplyBlocks, stop_after: int | None = None) -> list[object]:
        """Apply a batch as the host does (all of it, or `stop_after` blocks and then an error); the effects."""
        blocks = batch.blocks if stop_after is None else batch.blocks[:stop_after]
        applied, error = self.driver.apply_synced_group(batch.peer, batch.request_id, blocks)
        assert error is None and applied == len(blocks)
        if stop_after is not None:
            error = "stopped here by the test"
        self.driver.sync_batch_done(batch.peer, batch.request_id, applied, error)
        return self.driver.take()


def test_block_sync_fetches_the_next_batch_while_one_is_applied(tmp_path, verifier) -> None:  # noqa: F811
    source = DevNode(str(tmp_path), True, verifier)
    follower = None
    try:
        source.driver.start()
        source.run_until(lambda: source.app.head.height >= 40)
        follower = Follower(str(tmp_path), source, verifier)
        driver = follower.driver
        driver.start()
        driver.take()
        head = source.app.head
        driver.on_message("node-0", encode_node_message(Status(source.app.genesis.hash, head.height, head.block_id)))
        follower.clock.now += 1_000
        driver.handle_timer()
        [first] = follower.requests(driver.take())
        assert first.start == 1 and driver.mode == "syncing"

        # Batch 1..10 goes to the host, and 11.. is asked for at once.
        effects = follower.answer(first, 10)
        [batch1] = [e for e in effects if isinstance(e, ApplyBlocks)]
        [ahead] = follower.requests(effects)
        assert [b.header.height for b, _ in batch1.blocks] == list(range(1, 11)) and ahead.start == 11
        # Its answer arrives before batch 1 is applied: it waits (no second ApplyBlocks, no third request).
        assert follower.answer(ahead, 10) == []
        assert follower.app.head.height == 0
        # Batch 1 applied: batch 2 goes to the host and 21.. is asked for.
        effects = follower.apply(batch1)
        [batch2] = [e for e in effects if isinstance(e, ApplyBlocks)]
        [third] = follower.requests(effects)
        assert follower.app.head.height == 10 and batch2.blocks[0][0].header.height == 11 and third.start == 21

        # Batch 2 stops short after 3 blocks: the request made ahead is dropped; its late answer is unsolicited.
        follower.apply(batch2, stop_after=3)
        assert follower.app.head.height == 13
        rejected = follower.metrics.rejected_messages.labels(reason="unsolicited")._value.get()
        assert [e for e in follower.answer(third, 10) if isinstance(e, ApplyBlocks)] == []
        assert follower.metrics.rejected_messages.labels(reason="unsolicited")._value.get() == rejected + 1
        assert follower.app.head.height == 13

        # Every height the follower holds has the dev chain's block and state root.
        for h in range(1, 14):
            block, cert = follower.app.certified(h)  # type: ignore[misc]
            assert block.id == decode_block(source.app.store.get_block(h)).id  # type: ignore[arg-type]
            assert cert == CommitCertificate.decode(source.app.certified_raw(h, 1, 1 << 30)[0][1])
            assert follower.app.store.state_root_at(h) == source.app.store.state_root_at(h)
    finally:
        if follower is not None:
            follower.close()
        source.close()
