"""Recovery of a lost safety state within its epoch: the bound a wiped validator resumes above.

A validator whose safety state is gone (docs/consensus.md §10 "Lost safety state") may have signed votes, timeouts
and a proposal in rounds of the current epoch that nobody but one leader ever saw. It asks every other validator
for a *recovery statement* bound to a fresh nonce, and resumes signing once statements of a quorum of voting power
(itself excluded) are in and it holds a QC high enough to restore its lock (docs/consensus.md §13 proves it safe):

    recovery = Recovery(validator_set, me=index, nonce=fresh_random_32_bytes, anchor_round=anchor_qc.round)
    claim = check_statement(vs, chain_id, statement, sender=index_of_peer, me=..., nonce=..., anchor_round=...,
                            verifier=...)            # RecoveryError(code) for anything wrong; nothing changes then
    recovery.add(statement.responder, claim)
    recovery.bound   # None until a quorum answered; then R: no round above R can hold a signature of ours
    resume_state(epoch, bound, high_qc, high_tc)     # the SafetyState to persist before signing again

A responder's statement says: the highest round it signed a vote or timeout in (its persisted
`highest_vote_round`), and its highest QC and TC. Its *claim* is that round capped by the certificates it shows
(`min(highest_vote_round, max(certificate rounds, anchor_round) + 1)`): an honest responder's claim is always its
true `highest_vote_round` (it signed in round h only holding a certificate of round h - 1), while a Byzantine one
can claim nothing beyond the rounds the chain has actually reached. The requester's bound is
`max(max claims + 1, anchor_round + 1)`.

Pure functions and one small state object: no I/O, no clock, no randomness (the nonce is the caller's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consensus import bls
from consensus.certificates import SignatureVerifier, qc_ok, tc_ok
from consensus.errors import ConsensusError
from consensus.messages import (
    NONCE_SIZE,
    QuorumCert,
    RecoveryRequest,
    RecoveryStatement,
    SafetyState,
    TimeoutCert,
    recovery_message,
)
from consensus.validators import ValidatorSet

__all__ = [
    "MAX_RECOVERY_ANSWERS_PER_ROUND",
    "Recovery",
    "RecoveryError",
    "check_statement",
    "make_statement",
    "resume_state",
]

# Recovery statements one validator signs for one requester per round of its own; further requests are dropped
# (`dropped_recovery_rate_limited`). A recovering validator asks again at every expiry of its round timer.
MAX_RECOVERY_ANSWERS_PER_ROUND: Final = 2


class RecoveryError(ConsensusError):
    """A recovery request or statement refused; nothing changes. Codes (counted by the replica as `dropped_<code>`):"""

    WRONG_EPOCH: Final = "recovery_wrong_epoch"  # another epoch than the one being recovered / answered
    SPOOFED: Final = "recovery_spoofed"  # the responder (or requester) index is not the authenticated sender
    WRONG_REQUESTER: Final = "recovery_wrong_requester"  # a statement for another validator
    WRONG_NONCE: Final = "recovery_wrong_nonce"  # not bound to this recovery's nonce (replayed or stale)
    BAD_SIGNATURE: Final = "recovery_bad_signature"  # unsigned or forged
    BAD_CERTIFICATE: Final = "recovery_bad_certificate"  # its QC or TC does not verify in this epoch
    UNSOLICITED: Final = "recovery_unsolicited"  # this replica is not recovering
    DUPLICATE: Final = "recovery_duplicate"  # this responder already answered
    CANNOT_ANSWER: Final = "recovery_cannot_answer"  # an observer, a retired or a recovering replica has no bound
    RATE_LIMITED: Final = "recovery_rate_limited"  # MAX_RECOVERY_ANSWERS_PER_ROUND


def make_statement(
    vs: ValidatorSet,
    chain_id: bytes,
    request: RecoveryRequest,
    responder: int,
    safety: SafetyState,
    secret_key: bytes,
    backend: bls.BlsBackend,
) -> RecoveryStatement:
    """The signed statement of validator `responder`, whose (persisted) safety state is `safety`."""
    assert request.epoch == vs.epoch == safety.epoch and len(request.nonce) == NONCE_SIZE
    high_tc = safety.high_tc
    msg = recovery_message(
        chain_id,
        vs.epoch,
        request.requester,
        request.nonce,
        responder,
        safety.highest_vote_round,
        safety.high_qc.round,
        0 if high_tc is None else high_tc.round,
    )
    return RecoveryStatement(
        vs.epoch,
        request.requester,
        request.nonce,
        responder,
        safety.highest_vote_round,
        safety.high_qc,
        high_tc,
        backend.sign(secret_key, msg),
    )


def check_statement(
    vs: ValidatorSet,
    chain_id: bytes,
    statement: RecoveryStatement,
    *,
    sender: int,
    me: int,
    nonce: bytes,
    anchor_qc: QuorumCert,
    verifier: SignatureVerifier,
) -> int:
    """Verify a statement received from validator index `sender` by the recovering validator `me` (nonce `nonce`,
    anchored at `anchor_qc`) and return its claim: the responder's highest signed round, capped by the rounds of
    the certificates it shows. RecoveryError(code) if it must be refused."""
    s = statement
    if s.epoch != vs.epoch:
        raise RecoveryError(RecoveryError.WRONG_EPOCH, f"statement of epoch {s.epoch}, recovering {vs.epoch}")
    if s.responder != sender or s.responder >= len(vs):
        raise RecoveryError(RecoveryError.SPOOFED, f"statement names responder {s.responder}, sent by {sender}")
    if s.requester != me:
        raise RecoveryError(RecoveryError.WRONG_REQUESTER, f"statement for validator {s.requester}, not {me}")
    if s.nonce != nonce:
        raise RecoveryError(RecoveryError.WRONG_NONCE, "statement not bound to this recovery's nonce")
    msg = recovery_message(
        chain_id, vs.epoch, s.requester, s.nonce, s.responder, s.highest_vote_round, s.high_qc.round, s.high_tc_round
    )
    if not verifier.verify(vs.validators[s.responder].public_key, msg, s.signature):
        raise RecoveryError(RecoveryError.BAD_SIGNATURE, f"statement of validator {s.responder} does not verify")
    certified = anchor_qc.round
    qc = s.high_qc
    if qc.epoch > vs.epoch:
        raise RecoveryError(RecoveryError.BAD_CERTIFICATE, f"a QC of epoch {qc.epoch}")
    # A round-0 QC (genesis) is unsigned and shows nothing; neither does our own anchor's beyond its round.
    if qc.epoch == vs.epoch and qc.round > 0 and qc != anchor_qc:
        if not qc_ok(vs, chain_id, qc, verifier):
            raise RecoveryError(RecoveryError.BAD_CERTIFICATE, f"the QC of round {qc.round} does not verify")
        certified = max(certified, qc.round)
    # A QC of an earlier epoch (the one ending it: every replica of this epoch starts from it) shows no round of
    # this epoch; the anchor round covers it.
    tc = s.high_tc
    if tc is not None:
        if tc.epoch != vs.epoch or not tc_ok(vs, chain_id, tc, verifier):
            raise RecoveryError(RecoveryError.BAD_CERTIFICATE, f"the TC of round {tc.round} does not verify")
        certified = max(certified, tc.round)
    return min(s.highest_vote_round, certified + 1)


def resume_state(epoch: int, bound: int, high_qc: QuorumCert, high_tc: TimeoutCert | None) -> SafetyState:
    """The safety state a recovered validator persists before its next signature: nothing in rounds <= bound + 1
    (no vote there; a timeout only in a round above the bound; no proposal there), locked on its high QC, which must
    reach bound - 1 (the lock it may have held before the loss is below `bound`)."""
    assert high_qc.round >= bound - 1, "the lock is restored from a QC at least as high as any lost one"
    return SafetyState(epoch, bound + 1, high_qc.round, bound + 1, high_qc, high_tc)


@dataclass(slots=True)
class Recovery:
    """One recovery in progress: the nonce and the claims received, by responder index."""

    vs: ValidatorSet
    me: int
    nonce: bytes
    anchor_round: int
    claims: dict[int, int]

    def __init__(self, vs: ValidatorSet, *, me: int, nonce: bytes, anchor_round: int) -> None:
        assert len(nonce) == NONCE_SIZE and 0 <= me < len(vs)
        self.vs = vs
        self.me = me
        self.nonce = nonce
        self.anchor_round = anchor_round
        self.claims = {}

    def request(self) -> RecoveryRequest:
        return RecoveryRequest(self.vs.epoch, self.me, self.nonce)

    def add(self, responder: int, claim: int) -> None:
        if responder in self.claims:
            raise RecoveryError(RecoveryError.DUPLICATE, f"validator {responder} already answered")
        assert responder != self.me
        self.claims[responder] = claim

    def missing(self) -> list[int]:
        """The validators (indexes, ascending) that have not answered yet, this one excluded."""
        return [i for i in range(len(self.vs)) if i != self.me and i not in self.claims]

    @property
    def possible(self) -> bool:
        """Whether the other validators together hold a quorum of power (with one validator, or one holding more
        than f of the power, nobody can vouch for it: it waits for the next epoch)."""
        return self.vs.total_power - self.vs.power_of([self.me]) >= self.vs.quorum_power

    @property
    def bound(self) -> int | None:
        """None until statements of quorum power are in; then the highest round this validator can have signed in."""
        if self.vs.power_of(list(self.claims)) < self.vs.quorum_power:
            return None
        return max(max(self.claims.values(), default=0) + 1, self.anchor_round + 1)
