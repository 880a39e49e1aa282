"""Signature checks for votes, proposals, timeouts, QCs, TCs, commit certificates and equivocation evidence.

All checks are pure functions of (chain id, validator set, object) and go through a `SignatureVerifier`, which
remembers answers keyed by (public keys, message, signature). One verifier may be shared by many replicas in one
process (the simulator does): the answer to a BLS check depends only on its inputs, so sharing is sound and every
protocol decision still passes through a real verification the first time.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from consensus import bls
from consensus.codec import CodecError, pack, unpack
from consensus.errors import ConsensusError
from consensus.messages import (
    CommitCertificate,
    EpochChangeProof,
    Proposal,
    QuorumCert,
    Timeout,
    TimeoutCert,
    Vote,
    decode_message,
    encode_message,
    epoch_commitment,
    proposal_message,
    timeout_message,
    vote_message,
)
from consensus.validators import ValidatorSet, ValidatorSetError, bitmap_indexes

VERIFY_CACHE_SIZE: Final = 1 << 16


class SignatureVerifier:
    """BLS verification through a bounded memo table."""

    __slots__ = ("_cache", "_cache_size", "backend", "checks", "hits")

    def __init__(self, backend: bls.BlsBackend | None = None, cache_size: int = VERIFY_CACHE_SIZE) -> None:
        self.backend = backend or bls.get_backend()
        self._cache: dict[tuple[object, bytes, bytes], bool] = {}
        self._cache_size = cache_size
        self.checks = 0
        self.hits = 0

    def _remember(self, key: tuple[object, bytes, bytes], answer: bool) -> bool:
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = answer
        return answer

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, message, signature)
        answer = self._cache.get(key)
        if answer is not None:
            self.hits += 1
            return answer
        self.checks += 1
        return self._remember(key, self.backend.verify(public_key, message, signature))

    def verify_aggregate(self, public_keys: tuple[bytes, ...], message: bytes, signature: bytes) -> bool:
        key = (public_keys, message, signature)
        answer = self._cache.get(key)
        if answer is not None:
            self.hits += 1
            return answer
        self.checks += 1
        return self._remember(key, self.backend.fast_aggregate_verify(public_keys, message, signature))


_default_verifier: SignatureVerifier | None = None


def default_verifier() -> SignatureVerifier:
    global _default_verifier
    if _default_verifier is None:
        _default_verifier = SignatureVerifier()
    return _default_verifier


def vote_signature_ok(vs: ValidatorSet, chain_id: bytes, vote: Vote, verifier: SignatureVerifier) -> bool:
    if vote.epoch != vs.epoch or vote.voter >= len(vs) or vote.round == 0:
        return False
    msg = vote_message(chain_id, vote.epoch, vote.round, vote.block_id, vote.state_root)
    return verifier.verify(vs.validators[vote.voter].public_key, msg, vote.signature)


def proposal_signature_ok(vs: ValidatorSet, chain_id: bytes, proposal: Proposal, verifier: SignatureVerifier) -> bool:
    h = proposal.block.header
    if h.epoch != vs.epoch or h.proposer >= len(vs) or h.chain_id != chain_id:
        return False
    msg = proposal_message(chain_id, h.epoch, h.round, h.id)
    return verifier.verify(vs.validators[h.proposer].public_key, msg, proposal.signature)


def timeout_signature_ok(vs: ValidatorSet, chain_id: bytes, timeout: Timeout, verifier: SignatureVerifier) -> bool:
    if timeout.epoch != vs.epoch or timeout.author >= len(vs):
        return False
    msg = timeout_message(chain_id, timeout.epoch, timeout.round, timeout.high_qc.round)
    return verifier.verify(vs.validators[timeout.author].public_key, msg, timeout.signature)


def qc_ok(vs: ValidatorSet, chain_id: bytes, qc: QuorumCert, verifier: SignatureVerifier) -> bool:
    """A signed QC (round >= 1) of this epoch with a quorum of signers and a valid aggregate signature.
    Round-0 (genesis) QCs are never accepted here; the replica compares them to its own genesis QC."""
    if qc.epoch != vs.epoch or qc.round == 0:
        return False
    signers = vs.signers(qc.signers)
    if signers is None:
        return False
    keys, power = signers
    if power < vs.quorum_power:
        return False
    msg = vote_message(chain_id, qc.epoch, qc.round, qc.block_id, qc.state_root)
    return verifier.verify_aggregate(keys, msg, qc.signature)


def tc_ok(vs: ValidatorSet, chain_id: bytes, tc: TimeoutCert, verifier: SignatureVerifier) -> bool:
    """Disjoint signer groups, a quorum in total, each group's aggregate signature valid."""
    if tc.epoch != vs.epoch or tc.round == 0 or not tc.groups:
        return False
    seen: set[int] = set()
    total = 0
    previous = -1
    for group in tc.groups:
        if group.high_qc_round <= previous or group.high_qc_round >= tc.round:
            return False
        previous = group.high_qc_round
        signers = vs.signers(group.signers)
        if signers is None:
            return False
        indexes = bitmap_indexes(group.signers)
        if seen.intersection(indexes):
            return False
        seen.update(indexes)
        total += signers[1]
    if total < vs.quorum_power:
        return False
    for group in tc.groups:
        keys, _ = vs.signers(group.signers)  # type: ignore[misc]
        msg = timeout_message(chain_id, tc.epoch, tc.round, group.high_qc_round)
        if not verifier.verify_aggregate(keys, msg, group.signature):
            return False
    return True


