"""Leader election by reputation, from committed blocks only (DiemBFT v4 / Aptos "leader reputation").

Round-robin leaders (`ValidatorSet.leader`) give a crashed validator every n-th round: each of them times out, and
the rounds around it lose their certificates, so one validator down of four cost 99% of the throughput. Here the
leader of round r is a pure function of the epoch's validator set, r, and the committed chain:

    anchor(r)  = the highest committed block of this epoch whose round is <= r - EXCLUDE_ROUNDS
    window(r)  = the last WINDOW_BLOCKS committed blocks of this epoch, ending at anchor(r)
    active     = validators that proposed a block of the window or signed the QC in a window block's header
    inactive   = the others
    leader(r)  = round-robin over `active`, PROBE_EVERY times around, then one round for each inactive validator
                 (a probe: a validator that comes back proposes, is committed, and is active again)

and falls back to round-robin over every validator when the epoch has no committed block old enough (its first
rounds) or when anchor(r) is more than `fallback_rounds(n)` rounds old (the chain has not committed for a while:
round-robin is what the liveness argument of docs/consensus.md §7 rests on, so a window that happens to exclude an
honest validator cannot stall the chain). Why this keeps every honest node on the same leader, and why it is safe
and live: docs/consensus.md §4 "Leader election".

Everything here is a pure function of its arguments; `consensus/replica.py` finds the anchor and the window in its
committed chain and caches the answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from consensus.messages import BlockHeader
from consensus.validators import ValidatorSet, bitmap_indexes

# A round's leader is read from blocks committed at least this many rounds earlier: every honest replica taking part
# in round r has seen the certificates that commit them (a commit is known two rounds after its block).
EXCLUDE_ROUNDS: Final = 4
# Committed blocks in the window. Short, because until a validator that went down has left the window its rounds
# keep timing out; long enough that a live validator is rarely missing from all of it (a QC holds the first quorum
# of votes its leader received, so a live validator is missing from one QC about a third of the time, from three
# about 1 time in 27 -- and then it still proposes in its probe round and comes straight back).
WINDOW_BLOCKS: Final = 3
# Times around the active validators before each inactive validator gets one probe round.
PROBE_EVERY: Final = 100


@dataclass(frozen=True, slots=True)
class Reputation:
    """Who was active in a window of committed blocks (validator indexes of the epoch, ascending)."""

    active: tuple[int, ...]
    inactive: tuple[int, ...]

    def leader(self, round_: int) -> tuple[int, bool]:
        """The leader of `round_` under this reputation, and whether the round is a probe of an inactive one."""
        turns = PROBE_EVERY * len(self.active)
        position = round_ % (turns + len(self.inactive))
        if position < turns:
            return self.active[position % len(self.active)], False
        return self.inactive[position - turns], True


def fallback_rounds(n: int) -> int:
    """A round more than this many rounds past its anchor is led round-robin. It exceeds the rounds a healthy chain
    or one with a dead probe leader goes without a commit (2-5), so reputation stays on while commits happen."""
    return EXCLUDE_ROUNDS + 2 * n + 2


def reputation(validator_set: ValidatorSet, window: Iterable[BlockHeader]) -> Reputation:
    """Active validators of a window of committed headers of `validator_set`'s epoch: the proposers, and the signers
    of the QCs the headers carry (a QC of the previous epoch, in the epoch's first block, names another set and is
    skipped). A non-empty window always names a quorum (a QC's signers), so `active` is never empty."""
    epoch = validator_set.epoch
    seen: set[int] = set()
    for header in window:
        assert header.epoch == epoch, "the window holds blocks of one epoch"
        seen.add(header.proposer)
        if header.qc.epoch == epoch and header.qc.round > 0:
            seen.update(bitmap_indexes(header.qc.signers))
    n = len(validator_set)
    active = tuple(i for i in range(n) if i in seen)
    assert active, "a window without blocks has no reputation"
    return Reputation(active, tuple(i for i in range(n) if i not in seen))
