"""The driver's catch-up (node/validator/catch_up.py) through its own interface: the hooks it is given are the only
way it reaches the driver, so a recording fake driver shows exactly what a session asks for. The certified blocks come
from a real dev chain; the chain the session reads is a fake whose head moves only through the `commit` hook."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from consensus.certificates import CommitCertificateError
from consensus.messages import Block, CommitCertificate, decode_block, encode_block
from node.chain.block_sync import BlockSync
from node.chain.execution import ChainHead
from node.net.messages import CH_NODE, Blocks, GetBlocks, decode_node_message
from node.validator.catch_up import FOLLOW_INTERVAL_MS, GAP_RETRY_MS, GAP_SYNC_TIMEOUT_MS, CatchUp, DriverHooks
from node.validator.effects import ApplyBlocks, SendTo
from node.validator.membership import PeerReports
from node.validator.metrics import NodeMetrics
from tests.node.validator.test_driver_storage import DevNode, VirtualClock, verifier  # noqa: F401 -- the fixture

PEER = "node-0"
HEIGHTS = 8


@pytest.fixture(scope="module")
def certified(tmp_path_factory, verifier) -> list[tuple[Block, CommitCertificate]]:  # noqa: F811
    """Heights 1..HEIGHTS of a real dev chain, each with its commit certificate."""
    source = DevNode(str(tmp_path_factory.mktemp("catch-up")), True, verifier)
    try:
        source.driver.start()
        source.run_until(lambda: source.app.head.height >= HEIGHTS)
        items = source.app.certified_raw(1, HEIGHTS, 1 << 30)
        return [(decode_block(b), CommitCertificate.decode(c)) for b, c in items]
    finally:
        source.close()


class FakeChain:
    """The head the session reads; `uncertified` holds the heights whose certificate does not verify."""

    def __init__(self, parent_of_first: bytes) -> None:
        self._head = ChainHead(parent_of_first, 0, 0, b"\0" * 32)
        self.uncertified: set[int] = set()
        self.ending: set[int] = set()  # heights that end an epoch
        self.log: list[tuple[str, int]] = []  # ("check", height) and ("ends_epoch", height), in order

    @property
    def head(self) -> ChainHead:
        return self._head

    def check_certificate(self, cert: CommitCertificate) -> None:
        self.log.append(("check", cert.headers[0].height))
        if cert.headers[0].height in self.uncertified:
            raise CommitCertificateError("planted", "planted by the test")

    def ends_epoch(self, block: Block, cert: CommitCertificate) -> bool:
        self.log.append(("ends_epoch", block.header.height))
        return block.header.height in self.ending

    def advance(self, block: Block) -> None:
        self._head = ChainHead(block.id, block.header.height, 0, b"\0" * 32)


class FakeDriver:
    """Records every hook call; `commit` moves the fake chain's head, `guarded` runs the step at once."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain
        self.calls: list[tuple[Any, ...]] = []
        self.effects: list[Any] = []
        self.is_running = True
        self.target = 0
        self.failing_commit: Exception | None = None  # what the next commit_group raises

    def hooks(self) -> DriverHooks:
        def record(name: str, result: Any = None):
            return lambda *args: (self.calls.append((name, *args)), result)[1]

        def commit(block: Block, cert: CommitCertificate) -> None:
            self.calls.append(("commit", block.header.height))
            self.chain.advance(block)

        def commit_group(run) -> None:
            if self.failing_commit is not None:
                if len(run) > 2:  # the driver's fallback: the blocks before the one that fails are kept
                    self.chain.advance(run[1][0])
                raise self.failing_commit
            self.calls.append(("commit_group", tuple(b.header.height for b, _ in run)))
            self.chain.log.append(("write", run[-1][0].header.height))
            self.chain.advance(run[-1][0])

        def guarded(what: str, step, *args: Any) -> None:
            self.calls.append(("guarded", what))
            step(*args)

        return DriverHooks(
            emit=self.effects.append, peer_ids=lambda: [PEER], signs=lambda: True, target_height=lambda: self.target,
            running=lambda: self.is_running, leave_consensus=record("leave_consensus"),
            start_consensus=record("start_consensus"), commit=commit, commit_group=commit_group, halt=record("halt"),
            storage_failed=record("storage_failed"), guarded=guarded, retry_gap_at=record("retry_gap_at"),
            follow_at=record("follow_at"))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]

    def committed(self) -> list[int]:
        """The heights committed, through either commit hook, in order."""
        out: list[int] = []
        for c in self.calls:
            if c[0] == "commit":
                out.append(c[1])
            elif c[0] == "commit_group":
                out.extend(c[1])
        return out

    def requests(self) -> list[GetBlocks]:
        out = []
        for e in self.effects:
            if isinstance(e, SendTo) and e.sync_request and e.data[0] == CH_NODE:
                msg = decode_node_message(e.data[1:])
                assert isinstance(msg, GetBlocks)
                out.append(msg)
        return out