# --------------------------------------------------------------------------------------------------------------
# Commit certificates


class CommitCertificateError(ConsensusError):
    """Why a commit certificate does not prove finality."""

    WRONG_EPOCH: Final = "commit_wrong_epoch"
    WRONG_CHAIN: Final = "commit_wrong_chain"
    TOO_SHORT: Final = "commit_too_short"
    BROKEN_CHAIN: Final = "commit_broken_chain"
    NOT_CONSECUTIVE: Final = "commit_rounds_not_consecutive"
    BAD_QC: Final = "commit_bad_qc"
    BAD_ROOT_QC: Final = "commit_bad_state_root_qc"


def check_commit_certificate(validator_set: ValidatorSet, cert: CommitCertificate, *, chain_id: bytes | None = None,
                             verifier: SignatureVerifier | None = None) -> None:
    """Raise CommitCertificateError unless `cert` proves that block `cert.block_id` at `cert.height` with state root
    `cert.state_root` is final in chain `chain_id` (default: the chain id in the headers) under `validator_set`."""
    verifier = verifier or default_verifier()
    headers = cert.headers
    E = CommitCertificateError
    if len(headers) < 2:
        raise E(E.TOO_SHORT, "need the block and at least its certified child")
    chain = headers[0].chain_id if chain_id is None else chain_id
    for h in headers:
        if h.chain_id != chain:
            raise E(E.WRONG_CHAIN, "header of another chain")
        if h.epoch != validator_set.epoch:
            raise E(E.WRONG_EPOCH, f"header of epoch {h.epoch}, validator set of epoch {validator_set.epoch}")
    if cert.qc.epoch != validator_set.epoch:
        raise E(E.WRONG_EPOCH, "QC of another epoch")
    for parent, child in itertools.pairwise(headers):
        pid = parent.id
        if child.parent_id != pid or child.qc.block_id != pid or child.height != parent.height + 1:
            raise E(E.BROKEN_CHAIN, f"header at height {child.height} does not extend its predecessor")
        if child.qc.round != parent.round or child.round <= parent.round:
            raise E(E.BROKEN_CHAIN, "QC round does not match the parent round")
    committed, child = headers[-2], headers[-1]
    if child.round != committed.round + 1:
        raise E(E.NOT_CONSECUTIVE, "the last two headers are not in consecutive rounds")
    if cert.qc.block_id != child.id or cert.qc.round != child.round:
        raise E(E.BAD_QC, "the QC does not certify the last header")
    if not qc_ok(validator_set, chain, cert.qc, verifier):
        raise E(E.BAD_QC, "the QC on the last header does not verify")
    if not qc_ok(validator_set, chain, headers[1].qc, verifier):
        raise E(E.BAD_ROOT_QC, "the QC binding the block's state root does not verify")


def verify_commit_certificate(validator_set: ValidatorSet, cert: CommitCertificate, *, chain_id: bytes | None = None,
                              verifier: SignatureVerifier | None = None) -> bool:
    """True iff `cert` proves the block at `cert.height` with state root `cert.state_root` is final."""
    try:
        check_commit_certificate(validator_set, cert, chain_id=chain_id, verifier=verifier)
    except CommitCertificateError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------------
# Epoch changes: from the genesis validator set to any later one


class EpochChainError(ConsensusError):
    """Why a chain of epoch-change proofs does not lead from the trusted set to a later one."""

    WRONG_EPOCH: Final = "epoch_proof_wrong_epoch"
    BAD_CERT: Final = "epoch_proof_bad_certificate"
    NOT_EPOCH_ENDING: Final = "epoch_proof_not_epoch_ending"
    BAD_NEXT_SET: Final = "epoch_proof_bad_next_set"
    TOO_LONG: Final = "epoch_proof_too_long"


MAX_EPOCH_CHAIN: Final = 1 << 16


