"""The payload-only application of `ledger bench consensus`: what the consensus orders is opaque, distinct,
fixed-size payloads (the research prototypes' own terms: 250-byte "transactions" no one signs or executes), and
what a validator keeps of it is a durable chain of certified blocks, exactly like the node's.

    chain = PayloadChain(store_dir, validator_set, consensus_chain_id, verifier, payload_bytes=250, max_payloads=...)
    chain.add(payloads, created_at)          this validator's own payloads enter its pool (a bounded queue)
    chain.propose(parent_id, height, now)     a block payload: up to max_payloads of the pool, concatenated
    chain.execute(block, parent_root)         its state root, or None for a malformed payload (the replica refuses it)
    chain.finalize(block, cert) -> (created, proposed_at)   the next height, its commit certificate checked; the
                                              creation times of this validator's payloads in it, when it proposed them
    chain.commit(block, cert)                 block + certificate + head in one synced LevelDB batch (store only: a
                                              host may run it on a writer thread, in height order)
    chain.close()

It honours the shape of node/chain/application.py (propose / execute / commit, the certified chain in LevelDB, one
synced batch per block) without the ledger: no signatures, no state tree, no mempool gossip. A payload is proposed
only by the validator that created it (each validator is a load source, as in the Dumbo and HoneyBadgerBFT
benchmarks); a proposal that loses its round gives its payloads back to the pool when a block at or above its height
commits, so nothing is lost. The state root chains the payloads: sha256(DOMAIN || parent root || payload hash).

Store layout (its own LevelDB directory):  b"b" || height(8) -> encode_block(block)
                                            b"c" || height(8) -> CommitCertificate.encode()
                                            b"h"              -> height(8) || block id || state root
"""

from __future__ import annotations

import collections
import hashlib
import os
import struct
import time
from dataclasses import dataclass
from typing import Final

import plyvel

from consensus.certificates import SignatureVerifier, check_commit_certificate
from consensus.messages import MAX_PAYLOAD_BYTES, Block, CommitCertificate, decode_block, encode_block
from consensus.validators import ValidatorSet
from node.errors import NodeError

__all__ = ["MAX_BLOCK_PAYLOADS", "MAX_POOL_PAYLOADS", "PAYLOAD_BYTES", "PayloadChain", "PayloadChainError", "payload_root"]

PAYLOAD_BYTES: Final = 250
# Payloads in one block at most: the consensus payload bound (4 MiB) in whole payloads.
MAX_BLOCK_PAYLOADS: Final = MAX_PAYLOAD_BYTES // PAYLOAD_BYTES
# This validator's payloads waiting for its next proposal, at most (more are refused: the load source backs off).
MAX_POOL_PAYLOADS: Final = 200_000
DOMAIN_STATE: Final = b"LEDGER-BENCH-PAYLOAD-STATE-V1"
_U64 = struct.Struct(">Q")


class PayloadChainError(NodeError):
    """The block store refused a commit (a height out of order, a certificate that does not verify)."""


def payload_root(parent_root: bytes, payload_hash: bytes) -> bytes:
    """The state after a block: the parent's root chained with the block's payload hash."""
    return hashlib.sha256(DOMAIN_STATE + parent_root + payload_hash).digest()


@dataclass(slots=True)
class _Proposed:
    height: int
    payloads: list[bytes]
    created: list[float]
    proposed_at: float


