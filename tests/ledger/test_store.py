"""LedgerStore: atomic block commits, getters, history pagination, proofs at a height, format version."""

from __future__ import annotations

import hashlib
import itertools

import plyvel
import pytest

import ledger.store as store_module
from ledger import codes
from ledger.smt import EMPTY_ROOT, MemoryNodes, SparseMerkleTree, key_path, leaf_hash, value_hash, verify_proof
from ledger.store import (
    FORMAT_VERSION,
    META_VERSION,
    BlockCommit,
    Head,
    HistoryEntry,
    InvalidCommitError,
    LedgerStore,
    PrunedHeightError,
    StoreCorruptError,
    StoreError,
    StoreOpenError,
    StoreVersionError,
    UnknownHeightError,
)


def h(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def make_commit(store: LedgerStore, height: int, changes: dict[bytes, bytes | None], n_txs: int = 3, **kw):
    head = store.head()
    root = head.state_root if head else EMPTY_ROOT
    update = SparseMerkleTree(store, root).update(changes)
    txs = [(h("tx", height, i), b"tx-bytes-%d-%d" % (height, i)) for i in range(n_txs)]
    fields = {
        "height": height,
        "block_hash": h("block", height),
        "block_bytes": b"block-%d" % height,
        "state_root": update.root,
        "txs": txs,
        "receipts": [(tx_id, b"receipt-" + tx_id[:4]) for tx_id, _ in txs],
        "state_changes": changes,
        "smt_nodes": update.nodes,
        "history": [("alice@bank-a", tx_id) for tx_id, _ in txs] + [("bob@bank-b", txs[0][0])] if txs else [],
    }
    fields.update(kw)
    return BlockCommit(**fields)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "db")


def test_empty_store(path):
    with LedgerStore.open(path) as store:
        assert store.head() is None
        assert store.get_block(0) is None and store.get_block(1) is None
        assert store.get_state(b"k") is None
        assert store.state_root_at(0) is None
        with pytest.raises(UnknownHeightError):
            store.prove(b"k", 1)
        with pytest.raises(UnknownHeightError):
            store.get_state_at(b"k", 1)


def test_commit_reopen_round_trip_and_getters(path):
    models: list[dict[bytes, bytes]] = []
    model: dict[bytes, bytes] = {}
    with LedgerStore.open(path) as store:
        for height in range(1, 6):
            changes: dict[bytes, bytes | None] = {b"bal/%d" % i: b"%d" % (height * 100 + i) for i in range(height * 3)}
            if height == 4:
                changes[b"bal/0"] = None
            commit = make_commit(store, height, changes, extra={b"cert/%d" % height: b"cert"})
            store.commit_block(commit)
            for k, v in changes.items():
                if v is None:
                    model.pop(k, None)
                else:
                    model[k] = v
            models.append(dict(model))
            assert store.head() == Head(height, h("block", height), commit.state_root)
        head = store.head()
    with LedgerStore.open(path) as store:
        assert store.head() == head
        assert store.state_root_at(5) == head.state_root
        for height in range(1, 6):
            assert store.get_block(height) == b"block-%d" % height
            assert store.get_block_height(h("block", height)) == height
            assert store.get_extra(b"cert/%d" % height) == b"cert"
            for i in range(3):
                tx_id = h("tx", height, i)
                assert store.get_tx(tx_id) == (height, i, b"tx-bytes-%d-%d" % (height, i))
                assert store.get_receipt(tx_id) == b"receipt-" + tx_id[:4]
            root = store.state_root_at(height)
            snapshot = models[height - 1]
            for k in [b"bal/%d" % i for i in range(16)]:
                assert store.get_state_at(k, height) == snapshot.get(k)
                value, proof = store.prove(k, height)
                assert value == snapshot.get(k)
                assert verify_proof(root, k, value, proof)
        assert store.get_block(6) is None and store.get_block(-1) is None
        assert store.get_block_height(h("block", 99)) is None
        assert store.get_tx(b"nope") is None and store.get_receipt(b"nope") is None
        assert dict(store.iter_state()) == model
        assert dict(store.iter_state(b"bal/1")) == {k: v for k, v in model.items() if k.startswith(b"bal/1")}
        # Pagination by key.
        page1 = list(itertools.islice(store.iter_state(b"bal/"), 4))
        page2 = list(store.iter_state(b"bal/", after=page1[-1][0]))
        assert page1 + page2 == sorted(model.items())
        # `after` inside the prefix: the scan stops at the prefix's end (bal/2... are not returned).
        assert [k for k, _ in store.iter_state(b"bal/1", after=b"bal/12")] == [b"bal/13", b"bal/14"]
        assert list(store.iter_state(b"bal/", after=b"a")) == sorted(model.items())
        for k in [b"bal/0", b"bal/1", b"bal/14"]:
            assert store.get_state(k) == model.get(k)
        # The flat latest-value keyspace and the tree agree.
        rebuilt = SparseMerkleTree(MemoryNodes()).update(dict(store.iter_state()))
        assert rebuilt.root == store.head().state_root == store.recompute_state_root()


