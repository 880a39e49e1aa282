"""The round timeline of one node: when each step of a consensus round happened here, kept in a bounded ring.

    timeline = RoundTimeline()                       # NodeMetrics(round_timeline=True) owns one (None: off)
    timeline.note(PROPOSED, height, round_, txs, payload_bytes)
    timeline.events(after=seq, limit=n)              # [(seq, t_us, kind, height, round, a, b), ...], oldest first

What it answers: where the time of a round goes under load (issue 14). A round is a serial chain -- the leader builds
a payload, sends the proposal, every validator receives it, executes it, writes its safety state, sends its vote; the
next leader forms the QC and proposes; every node commits two rounds later -- and this ring records each step with
the machine's monotonic clock in microseconds. On one machine (a local testnet, `ledger bench`) CLOCK_MONOTONIC is
shared by every process, so the timelines of all nodes line up: node/tools/round_report.py joins them into a
per-round breakdown (`ledger bench --timeline`). A node exposes its ring on the admin socket (`round_timeline`).

Events (`a`, `b` by kind):
    PAYLOAD_ASKED   the replica asked this leader for a payload (RequestPayload)
    PROPOSED        Application.propose returned: a = payload bytes, b = microseconds it took
    PROPOSAL_OUT    the proposal left (its Broadcast queued, after its PersistSafety): a = payload bytes
    PROPOSAL_IN     a proposal arrived from a peer: a = message bytes
    EXEC_ASKED      the replica asked to execute a block (Execute): a = payload bytes
    EXEC_DONE       the execution ended (noted at its end): a = wall microseconds on the execution thread,
                    b = that thread's CPU microseconds (pipelined host), or both the wall time (in the call)
    PERSIST         a PersistSafety written (one synced batch), its round the state's highest vote round (a vote's
                    or a timeout's round): a = microseconds, b = payload bytes of the blocks it
                    wrote (blocks staged before are not written again)
    STAGED          blocks written to the safety store while they execute (noted when any was written):
                    a = microseconds, b = payload bytes of the blocks staged
    VOTE_OUT        a vote sent to the next leader (after the PersistSafety before it)
    VOTE_IN         a vote arrived from a peer
    ROUND           the replica entered a round: a = 1 by a QC of the previous round, 0 by a TC (or at start)
    TIMEOUT         this node's round timer fired
    COMMIT          a block committed here (finalize + the synced batch; every path): a = microseconds, b = transactions

Bounded: the last MAX_EVENTS events, in flat int64 arrays (no object per event). Recording costs an array store; the
ring is never written to disk or logs.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from typing import Final

from consensus.messages import TAG_PROPOSAL, TAG_VOTE

__all__ = [
    "COMMIT",
    "EXEC_ASKED",
    "EXEC_DONE",
    "KINDS",
    "MAX_EVENTS",
    "PAYLOAD_ASKED",
    "PERSIST",
    "PROPOSAL_IN",
    "PROPOSAL_OUT",
    "PROPOSED",
    "ROUND",
    "STAGED",
    "TIMEOUT",
    "VOTE_IN",
    "VOTE_OUT",
    "RoundTimeline",
    "note_incoming",
]

PAYLOAD_ASKED: Final = 1
PROPOSED: Final = 2
PROPOSAL_OUT: Final = 3
PROPOSAL_IN: Final = 4
EXEC_ASKED: Final = 5
EXEC_DONE: Final = 6
PERSIST: Final = 7
VOTE_OUT: Final = 8
VOTE_IN: Final = 9
ROUND: Final = 10
TIMEOUT: Final = 11
COMMIT: Final = 12
STAGED: Final = 13
KINDS: Final = {
    PAYLOAD_ASKED: "payload_asked",
    PROPOSED: "proposed",
    PROPOSAL_OUT: "proposal_out",
    PROPOSAL_IN: "proposal_in",
    EXEC_ASKED: "exec_asked",
    EXEC_DONE: "exec_done",
    PERSIST: "persist",
    VOTE_OUT: "vote_out",
    VOTE_IN: "vote_in",
    ROUND: "round",
    TIMEOUT: "timeout",
    COMMIT: "commit",
    STAGED: "staged",
}
# Events kept (about 6 per round on a follower, 10 on a leader: the last ~5,000 rounds); 48 bytes each.
MAX_EVENTS: Final = 32_768
_FIELDS: Final = 6  # t_us, kind, height, round, a, b


class RoundTimeline:
    def __init__(self, clock_us: Callable[[], int] | None = None, capacity: int = MAX_EVENTS) -> None:
        assert capacity > 0
        self._clock_us = clock_us or (lambda: time.monotonic_ns() // 1_000)
        self.capacity = capacity
        self._ring = array("q", bytes(8 * _FIELDS * capacity))
        self.recorded = 0  # events ever noted; the sequence number of the next one

    def now_us(self) -> int:
        return self._clock_us()

    def note(
        self, kind: int, height: int = 0, round_: int = 0, a: int = 0, b: int = 0, *, at_us: int | None = None
    ) -> None:
        assert kind in KINDS
        base = (self.recorded % self.capacity) * _FIELDS
        ring = self._ring
        ring[base] = self._clock_us() if at_us is None else at_us
        ring[base + 1] = kind
        ring[base + 2] = height
        ring[base + 3] = round_
        ring[base + 4] = a
        ring[base + 5] = b
        self.recorded += 1

    def events(self, after: int = -1, limit: int = 8192) -> list[tuple[int, int, int, int, int, int, int]]:
        """The events with sequence numbers above `after` still kept, oldest first, at most `limit`:
        (seq, t_us, kind, height, round, a, b)."""
        first = max(after + 1, self.recorded - self.capacity, 0)
        last = min(self.recorded, first + max(0, limit))
        out = []
        ring = self._ring
        for seq in range(first, last):
            base = (seq % self.capacity) * _FIELDS
            out.append((seq, *ring[base : base + _FIELDS]))  # type: ignore[arg-type]
        return out  # type: ignore[return-value]


def note_incoming(timeline: RoundTimeline, body: bytes) -> None:
    """Note a consensus message from a peer if it is a proposal or a vote, from its first bytes (a msgpack array
    whose first element is the tag, consensus/messages.py) without decoding it."""
    if len(body) < 2 or body[0] & 0xF0 != 0x90:
        return
    if body[1] == TAG_PROPOSAL:
        timeline.note(PROPOSAL_IN, a=len(body))
    elif body[1] == TAG_VOTE:
        timeline.note(VOTE_IN)
