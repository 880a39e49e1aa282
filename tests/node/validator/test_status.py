"""The driver's STATUS exchange (node/validator/status.py) through its own interface: the hooks it is given are the only
way it reaches the driver, so a recording fake driver shows exactly what a STATUS, a deadline or a commit asks for.
The peers' reports are a real PeerReports; the chain and the membership are fakes the tests set."""

from __future__ import annotations

import collections
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from node.chain.execution import ChainHead
from node.net.handshake import AUDIENCE_ALL, AUDIENCE_FULL
from node.net.messages import CH_NODE, Status, decode_node_message
from node.validator.catch_up import SYNC_LAG
from node.validator.effects import Broadcast, SendTo
from node.validator.membership import PeerReports
from node.validator.status import (
    STARTUP_WAIT_MS,
    STATUS_INTERVAL_MS,
    STUCK_BEHIND_MS,
    StatusExchange,
    StatusHooks,
)
from tests.node.validator.virtual_clock import VirtualClock

GENESIS = b"g" * 32
PEERS = ["node-1", "node-2", "node-3"]  # with this node, 4 validators of power 1: f + 1 = 2
HEAD = 10


class FakeChain:
    def __init__(self, height: int) -> None:
        self.head = ChainHead(b"h%d" % height, height, 0, b"\0" * 32)
        self.epochs = SimpleNamespace(validator_set=SimpleNamespace(weak_power=2))

    def move_to(self, height: int) -> None:
        self.head = ChainHead(b"h%d" % height, height, 0, b"\0" * 32)


