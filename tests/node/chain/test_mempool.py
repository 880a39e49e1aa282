"""node.chain.mempool: admission codes, dedup, limits and backpressure, fairness, reaping, removal, pruning, gossip."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from ledger import codes
from ledger import operations as o
from ledger.genesis import GenesisAccount, GenesisSpec, genesis_changes
from ledger.records import TxSeen
from ledger.schema import MAX_TX_BYTES, MAX_TX_LIFETIME
from ledger.state import MemoryState, encode_value
from ledger.state_keys import tx_seen_key
from ledger.transaction import Signature, SignedTransaction, TxBody, sign_transaction
from node.chain.mempool import (
    MEMPOOL_ACCOUNT_FULL,
    MEMPOOL_FULL,
    TX_ALREADY_PENDING,
    Admission,
    Mempool,
    MempoolLimits,
)
from node.chain.protocol import OPERATIONS
from node.chain.sigverify import Ed25519Verifier, VerifyItem

CHAIN = "test-chain"
HEIGHT = 10


def sk(name: str, i: int = 0) -> SigningKey:
    return SigningKey(hashlib.sha256(f"mempool/{name}/{i}".encode()).digest())


def pk(name: str, i: int = 0) -> bytes:
    return bytes(sk(name, i).verify_key)


ACCOUNTS = {
    "admin@bank-a": 1,
    "alice@bank-a": 1,
    "bob@bank-b": 1,
    "carol@bank-b": 1,
    "multi@bank-b": 3,  # 2 of 3
}


def genesis_state() -> MemoryState:
    accounts = tuple(
        GenesisAccount(
            name,
            tuple(pk(name, i) for i in range(n)),
            2 if n == 3 else 1,
            ("admin",) if name.startswith("admin") else (),
        )
        for name, n in ACCOUNTS.items()
    )
    spec = GenesisSpec(CHAIN, 1_700_000_000, (("bank-a", "Bank A"), ("bank-b", "Bank B")), accounts)
    state = MemoryState()
    state.apply(genesis_changes(spec))
    return state


def make_tx(
    signer: str,
    nonce: int,
    *,
    expiry: int = HEIGHT + 50,
    chain: str = CHAIN,
    key_indexes: Sequence[int] = (0,),
    signers: Sequence[str] | None = None,
    memo_legs: int = 1,
) -> SignedTransaction:
    names = tuple(sorted(signers or (signer,)))
    legs = tuple(o.TransferLeg("bob@bank-b", 1 + i) for i in range(memo_legs))
    body = TxBody(1, chain, names, nonce, expiry, (o.Transfer(signer, "BOND-A", legs),))
    return sign_transaction(body, [(n, sk(n, i)) for n in names for i in key_indexes], operations=OPERATIONS)


def raw(signer: str, nonce: int, **kw: object) -> bytes:
    return make_tx(signer, nonce, **kw).to_bytes()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def verifier() -> Iterator[Ed25519Verifier]:
    v = Ed25519Verifier(workers=2, batch_size=16)
    v.warm_up()
    yield v
    v.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, verifier: Ed25519Verifier, limits: MempoolLimits | None = None) -> None:
        self.state = genesis_state()
        self.gossip: list[tuple[bytes, bytes, str | None]] = []
        self.clock = Clock()
        self.pool = Mempool(
            CHAIN,
            self.state,
            HEIGHT,
            verifier,
            limits,
            on_admitted=lambda tx_id, data, origin: self.gossip.append((tx_id, data, origin)),
            clock=self.clock,
        )

    def submit(self, data: bytes, origin: str | None = None) -> Admission:
        return asyncio.run(self.pool.submit(data, origin))

    def submit_many(self, datas: Sequence[bytes], origin: str | None = None) -> list[Admission]:
        return asyncio.run(self.pool.submit_many(datas, origin))

    def snapshot(self) -> tuple[int, int, int]:
        s = self.pool.stats()
        return s.txs, s.bytes, s.verifying


@pytest.fixture
def h(verifier: Ed25519Verifier) -> Harness:
    return Harness(verifier)


# -- admission -----------------------------------------------------------------------------------------------------


def test_admits_a_valid_transaction(h: Harness) -> None:
    tx = make_tx("alice@bank-a", 1)
    data = tx.to_bytes()
    result = h.submit(data)
    assert result.ok and result.code == 0 and result.tx_id == tx.tx_id and not result.retry
    assert len(h.pool) == 1 and tx.tx_id in h.pool and h.pool.get(tx.tx_id) == data
    assert h.pool.bytes_used == len(data)
    assert h.pool.is_verified(data) and not h.pool.is_verified(raw("alice@bank-a", 2))


def test_admits_a_multisig_transaction_meeting_its_threshold(h: Harness) -> None:
    assert h.submit(raw("multi@bank-b", 1, key_indexes=(0, 2))).ok


def bad_signature_tx() -> bytes:
    good = make_tx("alice@bank-a", 7)
    other = make_tx("alice@bank-a", 8)
    forged = Signature("alice@bank-a", pk("alice@bank-a"), other.signatures[0].signature)
    return SignedTransaction(good.body, good.body_bytes, (forged,), good.tx_id).to_bytes()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xc1", codes.MALFORMED),
        (b"", codes.MALFORMED),
        (raw("alice@bank-a", 1) + b"\x00", codes.TRAILING_BYTES),
        (b"\x00" * (MAX_TX_BYTES + 1), codes.TX_TOO_LARGE),
        (raw("alice@bank-a", 1, chain="other-chain"), codes.WRONG_CHAIN),
        (raw("alice@bank-a", 1, expiry=HEIGHT), codes.TX_EXPIRED),
        (raw("alice@bank-a", 1, expiry=HEIGHT + 2 + MAX_TX_LIFETIME), codes.TX_EXPIRY_TOO_FAR),
        (raw("dave@bank-a", 1), codes.SIGNER_NOT_FOUND),
        (bad_signature_tx(), codes.BAD_SIGNATURE),
        (raw("multi@bank-b", 1, key_indexes=(1,)), codes.THRESHOLD_NOT_MET),
        (raw("alice@bank-a", 1, key_indexes=(1,)), codes.UNKNOWN_SIGNING_KEY),
    ],
    ids=[
        "malformed",
        "empty",
        "trailing",
        "too-large",
        "wrong-chain",
        "expired",
        "expiry-too-far",
        "unknown-account",
        "bad-signature",
        "below-threshold",
        "unknown-key",
    ],
)
def test_rejects_each_bad_case_with_its_code(h: Harness, data: bytes, code: int) -> None:
    result = h.submit(data)
    assert result.code == code, result
    assert not result.ok and not result.retry and result.message
    assert h.snapshot() == (0, 0, 0) and h.gossip == []


def test_the_last_valid_expiry_heights_are_admitted(h: Harness) -> None:
    assert h.submit(raw("alice@bank-a", 1, expiry=HEIGHT + 1)).ok
    assert h.submit(raw("alice@bank-a", 2, expiry=HEIGHT + 1 + MAX_TX_LIFETIME)).ok


def test_rejects_a_transaction_already_committed(h: Harness) -> None:
    tx = make_tx("alice@bank-a", 1)
    key = tx_seen_key(tx.tx_id)
    h.state.apply({key: encode_value(key, TxSeen(tx.body.expiry_height))})
    assert h.submit(tx.to_bytes()).code == codes.TX_REPLAYED
    assert len(h.pool) == 0


def test_duplicates_are_answered_without_a_second_admission(h: Harness) -> None:
    tx = make_tx("multi@bank-b", 1, key_indexes=(0, 1))
    assert h.submit(tx.to_bytes()).ok
    again = h.submit(tx.to_bytes(), origin="peer-1")
    assert again.code == TX_ALREADY_PENDING and again.tx_id == tx.tx_id
    # Same id, different signature set (other bytes): still a duplicate.
    other = make_tx("multi@bank-b", 1, key_indexes=(1, 2))
    assert other.tx_id == tx.tx_id and other.to_bytes() != tx.to_bytes()
    assert h.submit(other.to_bytes()).code == TX_ALREADY_PENDING
    assert len(h.pool) == 1 and len(h.gossip) == 1


def test_same_transaction_twice_in_one_batch(h: Harness) -> None:
    data = raw("alice@bank-a", 1)
    first, second = h.submit_many([data, data])
    assert first.ok and second.code == TX_ALREADY_PENDING
    assert len(h.pool) == 1


def test_submit_many_answers_each_in_order(h: Harness) -> None:
    datas = [raw("alice@bank-a", 1), bad_signature_tx(), b"\xc1", raw("bob@bank-b", 1)]
    results = h.submit_many(datas)
    assert [r.code for r in results] == [0, codes.BAD_SIGNATURE, codes.MALFORMED, 0]
    assert len(h.pool) == 2


def test_a_forged_copy_does_not_censor_the_original(h: Harness) -> None:
    forged = bad_signature_tx()
    assert h.submit(forged).code == codes.BAD_SIGNATURE
    assert h.submit(raw("alice@bank-a", 7)).ok  # same id, valid signature


def test_final_rejections_are_remembered(h: Harness, verifier: Ed25519Verifier) -> None:
    forged = bad_signature_tx()
    assert h.submit(forged).code == codes.BAD_SIGNATURE
    before = verifier.stats.verified
    assert h.submit(forged, origin="peer-2").code == codes.BAD_SIGNATURE
    assert verifier.stats.verified == before  # answered from the cache, no second verification


def test_unknown_account_is_not_remembered_as_final(h: Harness) -> None:
    data = raw("dave@bank-a", 1)
    assert h.submit(data).code == codes.SIGNER_NOT_FOUND
    spec = GenesisSpec(
        CHAIN, 0, (("bank-a", "Bank A"),), (GenesisAccount("dave@bank-a", (pk("dave@bank-a"),), 1, ("admin",)),)
    )
    changes = genesis_changes(spec)
    h.state.apply({k: v for k, v in changes.items() if k.startswith(b"a")})  # the account now exists
    assert h.submit(data).ok


# -- limits and backpressure ---------------------------------------------------------------------------------------


def test_full_pool_answers_busy_and_changes_nothing(verifier: Ed25519Verifier) -> None:
    h = Harness(verifier, MempoolLimits(max_txs=3, max_txs_per_account=3))
    for i, name in enumerate(["alice@bank-a", "bob@bank-b", "carol@bank-b"]):
        assert h.submit(raw(name, i)).ok
    before, gossip = h.snapshot(), list(h.gossip)
    result = h.submit(raw("admin@bank-a", 9))
    assert result.code == MEMPOOL_FULL and result.retry and not result.ok
    assert h.snapshot() == before and h.gossip == gossip
    # Room again after a commit: the same transaction is admitted.
    h.pool.remove_committed([h.gossip[0][0]])
    assert h.submit(raw("admin@bank-a", 9)).ok


def test_full_pool_refuses_gossip_before_decoding_it(verifier: Ed25519Verifier) -> None:
    """A full pool answers a peer's gossip MEMPOOL_FULL for the cost of a hash: it does not decode it (bytes that
    do not decode get the same answer), while a client still gets the first failing check (the decoding error).
    A transaction already pooled or already refused for good is still recognised by its hash."""
    h = Harness(verifier, MempoolLimits(max_txs=2, max_txs_per_account=2))
    assert h.submit(raw("alice@bank-a", 1)).ok
    assert h.submit(b"\xc1").code < 100  # malformed: remembered as refused for good
    assert h.submit(raw("bob@bank-b", 2)).ok
    before, gossip = h.snapshot(), list(h.gossip)
    junk = b"\x93\xc1"
    answers = h.submit_many([raw("carol@bank-b", 3), junk, raw("alice@bank-a", 1), b"\xc1"], origin="peer-1")
    assert [a.code for a in answers[:2]] == [MEMPOOL_FULL, MEMPOOL_FULL]
    assert answers[0].tx_id is None  # not decoded, so its id is not known
    assert answers[2].code == TX_ALREADY_PENDING and answers[3].code < 100
    assert h.snapshot() == before and h.gossip == gossip
    client = h.submit(junk)
    assert client.code < 100 and client.code != MEMPOOL_FULL
    # Room again: the same gossip is decoded, checked and admitted.
    h.pool.remove_committed([h.gossip[0][0]])
    assert h.submit(raw("carol@bank-b", 3), origin="peer-1").ok


def test_byte_limit_answers_busy(verifier: Ed25519Verifier) -> None:
    h = Harness(verifier, MempoolLimits(max_bytes=MAX_TX_BYTES))
    big = [raw("alice@bank-a", i, memo_legs=64) for i in range(100)]
    results = h.submit_many(big)
    admitted = [r for r in results if r.ok]
    assert admitted and all(r.code == MEMPOOL_FULL for r in results[len(admitted) :])
    assert h.pool.bytes_used <= MAX_TX_BYTES
    assert h.pool.bytes_used + len(big[0]) > MAX_TX_BYTES


def test_per_account_cap_keeps_room_for_others(verifier: Ed25519Verifier) -> None:
    h = Harness(verifier, MempoolLimits(max_txs=10, max_txs_per_account=3))
    results = h.submit_many([raw("alice@bank-a", i) for i in range(6)])
    assert [r.code for r in results] == [0, 0, 0] + [MEMPOOL_ACCOUNT_FULL] * 3
    assert all(r.retry for r in results[3:])
    assert h.submit(raw("bob@bank-b", 1)).ok
    assert len(h.pool) == 4


# -- reaping, removal, pruning ---------------------------------------------------------------------------------------


def fill(h: Harness) -> dict[str, list[bytes]]:
    sent = {
        "alice@bank-a": [raw("alice@bank-a", i) for i in range(3)],
        "bob@bank-b": [raw("bob@bank-b", i) for i in range(2)],
        "carol@bank-b": [raw("carol@bank-b", i) for i in range(1)],
    }
    order = sent["alice@bank-a"] + sent["bob@bank-b"] + sent["carol@bank-b"]
    assert all(r.ok for r in h.submit_many(order))
    return sent


def test_reap_is_round_robin_and_keeps_submission_order(h: Harness) -> None:
    s = fill(h)
    a, b, c = s["alice@bank-a"], s["bob@bank-b"], s["carol@bank-b"]
    assert h.pool.reap(100, 10**9) == [a[0], b[0], c[0], a[1], b[1], a[2]]
    # The next proposal starts at the next account.
    assert h.pool.reap(100, 10**9) == [b[0], c[0], a[0], b[1], a[1], a[2]]
    assert len(h.pool) == 6  # reaping removes nothing


def test_reap_respects_count_bytes_and_exclusions(h: Harness) -> None:
    s = fill(h)
    a, b, c = s["alice@bank-a"], s["bob@bank-b"], s["carol@bank-b"]
    assert h.pool.reap(2, 10**9) == [a[0], b[0]]
    budget = sum(len(x) for x in (b[0], c[0], a[0], b[1]))  # a[1] would come next and no longer fits
    assert h.pool.reap(100, budget) == [b[0], c[0], a[0], b[1]]
    smallest = min(len(x) for x in a + b + c)
    assert h.pool.reap(0, 10**9) == [] and h.pool.reap(5, smallest - 1) == []
    excluded = {tx_id for tx_id, data, _ in h.gossip if data in (a[0], b[0])}
    assert h.pool.reap(100, 10**9, exclude=excluded) == [a[1], b[1], c[0], a[2]]


def test_reap_never_skips_ahead_within_an_account(h: Harness) -> None:
    small = raw("alice@bank-a", 1)
    big = raw("alice@bank-a", 2, memo_legs=60)
    after = raw("alice@bank-a", 3)
    assert all(r.ok for r in h.submit_many([small, big, after]))
    assert h.pool.reap(10, len(small) + len(after) + 1) == [small]


def test_remove_committed_reports_pool_time_and_ignores_unknown_ids(h: Harness) -> None:
    fill(h)
    ids = [tx_id for tx_id, _, _ in h.gossip]
    h.clock.now += 2.5
    ages = h.pool.remove_committed([ids[0], ids[3], b"\x00" * 32])
    assert ages == [2.5, 2.5]
    assert len(h.pool) == 4 and ids[0] not in h.pool and ids[1] in h.pool
    assert h.pool.bytes_used == sum(len(d) for tx_id, d, _ in h.gossip if tx_id in h.pool)
    assert h.pool.remove_committed(ids) == [2.5] * 4
    assert h.snapshot() == (0, 0, 0) and h.pool.stats().lanes == 0
    assert h.pool.reap(100, 10**9) == []


def test_prune_expired_drops_what_the_next_block_cannot_include(h: Harness) -> None:
    keep = raw("alice@bank-a", 1, expiry=HEIGHT + 6)
    drop1 = raw("bob@bank-b", 1, expiry=HEIGHT + 3)
    drop2 = raw("carol@bank-b", 1, expiry=HEIGHT + 5)
    assert all(r.ok for r in h.submit_many([keep, drop1, drop2]))
    assert h.pool.prune_expired(HEIGHT + 2) == 0
    assert h.pool.prune_expired(HEIGHT + 5) == 2
    assert h.pool.height == HEIGHT + 5
    assert h.pool.reap(10, 10**9) == [keep]
    # Admission now checks against the new height.
    assert h.submit(raw("bob@bank-b", 2, expiry=HEIGHT + 5)).code == codes.TX_EXPIRED
    assert h.pool.prune_expired(HEIGHT + 6) == 1 and len(h.pool) == 0


# -- gossip ----------------------------------------------------------------------------------------------------------


def test_gossip_hook_called_once_per_new_transaction(h: Harness) -> None:
    t1, t2 = make_tx("alice@bank-a", 1), make_tx("bob@bank-b", 1)
    assert h.submit(t1.to_bytes()).ok
    assert h.submit(t2.to_bytes(), origin="peer-3").ok
    for origin in (None, "peer-1", "peer-2", "peer-3"):
        assert h.submit(t1.to_bytes(), origin).code == TX_ALREADY_PENDING
        assert h.submit(t2.to_bytes(), origin).code == TX_ALREADY_PENDING
    assert h.gossip == [(t1.tx_id, t1.to_bytes(), None), (t2.tx_id, t2.to_bytes(), "peer-3")]
    assert h.submit(bad_signature_tx(), "peer-1").code == codes.BAD_SIGNATURE
    assert len(h.gossip) == 2


def test_a_failing_gossip_hook_does_not_undo_admission(verifier: Ed25519Verifier) -> None:
    def broken(tx_id: bytes, data: bytes, origin: str | None) -> None:
        raise ConnectionError("peer gone")

    pool = Mempool(CHAIN, genesis_state(), HEIGHT, verifier, on_admitted=broken)
    assert asyncio.run(pool.submit(raw("alice@bank-a", 1))).ok and len(pool) == 1


# -- concurrency ---------------------------------------------------------------------------------------------------


def test_concurrent_submissions_of_one_transaction(h: Harness) -> None:
    data = raw("alice@bank-a", 1)

    async def run() -> list[Admission]:
        return await asyncio.gather(*(h.pool.submit(data, f"peer-{i}") for i in range(4)))

    results = asyncio.run(run())
    assert sorted(r.code for r in results) == [0, TX_ALREADY_PENDING, TX_ALREADY_PENDING, TX_ALREADY_PENDING]
    assert len(h.pool) == 1 and len(h.gossip) == 1


class CommitWhileVerifying:
    """A verifier that lets a block commit the transaction while its signatures are being checked."""

    def __init__(self, inner: Ed25519Verifier, state: MemoryState, tx: SignedTransaction) -> None:
        self.inner, self.state, self.tx = inner, state, tx

    async def verify_batch(self, items: Sequence[VerifyItem]) -> list[bool]:
        key = tx_seen_key(self.tx.tx_id)
        self.state.apply({key: encode_value(key, TxSeen(self.tx.body.expiry_height))})
        return await self.inner.verify_batch(items)


def test_commit_during_verification_is_seen(verifier: Ed25519Verifier) -> None:
    state = genesis_state()
    tx = make_tx("alice@bank-a", 1)
    pool = Mempool(CHAIN, state, HEIGHT, CommitWhileVerifying(verifier, state, tx))  # type: ignore[arg-type]
    result = asyncio.run(pool.submit(tx.to_bytes()))
    assert result.code == codes.TX_REPLAYED
    assert pool.stats() == pool.stats().__class__(0, 0, 0, 0, HEIGHT)


def test_room_reserved_during_verification_counts_toward_limits(verifier: Ed25519Verifier) -> None:
    h = Harness(verifier, MempoolLimits(max_txs=2, max_txs_per_account=2))

    async def run() -> list[Admission]:
        return await asyncio.gather(*(h.pool.submit(raw(n, 1)) for n in ["alice@bank-a", "bob@bank-b", "carol@bank-b"]))

    codes_seen = sorted(r.code for r in asyncio.run(run()))
    assert codes_seen == [0, 0, MEMPOOL_FULL]
    assert len(h.pool) == 2


def test_reap_counts_the_payload_overhead_per_transaction(h: Harness) -> None:
    s = fill(h)
    a, b = s["alice@bank-a"], s["bob@bank-b"]
    budget = len(a[0]) + len(b[0]) + 2 * 5
    assert h.pool.reap(100, budget, overhead_per_tx=5) == [a[0], b[0]]


def test_admission_in_the_calling_thread_answers_like_the_worker_pool(verifier: Ed25519Verifier) -> None:
    """submit_many_now (the simulator's path: signatures checked in the calling thread) gives exactly the answers,
    pool contents and gossip of submit_many (checked on the worker processes), bad signatures and duplicates too."""
    batch = [raw("alice@bank-a", 1), bad_signature_tx(), raw("bob@bank-b", 2), raw("alice@bank-a", 1), b"\xc1"]
    pooled, threaded = Harness(verifier), Harness(verifier)
    answers = pooled.submit_many(batch, "peer-1")
    assert [a.code for a in answers][:3] == [0, codes.BAD_SIGNATURE, 0]
    assert threaded.pool.submit_many_now(batch, "peer-1") == answers
    assert threaded.snapshot() == pooled.snapshot() and threaded.gossip == pooled.gossip
    assert threaded.pool.reap(10, 1 << 20) == pooled.pool.reap(10, 1 << 20)


def test_lookup_returns_the_decoded_pooled_transaction(h: Harness) -> None:
    tx = make_tx("alice@bank-a", 1)
    assert h.submit(tx.to_bytes()).ok
    assert h.pool.lookup(tx.to_bytes()) == tx
    assert h.pool.lookup(raw("alice@bank-a", 2)) is None


# -- model check -------------------------------------------------------------------------------------------------

SIGNERS = ["alice@bank-a", "bob@bank-b", "carol@bank-b"]
SIGNED = {(s, n, e): raw(s, n, expiry=e) for s in SIGNERS for n in range(8) for e in (HEIGHT + 2, HEIGHT + 6)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("submit"), st.sampled_from(sorted(SIGNED))),
            st.tuples(st.just("commit"), st.integers(0, 3)),
            st.tuples(st.just("prune"), st.integers(0, 3)),
            st.tuples(st.just("reap"), st.integers(0, 6)),
        ),
        max_size=40,
    )
)
def test_pool_matches_a_simple_model(ops: list[tuple[str, object]]) -> None:
    sync = Ed25519Verifier(workers=0)
    pool = Mempool(CHAIN, genesis_state(), HEIGHT, sync, MempoolLimits(max_txs=6, max_txs_per_account=3))
    model: dict[bytes, tuple[str, bytes, int]] = {}  # tx_id -> (lane, bytes, expiry), in admission order
    height = HEIGHT
    for op, arg in ops:
        if op == "submit":
            signer, _, expiry = arg  # type: ignore[misc]
            data = SIGNED[arg]  # type: ignore[index]
            result = asyncio.run(pool.submit(data))
            lane_count = sum(1 for lane, _, _ in model.values() if lane == signer)
            if result.tx_id in model:
                assert result.code == TX_ALREADY_PENDING
            elif expiry < height + 1:
                assert result.code == codes.TX_EXPIRED
            elif len(model) >= 6:
                assert result.code == MEMPOOL_FULL
            elif lane_count >= 3:
                assert result.code == MEMPOOL_ACCOUNT_FULL
            else:
                assert result.ok
                assert result.tx_id is not None
                model[result.tx_id] = (signer, data, expiry)
        elif op == "commit":
            victims = list(model)[: int(arg)]  # type: ignore[call-overload]
            assert len(pool.remove_committed(victims)) == len(victims)
            for tx_id in victims:
                del model[tx_id]
        elif op == "prune":
            height += int(arg)  # type: ignore[call-overload]
            dropped = pool.prune_expired(height)
            expired = [tx_id for tx_id, (_, _, e) in model.items() if e < height + 1]
            assert dropped == len(expired)
            for tx_id in expired:
                del model[tx_id]
        else:
            reaped = pool.reap(int(arg), 10**9)  # type: ignore[call-overload]
            assert len(reaped) == min(int(arg), len(model))  # type: ignore[call-overload]
            for lane in SIGNERS:
                in_lane = [d for ln, d, _ in model.values() if ln == lane]
                got = [d for d in reaped if d in in_lane]
                assert got == in_lane[: len(got)]  # a prefix of the lane, in submission order
        assert len(pool) == len(model) and set(model) == {t for t in model if t in pool}
        assert pool.bytes_used == sum(len(d) for _, d, _ in model.values())
        assert sorted(pool.reap(100, 10**9)) == sorted(d for _, d, _ in model.values())


def test_a_forged_copy_in_flight_does_not_censor_the_original(h: Harness) -> None:
    """Regression: a copy with a corrupted signature (same tx id) still being verified made the valid copy answer
    TX_ALREADY_PENDING (which the API reports as accepted); the forged copy then failed and the valid one was lost."""
    forged = bad_signature_tx()
    original = raw("alice@bank-a", 7)

    async def run() -> list[Admission]:
        return await asyncio.gather(h.pool.submit(forged, "peer-1"), h.pool.submit(original))

    bad, good = asyncio.run(run())
    assert bad.code == codes.BAD_SIGNATURE
    assert good.ok, good
    assert h.pool.get(make_tx("alice@bank-a", 7).tx_id) == original
    assert h.snapshot() == (1, len(original), 0)


def test_two_valid_copies_in_flight_pool_one(h: Harness) -> None:
    """Two differently signed valid copies of one multisig transaction verified concurrently: one is pooled, the
    other answers TX_ALREADY_PENDING, the reservations are released."""
    a = make_tx("multi@bank-b", 1, key_indexes=(0, 1)).to_bytes()
    b = make_tx("multi@bank-b", 1, key_indexes=(0, 2)).to_bytes()
    assert a != b

    async def run() -> list[Admission]:
        return await asyncio.gather(h.pool.submit(a), h.pool.submit(b))

    results = asyncio.run(run())
    assert sorted(r.code for r in results) == [0, TX_ALREADY_PENDING]
    assert len(h.pool) == 1 and h.pool.stats().verifying == 0 and len(h.gossip) == 1


class FailingReads:
    """A committed-state reader whose reads of one account fail (a storage error, a store closed at shutdown)."""

    def __init__(self, inner: MemoryState, failing: bytes) -> None:
        self.inner, self.failing = inner, failing

    def get_state(self, key: bytes) -> bytes | None:
        if self.failing in key:
            raise RuntimeError("storage read failed")
        return self.inner.get_state(key)


def test_a_failed_precheck_releases_the_room_of_earlier_candidates(verifier: Ed25519Verifier) -> None:
    """Regression: an exception in the precheck of a later transaction of a batch left the room reserved for the
    earlier ones taken for good (`verifying` never went back to 0; the pool and the lanes shrank)."""
    state = genesis_state()
    pool = Mempool(CHAIN, FailingReads(state, b"bob@bank-b"), HEIGHT, verifier)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        asyncio.run(pool.submit_many([raw("alice@bank-a", 1), raw("carol@bank-b", 1), raw("bob@bank-b", 1)]))
    assert pool.stats() == pool.stats().__class__(0, 0, 0, 0, HEIGHT)
    assert asyncio.run(pool.submit(raw("alice@bank-a", 1))).ok


def test_a_transaction_the_api_decoded_is_not_decoded_again(h: Harness, monkeypatch) -> None:
    """The API's routes decode a submission to answer it; the mempool takes that object (with its wire bytes) and
    admits it exactly as the bytes, without decoding them a second time."""
    import node.chain.mempool as mempool_module
    from ledger.transaction import decode_transaction

    data = raw("alice@bank-a", 41)
    tx = decode_transaction(data, operations=OPERATIONS)
    assert tx.to_bytes() == data  # the envelope kept from decoding: nothing encoded again

    def no_second_decode(*args, **kwargs):
        raise AssertionError("decoded twice")

    monkeypatch.setattr(mempool_module, "decode_transaction", no_second_decode)
    (result,) = h.submit_many([tx])
    assert result.ok and result.tx_id == tx.tx_id and h.pool.get(tx.tx_id) == data
    (again,) = h.submit_many([tx])
    assert again.code == TX_ALREADY_PENDING
