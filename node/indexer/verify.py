"""Verified, not trusted: what the indexer checks of every block before it writes a row of it.

The trust anchor is the genesis file. `ChainVerifier.verify(changes)` takes the node's answer to
GET /v1/blocks/{height}/changes and returns a VerifiedBlock, or raises IndexerError:

- the commit certificate verifies under the validator set of its epoch, reached from the genesis set by verified
  epoch-change proofs (consensus.certificates.verify_epoch_change, followed once per epoch and kept);
- the block bytes hash to the certified block id (so the header, the payload, its time and its transactions are the
  certified ones) at the expected height, extending the previous verified block;
- every receipt names a transaction of the payload at its position, and every balance change names a transaction
  that succeeded in this block (or the block's own step).

Receipts, events and balance changes are not hashed into the chain; their sums are checked against state proofs by
node/indexer/audit.py."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consensus.certificates import (
    CommitCertificateError,
    EpochChainError,
    check_commit_certificate,
    verify_epoch_change,
)
from consensus.codec import CodecError
from consensus.messages import Block, CommitCertificate, EpochChangeProof, decode_block
from consensus.validators import ValidatorSet, bitmap_indexes
from ledger.codec import decode
from ledger.schema import MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_TX_BYTES
from ledger.transaction import ENVELOPE, TxEnvelope, tx_id_of
from node.chain.payload import PayloadError, decode_payload
from node.chain.statement import TrustAnchor
from node.indexer import errors as x
from node.indexer.errors import IndexerError

__all__ = ["ChainVerifier", "VerifiedBlock"]

ZERO_TX = "0" * 64


@dataclass(frozen=True, slots=True)
class VerifiedBlock:
    height: int
    block_hash: bytes
    state_root: bytes
    time_ms: int
    epoch: int
    round: int
    proposer: str
    tx_ids: tuple[bytes, ...]
    signers: tuple[str, ...]
    signer_power: int
    certificate: bytes
    changes: dict[str, Any]  # the node's JSON, checked against the above


EpochSource = Callable[[int], Awaitable[Sequence[EpochChangeProof]]]  # proofs ending epochs >= e, oldest first


def _tx_id(raw: bytes) -> bytes:
    """A transaction's id: SHA-256 of the body bytes in its envelope (only the envelope is decoded: the id is all the
    indexer needs of the certified bytes). Bytes whose envelope does not decode: SHA-256 of the bytes, as the
    ledger's receipt names them (ledger.transition.apply_transaction); _check_receipts also accepts that form for an
    envelope whose body does not decode."""
    try:
        env: TxEnvelope = decode(ENVELOPE, raw, MAX_TX_BYTES)
    except ValueError:
        return hashlib.sha256(raw).digest()
    return tx_id_of(env.body)


class ChainVerifier:
    def __init__(self, anchor: TrustAnchor) -> None:
        self.anchor = anchor
        self.sets: dict[int, ValidatorSet] = {anchor.validator_set.epoch: anchor.validator_set}
        self.epoch_ends: dict[int, int] = {}  # epoch -> height of its epoch-ending block

    @property
    def latest_set(self) -> ValidatorSet:
        return self.sets[max(self.sets)]

    def follow(self, proofs: Sequence[EpochChangeProof]) -> list[ValidatorSet]:
        """Verify the proofs that continue the chain of known sets (others are skipped); the new sets."""
        new = []
        for proof in sorted(proofs, key=lambda p: p.epoch):
            if proof.epoch + 1 in self.sets or proof.epoch != max(self.sets):
                continue
            try:
                nxt = verify_epoch_change(self.sets[proof.epoch], proof, chain_id=self.anchor.consensus_chain_id)
            except EpochChainError as exc:
                raise IndexerError(
                    x.CERTIFICATE_INVALID, f"epoch-change proof of epoch {proof.epoch}: {exc}", proof.cert.height
                ) from None
            self.sets[nxt.epoch] = nxt
            self.epoch_ends[proof.epoch] = proof.cert.height
            new.append(nxt)
        return new

    async def verify(
        self, changes: dict[str, Any], expected_height: int, parent_hash: bytes | None, epoch_source: EpochSource
    ) -> VerifiedBlock:
        h = expected_height
        try:
            cert_hex = changes["certificate"]
            if type(cert_hex) is not str:
                raise IndexerError(x.CERTIFICATE_INVALID, "the node has no commit certificate for this block", h)
            cert = CommitCertificate.decode(bytes.fromhex(cert_hex))
            block: Block = decode_block(bytes.fromhex(changes["block"]))
        except (CodecError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, IndexerError):
                raise
            raise IndexerError(x.CERTIFICATE_INVALID, f"undecodable block or certificate: {exc}", h) from None
        if cert.height != h or block.header.height != h or changes.get("height") != h:
            raise IndexerError(x.BLOCK_INVALID, f"the node answered height {cert.height} for height {h}", h)
        if cert.epoch not in self.sets:
            self.follow(await epoch_source(max(self.sets)))
        vs = self.sets.get(cert.epoch)
        if vs is None:
            raise IndexerError(
                x.CERTIFICATE_INVALID,
                f"certificate of epoch {cert.epoch}: no verified epoch-change proof leads there",
                h,
            )
        try:
            check_commit_certificate(vs, cert, chain_id=self.anchor.consensus_chain_id)
        except CommitCertificateError as exc:
            raise IndexerError(x.CERTIFICATE_INVALID, f"commit certificate does not verify: {exc}", h) from None
        if block.id != cert.block_id:
            raise IndexerError(x.BLOCK_INVALID, "the block bytes are not the certified block", h)
        if parent_hash is not None and block.header.parent_id != parent_hash:
            raise IndexerError(x.BLOCK_INVALID, "the block does not extend the last indexed block", h)
        try:
            payload = decode_payload(block.payload, MAX_BLOCK_TXS, MAX_BLOCK_BYTES)
        except PayloadError as exc:
            raise IndexerError(x.BLOCK_INVALID, f"certified payload does not decode: {exc}", h) from None
        tx_ids = tuple(_tx_id(t) for t in payload.txs)
        self._check_receipts(changes, tx_ids, payload.txs, h)
        indexes = bitmap_indexes(cert.qc.signers)
        signers = tuple(vs.validators[i].id.decode() for i in indexes)
        proposer = vs.validators[block.header.proposer].id.decode() if block.header.proposer < len(vs) else "?"
        return VerifiedBlock(
            h,
            block.id,
            cert.state_root,
            payload.time_ms,
            block.header.epoch,
            block.header.round,
            proposer,
            tx_ids,
            signers,
            vs.power_of(indexes),
            bytes.fromhex(cert_hex),
            changes,
        )

    @staticmethod
    def _check_receipts(changes: dict[str, Any], tx_ids: tuple[bytes, ...], raws: Sequence[bytes], h: int) -> None:
        receipts = changes.get("receipts")
        moves = changes.get("balance_changes")
        if not isinstance(receipts, list) or not isinstance(moves, list):
            raise IndexerError(x.BLOCK_INVALID, "the node's answer has no receipts or balance changes", h)
        ok_ids = {ZERO_TX}
        last = -1
        for r in receipts:
            try:
                idx, tx_id, code = r["index"], r["tx_id"], r["code"]
                bad = (
                    type(idx) is not int
                    or not last < idx < len(tx_ids)
                    or (tx_ids[idx].hex() != tx_id and hashlib.sha256(raws[idx]).hexdigest() != tx_id)
                )
                bad = bad or type(code) is not int or r["height"] != h
            except (KeyError, TypeError):
                bad = True
            if bad:
                raise IndexerError(
                    x.BLOCK_INVALID, f"a receipt does not match the certified transactions: {r!r:.200}", h
                )
            last = idx
            if code == 0:
                ok_ids.add(tx_id)
        for m in moves:
            if not isinstance(m, dict) or m.get("tx_id") not in ok_ids:
                raise IndexerError(x.BLOCK_INVALID, f"a balance change names no successful transaction: {m!r:.200}", h)