def test_heights_must_be_consecutive(path):
    with LedgerStore.open(path) as store:
        with pytest.raises(InvalidCommitError):
            store.commit_block(make_commit(store, 2, {b"a": b"1"}))
        store.commit_block(make_commit(store, 0, {b"a": b"1"}))  # a genesis block at height 0
        for bad in (0, 2, 5):
            with pytest.raises(InvalidCommitError) as info:
                store.commit_block(make_commit(store, bad, {b"a": b"2"}))
            assert info.value.code == codes.INVALID_BLOCK_COMMIT
        store.commit_block(make_commit(store, 1, {b"a": b"2"}))
        assert store.head().height == 1
    with LedgerStore.open(path + "-2") as store:
        store.commit_block(make_commit(store, 1, {b"a": b"1"}))  # or the first block at height 1
        assert store.head().height == 1


def test_commit_invariants(path):
    with LedgerStore.open(path) as store:
        store.commit_block(make_commit(store, 1, {b"a": b"1"}))
        dup_tx = make_commit(store, 2, {b"a": b"2"})
        dup_tx = BlockCommit(**{**{f: getattr(dup_tx, f) for f in dup_tx.__slots__}, "txs": [(h("tx", 1, 0), b"x")]})
        cases = [
            dup_tx,
            make_commit(store, 2, {b"a": b"2"}, block_hash=h("block", 1)),  # block hash reused
            make_commit(store, 2, {b"a": b"2"}, state_root=b"\x07" * 32),  # unknown root
            make_commit(store, 2, {b"a": b"2"}, receipts=[(b"other", b"r")]),
            make_commit(store, 2, {b"a": b"2"}, history=[("x" * 300, h("tx", 2, 0))]),
            make_commit(store, 2, {b"a": b"2"}, block_hash=b"short"),
            # Non-bytes keys or values anywhere: refused while building the batch, nothing written.
            make_commit(store, 2, {b"a": b"2"}, state_changes={b"a": b"2", "str-key": b"x"}),
            make_commit(store, 2, {b"a": b"2"}, state_changes={b"a": 2}),
            make_commit(store, 2, {b"a": b"2"}, extra={b"k": "v"}),
            make_commit(store, 2, {b"a": b"2"}, block_bytes="block"),
        ]
        for commit in cases:
            with pytest.raises(InvalidCommitError):
                store.commit_block(commit)
        assert store.head().height == 1
        assert store.get_state(b"a") == b"1" and store.get_block(2) is None and store.get_extra(b"k") is None
        store.commit_block(make_commit(store, 2, {b"a": b"2"}))
        assert store.get_state(b"a") == b"2"


def test_failing_batch_leaves_nothing(path, monkeypatch):
    with LedgerStore.open(path) as store:
        store.commit_block(make_commit(store, 1, {b"a": b"1"}))
        head = store.head()
        commit = make_commit(store, 2, {b"a": b"2", b"b": b"3"})

        def broken(*args):
            raise OSError("disk on fire")

        # The history keys are the last thing written into the batch: fail there.
        monkeypatch.setattr(store_module, "_history_key", broken)
        with pytest.raises(OSError):
            store.commit_block(commit)
        monkeypatch.undo()
        assert store.head() == head
    with LedgerStore.open(path) as store:
        assert store.head() == head
        assert store.get_block(2) is None
        assert store.get_block_height(commit.block_hash) is None
        assert store.state_root_at(2) is None
        assert all(store.get_tx(tx_id) is None for tx_id, _ in commit.txs)
        assert store.get_state(b"a") == b"1" and store.get_state(b"b") is None
        assert store.get_node(commit.state_root) is None
        store.commit_block(commit)  # the same block goes through afterwards
        assert store.head().height == 2 and store.get_state(b"b") == b"3"


