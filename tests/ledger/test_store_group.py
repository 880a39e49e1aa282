"""LedgerStore.commit_blocks: consecutive blocks in one synced WriteBatch (block sync's group commit). Each commit is
checked as commit_block checks it, against the head the group's earlier commits make; a refused one writes nothing
of the whole group; a group written reads back exactly as the same blocks committed one by one."""

from __future__ import annotations

import dataclasses

import pytest

import ledger.store as store_module
from ledger.smt import EMPTY_ROOT, OverlayNodes, SparseMerkleTree, verify_proof
from ledger.store import MAX_GROUP_COMMIT_BLOCKS, BlockCommit, InvalidCommitError, LedgerStore
from tests.ledger.test_store import h


def chain(store: LedgerStore, first: int, count: int, *, n_txs: int = 3) -> list[BlockCommit]:
    """`count` commits from height `first` on the store's head, each on the tree the ones before it make (nothing
    written). Block k sets b"a" to k, adds b"k<k>", and deletes the key the block before it added."""
    head = store.head()
    root = head.state_root if head else EMPTY_ROOT
    layers: list[dict[bytes, bytes]] = []
    out = []
    for height in range(first, first + count):
        changes: dict[bytes, bytes | None] = {b"a": b"%d" % height, b"k%d" % height: b"v%d" % height}
        if height > first:
            changes[b"k%d" % (height - 1)] = None
        update = SparseMerkleTree(OverlayNodes(store, *reversed(layers)), root).update(changes)
        txs = [(h("tx", height, i), b"tx-%d-%d" % (height, i)) for i in range(n_txs)]
        out.append(BlockCommit(height, h("block", height), b"block-%d" % height, update.root, txs,
                               [(tx_id, b"receipt-" + tx_id[:4]) for tx_id, _ in txs], changes, dict(update.nodes),
                               [("alice@bank-a", tx_id) for tx_id, _ in txs], {b"cert/%d" % height: b"c%d" % height}))
        layers.append(dict(update.nodes))
        root = update.root
    return out


def snapshot(store: LedgerStore, heights: range) -> dict[str, object]:
    """Everything a reader sees of those heights."""
    out: dict[str, object] = {"head": store.head(), "state": dict(store.iter_state(b""))}
    for height in heights:
        block = store.get_block(height)
        out[f"block{height}"] = block
        out[f"root{height}"] = store.state_root_at(height)
        out[f"extra{height}"] = store.get_extra(b"cert/%d" % height)
        for i in range(3):
            out[f"tx{height}/{i}"] = store.get_tx(h("tx", height, i))
            out[f"receipt{height}/{i}"] = store.get_receipt(h("tx", height, i))
    out["history"] = store.account_history("alice@bank-a", limit=100)
    return out


def test_a_group_reads_back_as_the_same_blocks_committed_one_by_one(tmp_path) -> None:
    with LedgerStore.open(str(tmp_path / "one")) as one, LedgerStore.open(str(tmp_path / "group")) as group:
        for store in (one, group):
            store.commit_block(chain(store, 1, 1)[0])
        commits = chain(group, 2, 6)
        group.commit_blocks(commits)
        for commit in commits:
            one.commit_block(commit)
        assert group.head().height == 7 and group.head().state_root == commits[-1].state_root
        assert snapshot(group, range(1, 8)) == snapshot(one, range(1, 8))
        assert group.get_state(b"k7") == b"v7" and group.get_state(b"k6") is None
        # Every root of the group is provable at its height: the earlier commits' tree nodes were written too.
        for commit in commits:
            value, proof = group.prove(b"a", commit.height)
            assert value == b"%d" % commit.height and verify_proof(commit.state_root, b"a", value, proof)
    with LedgerStore.open(str(tmp_path / "group")) as reopened:
        assert reopened.head().height == 7 and reopened.get_block(4) == b"block-4"


def _replace(commit: BlockCommit, **fields: object) -> BlockCommit:
    return dataclasses.replace(commit, **fields)


@pytest.mark.parametrize("fault", ["height_gap", "tx_of_earlier_block", "block_hash_of_earlier_block",
                                   "unknown_root", "stored_tx", "non_bytes_value"])
def test_a_refused_commit_anywhere_in_the_group_writes_nothing(tmp_path, fault) -> None:
    with LedgerStore.open(str(tmp_path / "db")) as store:
        store.commit_block(chain(store, 1, 1)[0])
        before = snapshot(store, range(1, 6))
        commits = chain(store, 2, 4)
        bad = commits[2]
        if fault == "height_gap":
            commits = [commits[0], commits[2], commits[3]]
        elif fault == "tx_of_earlier_block":
            commits[2] = _replace(bad, txs=[commits[0].txs[0]], receipts=[], history=[])
        elif fault == "block_hash_of_earlier_block":
            commits[2] = _replace(bad, block_hash=commits[1].block_hash)
        elif fault == "unknown_root":
            commits[2] = _replace(bad, state_root=b"\x07" * 32, smt_nodes={})
        elif fault == "stored_tx":
            commits[2] = _replace(bad, txs=[(h("tx", 1, 0), b"again")], receipts=[], history=[])
        else:
            commits[2] = _replace(bad, extra={b"k": "not bytes"})
        with pytest.raises(InvalidCommitError):
            store.commit_blocks(commits)
        assert snapshot(store, range(1, 6)) == before and store.head().height == 1
        store.commit_blocks(chain(store, 2, 4))  # the valid group goes through afterwards
        assert store.head().height == 5


def test_a_root_among_an_earlier_commits_nodes_is_accepted(tmp_path) -> None:
    """A block that changes nothing keeps the root the block before it wrote: in the group, not yet in the store."""
    with LedgerStore.open(str(tmp_path / "db")) as store:
        store.commit_block(chain(store, 1, 1)[0])
        first = chain(store, 2, 1)[0]
        empty = BlockCommit(3, h("block", 3), b"block-3", first.state_root, [], [], {}, {}, [])
        store.commit_blocks([first, empty])
        assert store.head().height == 3 and store.state_root_at(3) == first.state_root


def test_a_failing_write_batch_leaves_nothing_and_an_oversized_group_is_refused(tmp_path, monkeypatch) -> None:
    with LedgerStore.open(str(tmp_path / "db")) as store:
        store.commit_block(chain(store, 1, 1)[0])
        before = snapshot(store, range(1, 5))
        commits = chain(store, 2, 3)

        def broken(*args: object) -> bytes:
            raise OSError("disk on fire")

        monkeypatch.setattr(store_module, "_history_key", broken)
        with pytest.raises(OSError):
            store.commit_blocks(commits)
        monkeypatch.undo()
        assert snapshot(store, range(1, 5)) == before
        with pytest.raises(InvalidCommitError, match="at most"):
            store.commit_blocks(chain(store, 2, MAX_GROUP_COMMIT_BLOCKS + 1, n_txs=0))
        store.commit_blocks([])
        assert store.head().height == 1
        store.commit_blocks(commits)
        assert store.head().height == 4