class PayloadChain:
    def __init__(self, path: str, validator_set: ValidatorSet, chain_id: bytes, verifier: SignatureVerifier, *,
                 payload_bytes: int = PAYLOAD_BYTES, max_payloads: int = 4_000, sync: bool = True) -> None:
        assert payload_bytes >= 16 and 1 <= max_payloads * payload_bytes <= MAX_PAYLOAD_BYTES
        os.makedirs(path, exist_ok=True)
        self._db = plyvel.DB(path, create_if_missing=True)
        self.vs = validator_set
        self.chain_id = chain_id
        self.verifier = verifier
        self.payload_bytes = payload_bytes
        self.max_payloads = max_payloads
        self.sync = sync
        self.height = 0
        self._pool: collections.deque[tuple[bytes, float]] = collections.deque()
        self._proposed: dict[bytes, _Proposed] = {}
        self.committed_payloads = 0
        self.committed_bytes = 0
        self.commit_write_s = 0.0

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    # -- this validator's load ---------------------------------------------------------------------------------

    @property
    def pool_size(self) -> int:
        return len(self._pool)

    @property
    def in_flight(self) -> int:
        return sum(len(p.payloads) for p in self._proposed.values())

    def add(self, payloads: list[bytes], created_at: float) -> int:
        """Queue this validator's new payloads (each exactly payload_bytes long); returns how many fit."""
        room = max(0, MAX_POOL_PAYLOADS - len(self._pool))
        for payload in payloads[:room]:
            assert len(payload) == self.payload_bytes
            self._pool.append((payload, created_at))
        return min(room, len(payloads))

    def propose(self, parent_id: bytes, height: int, now: float) -> bytes:
        """The payload of this validator's proposal at `height`: up to max_payloads of its pool, oldest first."""
        take = min(self.max_payloads, len(self._pool))
        items = [self._pool.popleft() for _ in range(take)]
        payloads = [p for p, _ in items]
        payload = b"".join(payloads)
        if items:
            self._proposed[payloads[0]] = _Proposed(height, payloads, [t for _, t in items], now)
        return payload

    # -- execution and commit ------------------------------------------------------------------------------------

    def execute(self, block: Block, parent_root: bytes) -> bytes | None:
        """The state root after `block`, or None when its payload is not a whole number of payloads within the
        limit (the block header already binds the payload by its hash)."""
        size = len(block.payload)
        if size % self.payload_bytes or size // self.payload_bytes > self.max_payloads:
            return None
        return payload_root(parent_root, block.header.payload_hash)

    def finalize(self, block: Block, cert: CommitCertificate) -> tuple[list[float], float | None]:
        """Accept a certified block as the next height (its commit certificate checked; nothing written yet: `commit`
        writes it). Returns the creation times of this validator's own payloads it carries, and when this
        validator proposed it (None: not its proposal); proposals of ours at or below its height that lost go back
        to the pool."""
        h = block.header.height
        if h != self.height + 1 or cert.block_id != block.id:
            raise PayloadChainError("commit_out_of_order", f"commit of height {h} on a chain at {self.height}")
        check_commit_certificate(self.vs, cert, chain_id=self.chain_id, verifier=self.verifier)
        self.height = h
        self.committed_payloads += len(block.payload) // self.payload_bytes
        self.committed_bytes += len(block.payload)
        # Payloads are distinct: a block of ours is known by its first payload.
        mine = self._proposed.pop(block.payload[:self.payload_bytes], None) if block.payload else None
        for key in [k for k, p in self._proposed.items() if p.height <= h]:
            self._requeue(self._proposed.pop(key))
        return ([], None) if mine is None else (mine.created, mine.proposed_at)

    def commit(self, block: Block, cert: CommitCertificate) -> None:
        """Write a finalized block: block, certificate and head in one synced batch. Touches only the store, so a
        host may run it on a writer thread (one at a time, in height order)."""
        h = block.header.height
        start = time.perf_counter()
        with self._db.write_batch(sync=self.sync) as wb:
            wb.put(b"b" + _U64.pack(h), encode_block(block))
            wb.put(b"c" + _U64.pack(h), cert.encode())
            wb.put(b"h", _U64.pack(h) + block.id + cert.state_root)
        self.commit_write_s += time.perf_counter() - start

    def _requeue(self, lost: _Proposed) -> None:
        """A proposal of ours that did not commit: its payloads go back to the front of the pool, oldest first."""
        self._pool.extendleft(reversed(list(zip(lost.payloads, lost.created, strict=True))))

    def stored_head(self) -> tuple[int, bytes, bytes] | None:
        raw = self._db.get(b"h")
        return None if raw is None else (_U64.unpack(raw[:8])[0], raw[8:40], raw[40:72])

    def stored_block_id(self, height: int) -> bytes | None:
        raw = self._db.get(b"b" + _U64.pack(height))
        return None if raw is None else decode_block(raw).id

    def stored_payloads(self) -> int:
        """Payloads in every stored block, read back from the store (what the benchmark reports as committed)."""
        return sum(len(decode_block(raw).payload) // self.payload_bytes for _, raw in self._db.iterator(prefix=b"b"))