def test_history_pagination_newest_first(path):
    with LedgerStore.open(path) as store:
        for height in range(1, 8):
            store.commit_block(make_commit(store, height, {b"k": b"%d" % height}, n_txs=4))
        everything = store.account_history("alice@bank-a", limit=1000)
        assert len(everything) == 28
        assert everything[0] == HistoryEntry(7, 3, h("tx", 7, 3))
        assert everything[-1] == HistoryEntry(1, 0, h("tx", 1, 0))
        cursors = [e.cursor for e in everything]
        assert cursors == sorted(cursors, reverse=True)
        pages: list[HistoryEntry] = []
        after = None
        while True:
            page = store.account_history("alice@bank-a", after=after, limit=5)
            if not page:
                break
            assert len(page) <= 5
            pages.extend(page)
            after = page[-1].cursor
        assert pages == everything
        bob = store.account_history("bob@bank-b", limit=10)
        assert [e.tx_id for e in bob] == [h("tx", height, 0) for height in range(7, 0, -1)]
        assert [e.position for e in bob] == [4] * 7
        assert store.account_history("carol@bank-c", limit=10) == []
        # An account id that is a prefix of another does not see the other's history.
        assert store.account_history("alice@bank", limit=10) == []
        for bad in (0, 1001, "5"):
            with pytest.raises(StoreError):
                store.account_history("alice@bank-a", limit=bad)
        for cursor in [(-1, 0), (1, 1 << 32), [1, 0], (1,), ("1", 0), 5]:
            with pytest.raises(StoreError):
                store.account_history("alice@bank-a", after=cursor, limit=5)


def test_extra_keyspace(path):
    with LedgerStore.open(path) as store:
        assert store.get_extra(b"safety") is None
        store.put_extra(b"safety", b"round=5")
        store.put_extra(b"fast", b"1", sync=False)
        with pytest.raises(StoreError):
            store.put_extra("str", b"x")  # type: ignore[arg-type]
    with LedgerStore.open(path) as store:
        assert store.get_extra(b"safety") == b"round=5"
        assert store.get_extra(b"fast") == b"1"
        assert store.get_state(b"safety") is None  # keyspaces are separate


def test_format_version_check(path):
    LedgerStore.open(path).close()
    db = plyvel.DB(path)
    assert db.get(META_VERSION) == FORMAT_VERSION.to_bytes(4, "big")
    db.put(META_VERSION, (FORMAT_VERSION + 1).to_bytes(4, "big"))
    db.close()
    with pytest.raises(StoreVersionError) as info:
        LedgerStore.open(path)
    assert f"format version {FORMAT_VERSION + 1}" in str(info.value) and info.value.code == codes.STORE_FORMAT_VERSION
    # A store of the previous format (protocol 2's state layout) is refused too, never reinterpreted.
    db = plyvel.DB(path)
    db.put(META_VERSION, (FORMAT_VERSION - 1).to_bytes(4, "big"))
    db.close()
    with pytest.raises(StoreVersionError) as info:
        LedgerStore.open(path)
    assert f"format version {FORMAT_VERSION - 1}" in str(info.value)
    # A LevelDB directory with foreign data and no version is refused too.
    other = path + "-foreign"
    db = plyvel.DB(other, create_if_missing=True)
    db.put(b"something", b"else")
    db.close()
    with pytest.raises(StoreVersionError):
        LedgerStore.open(other)
    # The refused store was closed again: it can be opened raw.
    plyvel.DB(path).close()


