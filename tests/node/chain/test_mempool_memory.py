"""The mempool's bounds hold in memory, not only in counts: filled to its limits it answers MEMPOOL_FULL (busy,
retry), stores nothing more, and the memory it really holds (tracemalloc) stays under `max_memory_bytes`, even for
transactions whose decoded form is ~20x their encoded size."""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
from collections.abc import Sequence

from nacl.signing import SigningKey

from ledger import operations as o
from ledger.genesis import GenesisAccount, GenesisSpec, genesis_changes
from ledger.schema import MAX_TX_BYTES
from ledger.state import MemoryState
from ledger.transaction import TxBody, sign_transaction
from node.chain.mempool import MEMPOOL_FULL, Mempool, MempoolLimits, pool_memory
from node.chain.protocol import OPERATIONS
from node.chain.sigverify import Ed25519Verifier

CHAIN = "memory-chain"
HEIGHT = 10
SIGNERS = tuple(f"user-{i:02d}@bank-a" for i in range(12))


def _key(name: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"mempool-memory/{name}".encode()).digest())


def _state() -> MemoryState:
    accounts = tuple(
        GenesisAccount(name, (bytes(_key(name).verify_key),), 1, ("admin",) if i == 0 else ())
        for i, name in enumerate(SIGNERS)
    )
    state = MemoryState()
    state.apply(genesis_changes(GenesisSpec(CHAIN, 1_700_000_000, (("bank-a", "Bank A"),), accounts)))
    return state


def _tx(signer: str, nonce: int, ops: int = 1, legs: int = 1, to: str = "user-00@bank-a") -> bytes:
    transfers = tuple(o.Transfer(signer, "CASH", tuple(o.TransferLeg(to, 1) for _ in range(legs))) for _ in range(ops))
    body = TxBody(1, CHAIN, (signer,), nonce, HEIGHT + 50, transfers)
    return sign_transaction(body, [(signer, _key(signer))], operations=OPERATIONS).to_bytes()


def _submit(pool: Mempool, raws: Sequence[bytes]) -> list[int]:
    out: list[int] = []
    for k in range(0, len(raws), pool.limits.max_batch):
        out += [r.code for r in pool.submit_many_now(raws[k : k + pool.limits.max_batch])]
    return out


def _held(pool: Mempool) -> tuple[int, int, int, int]:
    stats = pool.stats()
    return len(pool), pool.bytes_used, pool.memory_used, stats.verifying


def test_default_limits_hold_with_a_full_pool_of_transfers() -> None:
    """The node's default pool (20,000 transfers) fills, then refuses with MEMPOOL_FULL and keeps nothing more."""
    limits = MempoolLimits()
    pool = Mempool(CHAIN, _state(), HEIGHT, Ed25519Verifier(workers=0), limits)
    per_signer = limits.max_txs // len(SIGNERS) + 200  # more than the pool holds, within the lane cap
    assert per_signer <= limits.max_txs_per_account
    raws = [_tx(signer, n) for n in range(per_signer) for signer in SIGNERS]
    codes = _submit(pool, raws)
    assert codes.count(0) == limits.max_txs
    assert set(codes[limits.max_txs :]) == {MEMPOOL_FULL}
    assert len(pool) == limits.max_txs and pool.stats().verifying == 0
    assert pool.bytes_used <= limits.max_bytes and pool.memory_used <= limits.max_memory_bytes
    # A full pool stays as it is: more submissions are refused (busy, retry) and change nothing.
    held = _held(pool)
    more = [_tx(signer, 10_000 + n) for n in range(20) for signer in SIGNERS]
    results = pool.submit_many_now(more)
    assert all(r.code == MEMPOOL_FULL and r.retry for r in results)
    assert _held(pool) == held


def test_memory_bound_holds_for_transactions_that_decode_large() -> None:
    """Legs to 3-character accounts decode to ~20x their bytes: the memory bound, not the byte bound, stops them,
    and what the pool really holds (traced) stays under it; refused submissions leave nothing behind."""
    limits = MempoolLimits(max_memory_bytes=4 << 20)
    pool = Mempool(CHAIN, _state(), HEIGHT, Ed25519Verifier(workers=0), limits)
    raws = [_tx(SIGNERS[n % len(SIGNERS)], n, ops=32, legs=64, to="a@b") for n in range(24)]
    assert len(raws[0]) <= MAX_TX_BYTES and sum(map(len, raws)) < limits.max_bytes  # the byte bound would admit all
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        codes = _submit(pool, raws)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        admitted = codes.count(0)
        assert 0 < admitted < len(raws) and set(codes[admitted:]) == {MEMPOOL_FULL}
        assert pool.memory_used <= limits.max_memory_bytes
        assert pool.memory_used + pool_memory(1, len(raws[0])) > limits.max_memory_bytes  # full by this bound
        # The estimate covers the real memory: decoded transactions and indexes (traced) plus the bytes themselves
        # (allocated before tracing started).
        real = grown + sum(len(r) + 33 for r in raws[:admitted])
        assert real <= pool.memory_used <= limits.max_memory_bytes
        # Refused submissions leave nothing behind: not in the pool, not in a cache.
        held = _held(pool)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            assert set(_submit(pool, raws[admitted:])) == {MEMPOOL_FULL}
        gc.collect()
        assert tracemalloc.get_traced_memory()[0] - before < 64 * 1024
        assert _held(pool) == held
    finally:
        tracemalloc.stop()
