"""The replay set of protocol 3 (docs/protocol.md §4.3, §7): buckets of REPLAY_CHUNK ids that a block appends to
without rewriting what others filled, and the replay index `T` derived from them and left out of the state tree."""

from __future__ import annotations

import pytest

from ledger import codes
from ledger import operations as o
from ledger.codec import encode_trusted, record_type
from ledger.invariants import InvariantViolation, audit_state
from ledger.records import REPLAY_CHUNK, ChainMeta, ReplayBucket, TxSeen
from ledger.smt import MemoryNodes, SparseMerkleTree
from ledger.state_keys import (
    in_tree,
    replay_bucket_key,
    replay_index_entries,
    replay_index_key,
    tree_changes,
    tree_entries,
    tx_seen_key,
)
from ledger.store import LedgerStore, StoreError
from ledger.transaction import SignedTransaction
from tests.ledger.test_transaction import A, B, funded  # A holds 1,000 BOND-A: enough for the 778 transfers of 1
from tests.ledger.world import World


def pays(w: World, n: int, expiry: int, first_nonce: int = 0) -> list[SignedTransaction]:
    return [w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), nonce=first_nonce + i, expiry=expiry)
            for i in range(n)]


def block(w: World, txs: list[SignedTransaction]):
    w.time += 1
    return w.ledger.apply(list(txs), time=w.time)


def buckets(w: World, expiry: int) -> list[tuple[bytes, ...]]:
    out, chunk = [], 0
    while (b := w.ledger.get(replay_bucket_key(expiry, chunk))) is not None:
        out.append(b.tx_ids)
        chunk += 1
    return out


def test_buckets_fill_in_chunks_and_a_block_rewrites_at_most_one_it_did_not_fill() -> None:
    w = funded()
    expiry = w.ledger.height + 50
    first = pays(w, REPLAY_CHUNK + 10, expiry)
    out = block(w, first)
    assert all(r.code == codes.OK for r in out.receipts)
    assert [len(b) for b in buckets(w, expiry)] == [REPLAY_CHUNK, 10]
    assert w.ledger.get(replay_index_key(expiry)).count == REPLAY_CHUNK + 10
    # the ids in recording order (transaction order) across the chunks
    assert sum(buckets(w, expiry), ()) == tuple(t.tx_id for t in first)
    # The next block with the same expiry: it rewrites only the last, partial chunk and adds new ones; the full chunk
    # 0 is not among its changes (protocol 2 rewrote one growing value of every id of the height, every block).
    second = pays(w, 2 * REPLAY_CHUNK, expiry, first_nonce=10_000)
    out = block(w, second)
    assert all(r.code == codes.OK for r in out.receipts)
    written = sorted(k for k in out.changes if k[:9] == replay_bucket_key(expiry, 0)[:9])
    assert written == [replay_bucket_key(expiry, c) for c in (1, 2, 3)]
    assert [len(b) for b in buckets(w, expiry)] == [REPLAY_CHUNK, REPLAY_CHUNK, REPLAY_CHUNK, 10]
    assert sum(buckets(w, expiry), ()) == tuple(t.tx_id for t in first + second)
    w.ledger.audit()
    # Pruned one block after the expiry height: every chunk, the index and every T entry go.
    while w.ledger.height <= expiry:
        w.submit()
    assert buckets(w, expiry) == [] and w.ledger.get(replay_index_key(expiry)) is None
    assert all(w.ledger.get(tx_seen_key(t.tx_id)) is None for t in first + second)
    w.ledger.audit()


def test_the_replay_index_is_derived_and_not_in_the_tree() -> None:
    w = funded()
    t = pays(w, 1, w.ledger.height + 5)[0]
    out = block(w, [t])
    assert out.receipts[0].code == codes.OK
    key = tx_seen_key(t.tx_id)
    assert key in out.changes and key not in tree_changes(out.changes) and not in_tree(key)
    # The root is the tree of every entry but T; T is exactly what the buckets derive.
    state = dict(w.ledger.state.items())
    assert SparseMerkleTree(MemoryNodes()).update(dict(tree_entries(state.items()))).root == w.ledger.root
    assert SparseMerkleTree(MemoryNodes()).update(state).root != w.ledger.root
    assert dict(replay_index_entries(state.items())) == {k: v for k, v in state.items() if k[:1] == b"T"}
    # ... and it still refuses the replay.
    assert w.submit(t)[0].code == codes.TX_REPLAYED