def verify_epoch_change(validator_set: ValidatorSet, proof: EpochChangeProof, *, chain_id: bytes | None = None,
                        verifier: SignatureVerifier | None = None) -> ValidatorSet:
    """The validator set of epoch `validator_set.epoch + 1` if `proof` shows that epoch `validator_set.epoch` ended
    with it; raise EpochChainError otherwise.

    Checks: the commit certificate verifies under `validator_set` (so its first header is final, with state root R);
    its last QC -- signed by a quorum of the old epoch on a block of the reconfiguration suffix -- has state root
    `epoch_commitment(block id, R, digest(next set))`, which honest replicas only vote for after their application declared
    that block epoch-ending with exactly this next set; the next set is admissible (PoPs, no duplicates)."""
    E = EpochChainError
    epoch = validator_set.epoch
    if proof.epoch != epoch:
        raise E(E.WRONG_EPOCH, f"proof ends epoch {proof.epoch}, expected {epoch}")
    try:
        check_commit_certificate(validator_set, proof.cert, chain_id=chain_id, verifier=verifier)
    except CommitCertificateError as exc:
        raise E(E.BAD_CERT, f"epoch {epoch}: {exc.message} ({exc.code})") from None
    backend = (verifier or default_verifier()).backend
    try:
        next_set = ValidatorSet(epoch + 1, proof.next_validators, backend=backend)
    except ValidatorSetError as exc:
        raise E(E.BAD_NEXT_SET, f"epoch {epoch + 1}: {exc.message} ({exc.code})") from None
    if proof.cert.qc.state_root != epoch_commitment(proof.cert.block_id, proof.cert.state_root, next_set.digest):
        raise E(E.NOT_EPOCH_ENDING, f"epoch {epoch}: the certified block does not end the epoch with this set")
    return next_set


def verify_epoch_chain(genesis_set: ValidatorSet, proofs: Sequence[EpochChangeProof], *,
                       chain_id: bytes | None = None, verifier: SignatureVerifier | None = None) -> ValidatorSet:
    """Follow `proofs` (oldest first, consecutive epochs starting at `genesis_set.epoch`) from the trusted
    `genesis_set` and return the validator set of the last epoch reached (`genesis_set` itself if `proofs` is
    empty). Pure apart from the verification cache; raises EpochChainError (with `.code`; the message names the epoch)."""
    if len(proofs) > MAX_EPOCH_CHAIN:
        raise EpochChainError(EpochChainError.TOO_LONG, f"more than {MAX_EPOCH_CHAIN} epoch changes")
    current = genesis_set
    for proof in proofs:
        current = verify_epoch_change(current, proof, chain_id=chain_id, verifier=verifier)
    return current


# --------------------------------------------------------------------------------------------------------------
# Equivocation evidence


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two validly signed, conflicting messages of one validator in one round (two proposals or two votes)."""

    KIND_PROPOSAL = 1
    KIND_VOTE = 2

    kind: int
    validator: int
    epoch: int
    round: int
    first: bytes
    second: bytes

    def encode(self) -> bytes:
        return pack([self.kind, self.validator, self.epoch, self.round, self.first, self.second])

    @staticmethod
    def decode(data: bytes) -> Evidence:
        from consensus.codec import Fields
        from consensus.messages import MAX_MESSAGE_BYTES

        f = Fields(unpack(data, 2 * MAX_MESSAGE_BYTES + 64), 6, "Evidence")
        return Evidence(f.uint(2), f.uint(1023), f.uint(), f.uint(), f.raw(), f.raw())


def make_proposal_evidence(a: Proposal, b: Proposal) -> Evidence:
    h = a.block.header
    return Evidence(Evidence.KIND_PROPOSAL, h.proposer, h.epoch, h.round, encode_message(a), encode_message(b))


def make_vote_evidence(a: Vote, b: Vote) -> Evidence:
    return Evidence(Evidence.KIND_VOTE, a.voter, a.epoch, a.round, encode_message(a), encode_message(b))


def verify_evidence(vs: ValidatorSet, chain_id: bytes, evidence: Evidence,
                    verifier: SignatureVerifier | None = None) -> bool:
    """True iff the evidence holds two different messages, both validly signed by `evidence.validator`,
    for the same epoch and round."""
    verifier = verifier or default_verifier()
    try:
        a, b = decode_message(evidence.first), decode_message(evidence.second)
    except CodecError:
        return False
    if a == b:
        return False
    if evidence.kind == Evidence.KIND_PROPOSAL and isinstance(a, Proposal) and isinstance(b, Proposal):
        ha, hb = a.block.header, b.block.header
        return (ha.proposer == hb.proposer == evidence.validator and ha.round == hb.round == evidence.round
                and ha.epoch == hb.epoch == evidence.epoch and ha.id != hb.id
                and proposal_signature_ok(vs, chain_id, a, verifier) and proposal_signature_ok(vs, chain_id, b, verifier))
    if evidence.kind == Evidence.KIND_VOTE and isinstance(a, Vote) and isinstance(b, Vote):
        return (a.voter == b.voter == evidence.validator and a.round == b.round == evidence.round
                and a.epoch == b.epoch == evidence.epoch and (a.block_id, a.state_root) != (b.block_id, b.state_root)
                and vote_signature_ok(vs, chain_id, a, verifier) and vote_signature_ok(vs, chain_id, b, verifier))
    return False