class FakeDriver:
    """Records every hook call; `guarded` runs the step at once; the deadlines it sets are kept as the driver's."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.effects: list[Any] = []
        self.deadlines: dict[str, int] = {}
        self.mode = "consensus"
        self.replica = True
        self.catching_up = False

    def hooks(self) -> StatusHooks:
        def record(name: str):
            return lambda *args: self.calls.append((name, *args))

        def guarded(what: str, step, *args: Any) -> None:
            self.calls.append(("guarded", what))
            step(*args)

        return StatusHooks(
            emit=self.effects.append, mode=lambda: self.mode, has_replica=lambda: self.replica,
            catching_up=lambda: self.catching_up, start_consensus=record("start_consensus"),
            stop_consensus=record("stop_consensus"), catch_up=record("catch_up"), follow_soon=record("follow_soon"),
            guarded=guarded, status_at=lambda at: self.deadlines.update(status=at),
            startup_at=lambda at: self.deadlines.update(startup=at),
            cancel_startup=lambda: self.deadlines.pop("startup", None))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]


class Exchange:
    def __init__(self, *, signs: bool = True, full: frozenset[str] = frozenset(),
                 followers: tuple[str, ...] = ()) -> None:
        self.chain = FakeChain(HEAD)
        self.clock = VirtualClock()
        self.reports = PeerReports(GENESIS)
        self.members = SimpleNamespace(peer_ids=list(PEERS), power={p: 1 for p in PEERS},
                                       signing_keys=object() if signs else None, full_peer_ids=full,
                                       followers=lambda: list(followers))
        self.counters: collections.Counter[str] = collections.Counter()
        self.driver = FakeDriver()
        self.status = StatusExchange(self.chain, GENESIS, self.clock, self.members, self.reports,  # type: ignore[arg-type]
                                     self.counters, self.driver.hooks(), "node-0")

    def report(self, peer: str, height: int, genesis: bytes = GENESIS) -> None:
        self.status.on_status(peer, Status(genesis, height, b"x" * 32))

    def fell_behind(self) -> bool:
        return self.counters["fell_behind"] > 0


def _decoded(data: bytes) -> Status:
    assert data[0] == CH_NODE
    msg = decode_node_message(data[1:])
    assert isinstance(msg, Status)
    return msg


def test_f_plus_1_power_more_than_sync_lag_above_leaves_consensus_one_peer_does_not(caplog) -> None:
    x = Exchange()
    x.report("node-1", HEAD + SYNC_LAG + 100)  # one peer's word: the f+1 height is still 0
    assert not x.fell_behind() and x.driver.calls == []
    x.report("node-2", HEAD + SYNC_LAG)  # f+1 at exactly SYNC_LAG above: not yet (and not stuck: no time passed)
    assert x.status.target_height() == HEAD + SYNC_LAG and not x.fell_behind() and x.driver.calls == []
    with caplog.at_level(logging.WARNING, logger="node.validator.driver"):
        x.report("node-2", HEAD + SYNC_LAG + 1)
    assert x.counters["fell_behind"] == 1
    assert x.driver.calls == [("stop_consensus",), ("guarded", "resync"), ("catch_up", 0, "consensus")]
    [record] = [r for r in caplog.records if r.getMessage().startswith("fell_behind")]
    assert record.name == "node.validator.driver"
    assert record.getMessage().startswith(f"fell_behind node=node-0 height={HEAD} target={HEAD + SYNC_LAG + 1} "
                                          "stuck=False")


def test_stuck_below_the_f_plus_1_height_for_stuck_behind_ms_leaves_consensus() -> None:
    x = Exchange()
    x.report("node-1", HEAD + 2)
    x.report("node-2", HEAD + 2)  # f+1 two blocks ahead: the clock starts
    x.clock.now = 1_000
    x.chain.move_to(HEAD + 1)  # the head moved, still behind: the clock starts again
    x.status.maybe_fall_behind()
    x.clock.now = 1_000 + STUCK_BEHIND_MS - 1
    x.status.maybe_fall_behind()
    assert not x.fell_behind() and x.driver.calls == []
    x.clock.now = 1_000 + STUCK_BEHIND_MS
    x.status.maybe_fall_behind()
    assert x.counters["fell_behind"] == 1
    assert x.driver.calls == [("stop_consensus",), ("guarded", "resync"), ("catch_up", 0, "consensus")]
    # Back in consensus with the head unmoved (the catch-up found nothing): the clock starts again from now.
    x.driver.calls.clear()
    x.status.maybe_fall_behind()
    x.clock.now += STUCK_BEHIND_MS - 1
    x.status.maybe_fall_behind()
    assert x.counters["fell_behind"] == 1 and x.driver.calls == []
    x.clock.now += 1
    x.status.maybe_fall_behind()
    assert x.counters["fell_behind"] == 2


@pytest.mark.parametrize(("mode", "replica", "catching_up"), [
    ("consensus", True, True),  # a block sync session is under way
    ("syncing", True, False),
    ("following", True, False),
    ("consensus", False, False),  # no replica
])
def test_no_falling_behind_during_a_catch_up_outside_consensus_or_without_a_replica(mode, replica,
                                                                                   catching_up) -> None:
    x = Exchange()
    x.driver.mode, x.driver.replica, x.driver.catching_up = mode, replica, catching_up
    x.reports.heights.update({"node-1": (HEAD + SYNC_LAG + 5, 0), "node-2": (HEAD + 1, 0)})
    x.status.maybe_fall_behind()
    x.clock.now = STUCK_BEHIND_MS
    x.status.maybe_fall_behind()
    assert not x.fell_behind() and x.driver.calls == []
    # Nothing was counted meanwhile: back in consensus, being behind (not far) starts the clock from now.
    x.driver.mode, x.driver.replica, x.driver.catching_up = "consensus", True, False
    x.status.maybe_fall_behind()
    assert not x.fell_behind() and x.driver.calls == []
    x.clock.now = 2 * STUCK_BEHIND_MS
    x.status.maybe_fall_behind()
    assert x.counters["fell_behind"] == 1


def test_a_node_that_signs_nothing_targets_the_best_height_one_peer_reports() -> None:
    signing, following = Exchange(signs=True), Exchange(signs=False)
    for x in (signing, following):
        x.reports.heights["node-3"] = (HEAD + 40, 0)
    assert signing.status.target_height() == 0  # one peer's word is below f + 1 power
    assert following.status.target_height() == HEAD + 40 == following.status.best_height()
    assert signing.status.best_height() == HEAD + 40


def test_a_following_node_fetches_when_a_report_is_above_its_head() -> None:
    x = Exchange(signs=False)
    x.driver.mode, x.driver.replica = "following", False
    x.report("node-1", HEAD)
    assert x.driver.calls == []
    x.report("node-1", HEAD + 1)
    assert x.driver.calls == [("follow_soon",)]


@pytest.mark.parametrize(("reported", "decision"), [
    (HEAD + 2, [("guarded", "startup"), ("start_consensus",)]),
    (HEAD + 3, [("guarded", "startup"), ("catch_up", 0, "consensus")]),
])
def test_a_starting_node_decides_once_every_peer_reported(reported, decision) -> None:
    x = Exchange()
    x.driver.mode, x.driver.replica = "starting", False
    x.clock.now = 500
    x.status.start()
    assert x.driver.deadlines == {"status": 500, "startup": 500 + STARTUP_WAIT_MS}
    x.report("node-1", reported)
    x.report("node-2", reported)
    x.report("node-3", reported, genesis=b"o" * 32)  # another chain: not a report
    assert x.driver.calls == [] and "startup" in x.driver.deadlines
    x.report("node-3", reported)
    assert x.driver.calls == decision and "startup" not in x.driver.deadlines


def test_the_startup_deadline_decides_whoever_reported() -> None:
    x = Exchange()
    x.driver.mode, x.driver.replica = "starting", False
    x.report("node-1", HEAD + 50)
    x.report("node-2", HEAD + 50)
    assert x.driver.calls == []
    x.status.startup_timer()
    assert x.driver.calls == [("guarded", "startup"), ("catch_up", 0, "consensus")]


def test_the_status_timer_broadcasts_the_head_to_all_and_comes_back_after_the_interval() -> None:
    x = Exchange()
    x.clock.now = 7_000
    x.status.status_timer()
    [effect] = x.driver.effects
    assert isinstance(effect, Broadcast) and effect.audience == AUDIENCE_ALL
    assert _decoded(effect.data) == Status(GENESIS, HEAD, b"h%d" % HEAD)
    assert x.driver.deadlines == {"status": 7_000 + STATUS_INTERVAL_MS}


def test_a_peer_whose_link_comes_up_gets_the_head_at_once() -> None:
    x = Exchange()
    x.status.send_to("node-2")
    [effect] = x.driver.effects
    assert isinstance(effect, SendTo) and effect.peer == "node-2" and not effect.sync_request
    assert _decoded(effect.data) == Status(GENESIS, HEAD, b"h%d" % HEAD)


def test_announce_head_sends_nothing_when_nobody_follows() -> None:
    x = Exchange()
    x.status.announce_head()
    assert x.driver.effects == []


def test_announce_head_broadcasts_to_full_nodes_and_sends_to_each_follower() -> None:
    x = Exchange(full=frozenset({"full-1"}), followers=("node-5", "node-6"))
    x.status.announce_head()
    status = Status(GENESIS, HEAD, b"h%d" % HEAD)
    broadcast, *sent = x.driver.effects
    assert isinstance(broadcast, Broadcast) and broadcast.audience == AUDIENCE_FULL
    assert _decoded(broadcast.data) == status
    assert [(e.peer, _decoded(e.data)) for e in sent] == [("node-5", status), ("node-6", status)]
    followers_only = Exchange(followers=("node-5",))
    followers_only.status.announce_head()
    [effect] = followers_only.driver.effects
    assert isinstance(effect, SendTo) and effect.peer == "node-5"