class Session:
    def __init__(self, certified: list[tuple[Block, CommitCertificate]], reported: int) -> None:
        self.certified = certified
        self.chain = FakeChain(certified[0][0].header.parent_id)
        self.driver = FakeDriver(self.chain)
        self.clock = VirtualClock()
        self.reports = PeerReports(b"g" * 32)
        self.reports.heights[PEER] = (reported, 0)
        self.metrics = NodeMetrics()
        self.counters: collections.Counter[str] = collections.Counter()
        self.catch_up = CatchUp(BlockSync(), self.chain, self.clock, self.reports, self.metrics, self.counters,
                                self.driver.hooks(), "follower")

    def answer(self, request: GetBlocks, count: int) -> ApplyBlocks:
        """The certified blocks from the request's start (`count` of them) arrive; the ApplyBlocks they become."""
        items = [[encode_block(b), c.encode()] for b, c in self.certified[request.start - 1:request.start - 1 + count]]
        before = len(self.driver.effects)
        self.catch_up.on_blocks(PEER, Blocks(request.request_id, items))
        [batch] = [e for e in self.driver.effects[before:] if isinstance(e, ApplyBlocks)]
        return batch

    def apply(self, batch: ApplyBlocks) -> tuple[int, str | None]:
        """Apply the whole batch as one group, as the host may; (blocks committed, why the batch stopped)."""
        applied, error = self.catch_up.apply_synced_group(batch.peer, batch.request_id, batch.blocks)
        self.catch_up.batch_done(batch.peer, batch.request_id, applied, error)
        return applied, error


def test_a_commit_after_a_gap_fetches_the_missing_heights_then_commits_and_restarts_consensus(certified) -> None:
    s = Session(certified, reported=4)
    block, cert = certified[4]  # height 5, while the head is 0
    s.catch_up.commit_after_gap(block, cert)
    assert s.counters["commit_gaps"] == 1 and s.driver.named("leave_consensus") and s.catch_up.active
    [request] = s.driver.requests()
    assert request.start == 1
    batch = s.answer(request, 4)
    assert [b.header.height for b, _ in batch.blocks] == [1, 2, 3, 4]
    assert s.driver.committed() == [] and s.driver.named("start_consensus") == []  # the host applies it
    assert s.apply(batch) == (4, None)
    # Heights 1..4 in one group commit, then the commit that waited, then a new replica; the session is over.
    assert s.driver.named("commit_group") == [("commit_group", (1, 2, 3, 4))]
    assert s.driver.committed() == [1, 2, 3, 4, 5]
    assert s.chain.head.height == 5 and not s.catch_up.active
    assert s.driver.calls[-1] == ("start_consensus",) and len(s.driver.named("start_consensus")) == 1
    assert s.driver.named("halt") == [] and s.driver.named("retry_gap_at") == []


