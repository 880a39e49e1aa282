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

and is round-robin over every validator when the replica cannot be sure of anchor(r): when its committed chain does
not reach round r - EXCLUDE_ROUNDS (a later commit it has not learned of yet could be the anchor), or the epoch has
no committed block old enough (its first rounds). So while the chain commits, every replica elects from the same
committed blocks; when it stops committing for EXCLUDE_ROUNDS rounds, every replica is back on round-robin, which
the liveness argument of docs/consensus.md §7 rests on (a window that happens to exclude an honest validator cannot
stall the chain). Why this keeps every honest node on the same leader, and why it is safe and live:
docs/consensus.md §4 "Leader election".

Everything here is a pure function of its arguments; `consensus/replica.py` finds the anchor and the window in its
committed chain and caches the answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from consensus.messages import BlockHeader
from consensus.validators import ValidatorSet, bitmap_indexes

# A round's leader is read from blocks committed at least this many rounds earlier, by a replica whose committed chain
# reaches that far. A commit is known two rounds after its block on the happy path, three to five rounds after it
# when a probe round (or two next to each other) failed in between: six keeps the election on reputation there.
EXCLUDE_ROUNDS: Final = 6
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