def test_open_errors_and_corruption_detected(path):
    with LedgerStore.open(path) as store:
        store.commit_block(make_commit(store, 1, {b"a": b"1"}))
        store.commit_block(make_commit(store, 2, {b"a": b"2"}))
        with pytest.raises(StoreOpenError) as info:
            LedgerStore.open(path)  # LevelDB's lock: one process, one handle
        assert info.value.code == codes.STORE_OPEN_FAILED
    # Deep, not-yet-existing directories are created.
    with LedgerStore.open(path + "-other/nested/deeper") as store:
        assert store.head() is None
    # A head that names a block which is not stored is detected at open.
    db = plyvel.DB(path)
    db.delete(store_module.P_BLOCK + (2).to_bytes(8, "big"))
    db.close()
    with pytest.raises(StoreCorruptError) as info:
        LedgerStore.open(path)
    assert info.value.code == codes.STORE_CORRUPT
    for garbage in (b"\xc1", b"\x93\x01\x02\x03", b"\x92\x01\x02"):
        db = plyvel.DB(path)
        db.put(store_module.META_HEAD, garbage)
        db.close()
        with pytest.raises(StoreCorruptError):
            LedgerStore.open(path)


def _count_nodes(store: LedgerStore) -> int:
    with store._db.iterator(prefix=store_module.P_NODE, include_value=False) as it:
        return sum(1 for _ in it)


def test_prune_state_history(path):
    keys = [b"k%d" % i for i in range(40)]
    models: dict[int, dict[bytes, bytes]] = {}
    model: dict[bytes, bytes] = {}

    def commit(store: LedgerStore, height: int) -> int:
        # Values cycle with period 3, so later blocks re-create nodes that only pruned heights used.
        changes: dict[bytes, bytes | None] = {k: b"v%d" % ((height + i) % 3) for i, k in enumerate(keys[:20])}
        changes[keys[20 + height % 20]] = None if height % 4 == 0 else b"x%d" % height
        # A leaf only height 1 uses (deleted by the prune) and that block 23 creates again.
        if height in (1, 2, 23):
            changes[b"special"] = b"mid" if height == 2 else b"old"
        block = make_commit(store, height, changes, n_txs=1)
        store.commit_block(block)
        for k, v in changes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        models[height] = dict(model)
        return len(block.smt_nodes)

    def check_heights(store: LedgerStore, heights) -> None:
        for height in heights:
            root = store.state_root_at(height)
            for k in [*keys, b"special", b"absent"]:
                value, proof = store.prove(k, height)
                assert value == models[height].get(k)
                assert verify_proof(root, k, value, proof)

    with LedgerStore.open(path) as store:
        for height in range(1, 21):
            commit(store, height)
        assert store.pruned_below() == 0
        with pytest.raises(StoreError):
            store.prune_state_history(21)
        nodes_before = _count_nodes(store)
        report = store.prune_state_history(15)
        assert report.deleted_nodes + report.live_nodes == nodes_before == _count_nodes(store) + report.deleted_nodes
        assert report.deleted_nodes > 0 and report.live_nodes > 0
        check_heights(store, range(15, 21))
        for height in (1, 14):
            with pytest.raises(PrunedHeightError) as info:
                store.prove(keys[0], height)
            assert info.value.code == codes.HEIGHT_PRUNED
            with pytest.raises(PrunedHeightError):
                store.get_state_at(keys[0], height)
            assert store.get_block(height) == b"block-%d" % height  # blocks and roots are kept
            assert store.state_root_at(height) is not None
        with pytest.raises(StoreError):
            store.prune_state_history(14)  # below the current bound
        old_leaf = leaf_hash(key_path(b"special"), value_hash(b"old"))
        assert store._db.get(store_module.P_NODE + old_leaf) is None  # pruned
        written = sum(commit(store, height) for height in range(21, 27))
        assert store._db.get(store_module.P_NODE + old_leaf) is not None  # written again by block 23
        check_heights(store, range(15, 27))
        assert store.recompute_state_root() == store.head().state_root
        assert _count_nodes(store) <= report.live_nodes + written
    with LedgerStore.open(path) as store:
        assert store.pruned_below() == 15
        store._node_cache.clear()  # read everything from LevelDB
        check_heights(store, range(15, 27))
        report = store.prune_state_history(26)  # keep only the head's state
        check_heights(store, [26])
        assert report.live_nodes == _reachable_count(store, store.head().state_root)
        written = commit(store, 27)
        check_heights(store, [26, 27])
        assert _count_nodes(store) <= report.live_nodes + written


def _reachable_count(store: LedgerStore, root: bytes) -> int:
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        h = stack.pop()
        if h == EMPTY_ROOT or h in seen:
            continue
        seen.add(h)
        node = store.get_node(h)
        if node[0] == 1:
            stack += [node[1:33], node[33:]]
    return len(seen)
