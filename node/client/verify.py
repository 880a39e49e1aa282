"""Offline checks a client can run on what a node hands out, trusting only the genesis file:

    verify_certificate(cert_hex, genesis, epoch_proofs=()) -> (height, block_id, state_root)
                                                                              a commit certificate of any epoch
    verify_state_proof(root, key, value, proof_json) -> bool                  one state proof (docs/state-proofs.md)
    verify_statement(doc, genesis) -> StatementVerdict                        a custody statement (node/chain/statement.py)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consensus.certificates import (
    CommitCertificateError,
    EpochChainError,
    check_commit_certificate,
    verify_epoch_chain,
)
from consensus.codec import CodecError
from consensus.messages import CommitCertificate, EpochChangeProof
from ledger.smt import StateProof, StateProofError, verify_proof
from node.chain.statement import TrustAnchor
from node.client.errors import ClientError

__all__ = ["verify_certificate", "verify_state_proof"]


def verify_certificate(cert: str | bytes, genesis: Any, epoch_proofs: Sequence[Any] = ()) -> tuple[int, bytes, bytes]:
    """Check a commit certificate (hex or bytes) trusting only the genesis file; its (height, block id, state root)
    when it proves finality, else ClientError("certificate_invalid") with the consensus code as `reason`.

    A certificate of epoch k > 0 needs the k epoch-change proofs that lead there from the genesis set (hex, bytes or
    EpochChangeProof, oldest first: `client.epoch_proofs()`, GET /v1/epochs); they are followed with
    `verify_epoch_chain` and the certificate is checked with the set reached. Extra proofs beyond the certificate's
    epoch are ignored."""
    anchor = TrustAnchor.from_genesis(genesis)
    try:
        raw = bytes.fromhex(cert) if isinstance(cert, str) else bytes(cert)
        decoded = CommitCertificate.decode(raw)
        proofs = [_proof(p) for p in epoch_proofs]
        proofs = [p for p in proofs if p.epoch < decoded.epoch]
        vs = verify_epoch_chain(anchor.validator_set, proofs, chain_id=anchor.consensus_chain_id)
        if vs.epoch != decoded.epoch:
            raise CommitCertificateError(
                CommitCertificateError.WRONG_EPOCH,
                f"the certificate is of epoch {decoded.epoch}; the proofs reach epoch {vs.epoch}",
            )
        check_commit_certificate(vs, decoded, chain_id=anchor.consensus_chain_id)
    except ValueError as exc:  # bad hex, CodecError, CommitCertificateError and EpochChainError are all ValueErrors
        code = exc.code if isinstance(exc, CodecError | CommitCertificateError | EpochChainError) else "bad_hex"
        raise ClientError("certificate_invalid", str(exc), {"reason": code}) from None
    return decoded.height, decoded.block_id, decoded.state_root


def _proof(item: Any) -> EpochChangeProof:
    if isinstance(item, EpochChangeProof):
        return item
    return EpochChangeProof.decode(bytes.fromhex(item) if isinstance(item, str) else bytes(item))


def verify_state_proof(root: bytes | str, key: bytes | str, value: bytes | str | None, proof: Any) -> bool:
    """True iff `proof` (JSON form or StateProof) shows `key` -> `value` (None: absent) under `root`. Total."""
    try:
        r = bytes.fromhex(root) if isinstance(root, str) else root
        k = bytes.fromhex(key) if isinstance(key, str) else key
        v = bytes.fromhex(value) if isinstance(value, str) else value
        p = proof if isinstance(proof, StateProof) else StateProof.from_json(proof)
    except (ValueError, StateProofError):
        return False
    return verify_proof(r, k, v, p)