def test_a_gap_nobody_can_fill_is_retried_then_dropped_and_consensus_restarts(certified) -> None:
    s = Session(certified, reported=0)
    s.catch_up.commit_after_gap(*certified[4])
    # The replica's commit shows height 4 exists, so the peer is asked; it has nothing (an empty answer).
    [request] = s.driver.requests()
    s.catch_up.on_blocks(PEER, Blocks(request.request_id, []))
    assert not s.catch_up.active and s.driver.named("retry_gap_at") == [("retry_gap_at", GAP_RETRY_MS)]
    assert s.driver.named("start_consensus") == []
    s.clock.now = GAP_SYNC_TIMEOUT_MS + 1  # the driver's "gap" deadline fires past the gap's own deadline
    s.catch_up.gap_timer()
    [_, again] = s.driver.requests()  # one more session, and the peer still has nothing
    s.catch_up.on_blocks(PEER, Blocks(again.request_id, []))
    assert s.driver.committed() == [] and s.chain.head.height == 0 and len(s.driver.named("retry_gap_at")) == 1
    assert s.driver.named("start_consensus") == [("start_consensus",)] and not s.catch_up.active
    s.catch_up.gap_timer()  # the gap is forgotten: nothing more happens
    assert len(s.driver.requests()) == 2 and len(s.driver.named("start_consensus")) == 1


def test_a_gap_commit_whose_certificate_does_not_verify_halts(certified) -> None:
    s = Session(certified, reported=1)
    s.chain.uncertified.add(2)
    s.catch_up.commit_after_gap(*certified[1])
    [request] = s.driver.requests()
    assert s.apply(s.answer(request, 1)) == (1, None)
    assert s.driver.named("halt")[0][1] == "commit_uncertified"
    assert s.driver.committed() == [1] and s.driver.named("start_consensus") == []


def test_an_abandoned_session_cancels_the_batch_being_applied(certified) -> None:
    s = Session(certified, reported=HEIGHTS)
    s.driver.target = HEIGHTS
    s.catch_up.begin(0, "consensus")
    [first] = s.driver.requests()
    batch = s.answer(first, 4)
    [_, ahead] = s.driver.requests()  # the next batch is asked for while this one is applied
    assert ahead.start == 5
    s.catch_up.abandon()  # the driver retries later (an unexpected failure)
    assert not s.catch_up.active
    assert s.apply(batch) == (0, "cancelled")
    assert s.driver.committed() == [] and s.chain.head.height == 0 and s.driver.named("start_consensus") == []
    # The answer to the request made ahead is now unsolicited: refused, counted, nothing applied.
    items = [[encode_block(b), c.encode()] for b, c in certified[4:8]]
    effects = len(s.driver.effects)
    s.catch_up.on_blocks(PEER, Blocks(ahead.request_id, items))
    assert len(s.driver.effects) == effects
    assert s.metrics.rejected_messages.labels(reason="unsolicited")._value.get() == 1


def test_import_certified_refuses_what_does_not_extend_the_head_or_verify_and_a_stopped_node(certified) -> None:
    s = Session(certified, reported=0)
    assert "does not extend head 0" in s.catch_up.import_certified(*certified[1])
    s.chain.uncertified.add(1)
    assert s.catch_up.import_certified(*certified[0]).startswith("certificate at 1")
    s.chain.uncertified.clear()
    s.driver.is_running = False
    assert s.catch_up.import_certified(*certified[0]) == "stopped"
    assert s.driver.committed() == [] and s.chain.head.height == 0
    s.driver.is_running = True
    assert s.catch_up.import_certified(*certified[0]) is None and s.chain.head.height == 1


def test_a_following_node_starts_a_session_at_most_once_per_follow_interval(certified) -> None:
    s = Session(certified, reported=2)
    s.driver.target = 2
    s.catch_up.follow_soon()
    assert s.driver.named("guarded")[0] == ("guarded", "follow") and s.catch_up.active
    s.apply(s.answer(s.driver.requests()[0], 2))
    assert s.chain.head.height == 2 and not s.catch_up.active
    s.clock.now += FOLLOW_INTERVAL_MS - 1
    s.catch_up.follow_soon()  # too soon after the last session started: the driver's "follow" deadline instead
    assert s.driver.named("follow_at") == [("follow_at", FOLLOW_INTERVAL_MS)] and not s.catch_up.active