def test_audit_catches_a_replay_index_that_disagrees_with_the_buckets() -> None:
    w = funded()
    expiry = w.ledger.height + 5
    w.submit(*pays(w, 3, expiry))
    state = dict(w.ledger.state.items())
    audit_state(state.items())
    seen = [k for k in state if k[:1] == b"T"]
    assert len(seen) >= 3
    missing = {k: v for k, v in state.items() if k != seen[0]}
    with pytest.raises(InvariantViolation, match="replay index"):
        audit_state(missing.items())
    extra = dict(state)
    extra[tx_seen_key(b"\x07" * 32)] = encode_trusted(record_type(TxSeen), TxSeen(9))
    with pytest.raises(InvariantViolation, match="replay index"):
        audit_state(extra.items())
    wrong_expiry = dict(state)
    wrong_expiry[seen[0]] = encode_trusted(record_type(TxSeen), TxSeen(123_456))
    with pytest.raises(InvariantViolation, match="replay index"):
        audit_state(wrong_expiry.items())
    # a bucket that is not full while a later chunk of its height exists
    assert replay_bucket_key(expiry, 0) in state and replay_bucket_key(expiry, 1) not in state
    split = dict(state)
    split[replay_bucket_key(expiry, 1)] = encode_trusted(record_type(ReplayBucket), ReplayBucket((b"\x09" * 32,)))
    split[tx_seen_key(b"\x09" * 32)] = encode_trusted(record_type(TxSeen), TxSeen(expiry))
    with pytest.raises(InvariantViolation, match="replay index counts"):
        audit_state(split.items())


def test_replay_index_entries_of_snapshot_pairs() -> None:
    ids = (b"\x01" * 32, b"\x02" * 32)
    bucket = encode_trusted(record_type(ReplayBucket), ReplayBucket(ids))
    pairs = [(b"M", b"\x93"), (replay_bucket_key(77, 0), bucket), (b"E" + (77).to_bytes(8, "big"), b"\x91\x02")]
    seen = encode_trusted(record_type(TxSeen), TxSeen(77))
    assert replay_index_entries(pairs) == [(b"T" + ids[0], seen), (b"T" + ids[1], seen)]
    assert replay_index_entries([(b"M", b"\x93")]) == []


def test_the_store_refuses_to_prove_a_derived_key(tmp_path) -> None:
    with LedgerStore.open(str(tmp_path / "db")) as store:
        for bad in (tx_seen_key(b"\x00" * 32), b""):
            for call in (store.prove, store.get_state_at):
                with pytest.raises(StoreError) as info:
                    call(bad, 0)
                assert info.value.code == codes.STORE_INVALID_ARGUMENT


def test_audit_catches_replay_entries_left_after_their_pruning_height() -> None:
    w = funded()
    expiry = w.ledger.height + 2
    w.submit(*pays(w, 2, expiry))
    state = dict(w.ledger.state.items())
    audit_state(state.items())  # the expiry height is still ahead of the chain
    meta = w.ledger.get(b"M")
    later = dict(state)
    later[b"M"] = encode_trusted(record_type(ChainMeta), ChainMeta(meta.chain_id, expiry + 1, meta.time))
    with pytest.raises(InvariantViolation, match="not pruned"):
        audit_state(later.items())


def test_install_chunk_writes_the_derived_replay_index_or_nothing(tmp_path) -> None:
    ids = (b"\x05" * 32, b"\x06" * 32)
    bucket = encode_trusted(record_type(ReplayBucket), ReplayBucket(ids))
    too_long = encode_trusted(record_type(ReplayBucket), ReplayBucket(tuple(bytes([i % 256, i // 256]) * 16
                                                                            for i in range(REPLAY_CHUNK + 1))))
    with LedgerStore.open(str(tmp_path / "db")) as store:
        store.begin_snapshot_install(9)
        with pytest.raises(StoreError) as info:
            store.install_chunk([(b"a1", b"x"), (replay_bucket_key(12, 0), too_long)], {})
        assert info.value.code == codes.STORE_INVALID_ARGUMENT
        assert list(store.iter_state()) == []
        store.install_chunk([(b"a1", b"x"), (replay_bucket_key(12, 0), bucket)], {})
        seen = encode_trusted(record_type(TxSeen), TxSeen(12))
        assert dict(store.iter_state()) == {
            b"a1": b"x", replay_bucket_key(12, 0): bucket, b"T" + ids[0]: seen, b"T" + ids[1]: seen}
