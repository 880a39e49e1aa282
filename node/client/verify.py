"""Offline checks a client can run on what a node hands out, trusting only the genesis file:

    verify_certificate(cert_hex, genesis) -> (height, block_id, state_root)   a commit certificate
    verify_state_proof(root, key, value, proof_json) -> bool                  one state proof (docs/state-proofs.md)
    verify_statement(doc, genesis) -> StatementVerdict                        a custody statement (node/statement.py)
"""

from __future__ import annotations

from typing import Any

from consensus.certificates import CommitCertificateError, check_commit_certificate
from consensus.codec import CodecError
from consensus.messages import CommitCertificate
from ledger.smt import StateProof, StateProofError, verify_proof
from node.client.errors import ClientError
from node.statement import TrustAnchor

__all__ = ["verify_certificate", "verify_state_proof"]


def verify_certificate(cert: str | bytes, genesis: Any) -> tuple[int, bytes, bytes]:
    """Check a commit certificate (hex or bytes) against the genesis validator set; its (height, block id, state
    root) when it proves finality, else ClientError("certificate_invalid") with the consensus code."""
    anchor = TrustAnchor.from_genesis(genesis)
    try:
        raw = bytes.fromhex(cert) if isinstance(cert, str) else bytes(cert)
        decoded = CommitCertificate.decode(raw)
        check_commit_certificate(anchor.validator_set, decoded, chain_id=anchor.consensus_chain_id)
    except ValueError as exc:  # bad hex, CodecError and CommitCertificateError are all ValueErrors
        code = exc.code if isinstance(exc, CodecError | CommitCertificateError) else "bad_hex"
        raise ClientError("certificate_invalid", str(exc), {"reason": code}) from None
    return decoded.height, decoded.block_id, decoded.state_root


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