def _sync_batch(s: Session, count: int) -> ApplyBlocks:
    s.driver.target = HEIGHTS
    s.catch_up.begin(0, "consensus")
    return s.answer(s.driver.requests()[0], count)


def test_a_group_is_written_in_runs_that_end_at_epoch_ending_blocks(certified) -> None:
    s = Session(certified, reported=HEIGHTS)
    s.chain.ending = {3, 6}
    assert s.apply(_sync_batch(s, HEIGHTS)) == (HEIGHTS, None)
    assert s.driver.named("commit_group") == [("commit_group", (1, 2, 3)), ("commit_group", (4, 5, 6)),
                                              ("commit_group", (7, 8))]
    # The certificate after an epoch-ending block is checked only once that block is written (its commit
    # installs the set that certifies the next one).
    log = s.chain.log
    assert log.index(("write", 3)) < log.index(("check", 4)) and log.index(("write", 6)) < log.index(("check", 7))
    assert s.metrics.sync_blocks._value.get() == HEIGHTS


def test_a_certificate_that_does_not_verify_ends_the_group_before_it_and_the_batch(certified) -> None:
    s = Session(certified, reported=HEIGHTS)
    s.chain.uncertified.add(4)
    applied, error = s.apply(_sync_batch(s, HEIGHTS))
    assert applied == 3 and error is not None and error.startswith("certificate at 4")
    assert s.driver.named("commit_group") == [("commit_group", (1, 2, 3))] and s.chain.head.height == 3
    assert s.driver.named("halt") == []


def test_a_group_that_does_not_extend_the_head_commits_nothing(certified) -> None:
    s = Session(certified, reported=HEIGHTS)
    batch = _sync_batch(s, HEIGHTS)
    shuffled = ApplyBlocks(batch.peer, batch.request_id, (batch.blocks[0], batch.blocks[2], batch.blocks[1]))
    applied, error = s.catch_up.apply_synced_group(shuffled.peer, shuffled.request_id, shuffled.blocks)
    assert applied == 1 and error == "block at 3 does not extend head 1"
    assert s.driver.named("commit_group") == [("commit_group", (1,))]


@pytest.mark.parametrize(("failure", "hook"), [(None, "halt"), (OSError(5, "Input/output error"), "storage_failed")])
def test_a_group_commit_that_fails_halts_and_counts_only_what_is_durable(certified, failure, hook) -> None:
    from node.errors import NodeError

    s = Session(certified, reported=HEIGHTS)
    s.driver.failing_commit = failure or NodeError("state_root_mismatch", "planted by the test")
    # The hook kept heights 1 and 2 before it failed: they count, the rest does not.
    assert s.apply(_sync_batch(s, HEIGHTS)) == (2, "halted")
    assert s.chain.head.height == 2 and len(s.driver.named(hook)) == 1
    assert s.metrics.sync_blocks._value.get() == 2


def test_the_host_is_told_to_stop_executing_a_batch_that_was_abandoned(certified) -> None:
    s = Session(certified, reported=HEIGHTS)
    batch = _sync_batch(s, 4)
    assert s.catch_up.applying(batch.peer, batch.request_id)
    assert not s.catch_up.applying(batch.peer, batch.request_id + 1)
    s.driver.is_running = False
    assert not s.catch_up.applying(batch.peer, batch.request_id)
    s.driver.is_running = True
    s.catch_up.abandon()
    assert not s.catch_up.applying(batch.peer, batch.request_id)


def test_a_run_longer_than_the_store_takes_in_one_write_is_split(certified, monkeypatch) -> None:
    import node.validator.catch_up as catch_up_module

    monkeypatch.setattr(catch_up_module, "MAX_GROUP_COMMIT_BLOCKS", 3)
    s = Session(certified, reported=HEIGHTS)
    assert s.apply(_sync_batch(s, HEIGHTS)) == (HEIGHTS, None)
    assert [c[1] for c in s.driver.named("commit_group")] == [(1, 2, 3), (4, 5, 6), (7, 8)]
