"""Snapshot chunks (ledger/snapshot.py): every cut of a state reassembles to the tree's own root and nodes, and every
chunk verifies on its own; any change to a chunk or a manifest is refused."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codes
from ledger.smt import MemoryNodes, SparseMerkleTree
from ledger.snapshot import (
    MAX_CHUNK_BYTES,
    SnapshotError,
    SnapshotManifest,
    build_manifest,
    encode_chunk,
    plan_chunks,
    sorted_leaves,
    verify_chunk,
)


def snapshot_of(
    state: dict[bytes, bytes], target: int
) -> tuple[bytes, dict[bytes, bytes], SnapshotManifest, list[bytes]]:
    update = SparseMerkleTree(MemoryNodes()).update(state)
    leaves = sorted_leaves(state.items())
    plan = plan_chunks(leaves, target)
    manifest = build_manifest(7, update.root, leaves, plan)
    chunks = [encode_chunk(i, leaves, lo, hi) for i, (_, _, lo, hi) in enumerate(plan)]
    return update.root, update.nodes, manifest, chunks


states = st.dictionaries(st.binary(min_size=1, max_size=24), st.binary(max_size=40), max_size=60)


@settings(max_examples=150, deadline=None)
@given(states, st.integers(min_value=1, max_value=400))
def test_any_cut_reassembles_to_the_tree(state: dict[bytes, bytes], target: int) -> None:
    root, tree_nodes, manifest, chunks = snapshot_of(state, target)
    manifest = SnapshotManifest.decode(manifest.encode())
    nodes = manifest.verify(root)
    pairs = []
    for i, chunk in enumerate(chunks):
        pairs += verify_chunk(manifest, i, chunk, nodes)
    assert dict(pairs) == state and len(pairs) == len(state)
    # Exactly the nodes the tree itself stores: a synced store answers proofs and updates like a replayed one.
    assert nodes == tree_nodes or (not state and not nodes)


@settings(max_examples=100, deadline=None)
@given(states.filter(lambda s: len(s) >= 2), st.integers(min_value=1, max_value=200), st.data())
def test_a_changed_chunk_is_refused(state: dict[bytes, bytes], target: int, data: st.DataObject) -> None:
    root, _, manifest, chunks = snapshot_of(state, target)
    manifest.verify(root)
    candidates = [i for i, c in enumerate(manifest.chunks) if c.leaves]
    i = data.draw(st.sampled_from(candidates))
    pairs = msgpack.unpackb(chunks[i])[2]
    how = data.draw(st.sampled_from(["value", "drop", "add", "swap_index"]))
    if how == "value":
        j = data.draw(st.integers(0, len(pairs) - 1))
        pairs[j][1] = pairs[j][1] + b"x"
        bad = msgpack.packb([1, i, pairs], use_bin_type=True)
    elif how == "drop":
        bad = msgpack.packb([1, i, pairs[1:]], use_bin_type=True)
    elif how == "add":
        bad = msgpack.packb([1, i, [*pairs, [b"extra-key", b"v"]]], use_bin_type=True)
    else:
        bad = msgpack.packb([1, i + 1, pairs], use_bin_type=True)
    with pytest.raises(SnapshotError) as err:
        verify_chunk(manifest, i, bad)
    assert err.value.code == codes.SNAPSHOT_CHUNK_INVALID


def test_a_chunk_of_another_subtree_or_too_large_is_refused() -> None:
    state = {f"k{i}".encode(): b"v" * 50 for i in range(200)}
    root, _, manifest, chunks = snapshot_of(state, 1000)
    manifest.verify(root)
    assert len(chunks) > 4
    with pytest.raises(SnapshotError) as err:
        verify_chunk(manifest, 0, msgpack.packb([1, 0, msgpack.unpackb(chunks[1])[2]], use_bin_type=True))
    assert err.value.code == codes.SNAPSHOT_CHUNK_INVALID
    with pytest.raises(SnapshotError) as err:
        verify_chunk(manifest, 0, b"\x00" * (MAX_CHUNK_BYTES + 1))
    assert err.value.code == codes.SNAPSHOT_CHUNK_TOO_LARGE


def test_a_manifest_for_another_root_or_not_a_partition_is_refused() -> None:
    state = {f"k{i}".encode(): b"v" for i in range(100)}
    root, _, manifest, _ = snapshot_of(state, 300)
    other_root, _, _, _ = snapshot_of({**state, b"k0": b"w"}, 300)
    with pytest.raises(SnapshotError):
        manifest.verify(other_root)
    forged = SnapshotManifest(manifest.height, other_root, manifest.chunks)
    with pytest.raises(SnapshotError):
        forged.verify(other_root)  # the chunks combine to the real root, not the one named
    for chunks in (manifest.chunks[1:], manifest.chunks + manifest.chunks[-1:], manifest.chunks[::-1]):
        with pytest.raises(SnapshotError) as err:
            SnapshotManifest(manifest.height, root, chunks).verify(root)
        assert err.value.code == codes.SNAPSHOT_INVALID_MANIFEST
    with pytest.raises(SnapshotError):
        SnapshotManifest.decode(manifest.encode() + b"\x00")


def test_store_install_and_block_pruning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A store installed from verified chunks answers like the source store at the snapshot height and keeps
    committing on top; blocks pruned below a height answer HEIGHT_PRUNED, the head state stays."""
    from ledger.store import BlockCommit, LedgerStore, PrunedHeightError, SnapshotInstall, StoreCorruptError

    source = LedgerStore.open(str(tmp_path / "source"))
    state = {f"acct/{i}".encode(): f"v{i}".encode() for i in range(300)}
    tree = SparseMerkleTree(source)
    genesis = tree.update({b"meta": b"g"})
    source.commit_block(
        BlockCommit(0, b"\x00" * 32, b"block0", genesis.root, (), (), {b"meta": b"g"}, genesis.nodes, ())
    )
    root = genesis.root
    for h in range(1, 6):
        changes = {k: v + bytes([h]) for k, v in state.items() if int(k[5:]) % 5 == h - 1}
        up = SparseMerkleTree(source, root).update(changes)
        source.commit_block(
            BlockCommit(
                h,
                bytes([h]) * 32,
                b"block%d" % h,
                up.root,
                [(b"tx%d" % h, b"t")],
                [(b"tx%d" % h, b"r")],
                changes,
                up.nodes,
                [("acct@m", b"tx%d" % h)],
            )
        )
        root = up.root
    view = source.state_view()
    items = list(view.iter_state())
    view.close()
    leaves = sorted_leaves(items)
    plan = plan_chunks(leaves, 500)
    manifest = build_manifest(5, root, leaves, plan)
    upper = manifest.verify(root)
    target = LedgerStore.open(str(tmp_path / "target"))
    target.begin_snapshot_install(5)
    for i, (_, _, lo, hi) in enumerate(plan):
        nodes: dict[bytes, bytes] = {}
        pairs = verify_chunk(manifest, i, encode_chunk(i, leaves, lo, hi), nodes)
        target.install_chunk(pairs, nodes)
    target.close()
    with pytest.raises(StoreCorruptError):  # an unfinished install is never taken for a store
        LedgerStore.open(str(tmp_path / "target"))
    # State sync opens it anyway and starts over: the partial state is gone before anything new is written.
    target = LedgerStore.open(str(tmp_path / "target"), allow_unfinished_install=True)
    assert target.head() is None and list(target.iter_state())
    target.begin_snapshot_install(5)
    assert not list(target.iter_state())
    for i, (_, _, lo, hi) in enumerate(plan):
        nodes = {}
        target.install_chunk(verify_chunk(manifest, i, encode_chunk(i, leaves, lo, hi), nodes), nodes)
    target.finish_snapshot_install(SnapshotInstall(5, b"\x05" * 32, b"block5", root, genesis.root, upper, {}))
    target.close()
    target = LedgerStore.open(str(tmp_path / "target"))
    assert target.head() == source.head() and target.base_height() == 5
    assert target.recompute_state_root() == root
    for key in (b"acct/3", b"acct/299", b"absent"):
        assert target.prove(key, 5) == source.prove(key, 5)
    with pytest.raises(PrunedHeightError):
        target.get_state_at(b"acct/3", 4)
    up = SparseMerkleTree(target, root).update({b"acct/1": b"new"})
    target.commit_block(BlockCommit(6, b"\x06" * 32, b"block6", up.root, (), (), {b"acct/1": b"new"}, up.nodes, ()))
    assert target.get_state_at(b"acct/1", 6) == b"new"

    report = source.prune_blocks(4, extra_prefixes=())
    assert (report.kept_from, report.blocks, report.transactions) == (4, 4, 3)
    assert source.get_block(3) is None and source.get_block(4) == b"block4" and source.get_tx(b"tx3") is None
    assert source.get_receipt(b"tx4") == b"r" and [e.height for e in source.account_history("acct@m", limit=9)] == [
        5,
        4,
    ]
    with pytest.raises(PrunedHeightError):
        source.prove(b"acct/3", 2)
    assert source.get_state(b"acct/3") is not None and source.prove(b"acct/3", 5)[0] is not None


def test_a_state_view_does_not_see_later_commits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ledger.store import BlockCommit, LedgerStore

    store = LedgerStore.open(str(tmp_path / "db"))
    first = SparseMerkleTree(store).update({b"k": b"1"})
    store.commit_block(BlockCommit(0, b"\x00" * 32, b"b0", first.root, (), (), {b"k": b"1"}, first.nodes, ()))
    view = store.state_view()
    second = SparseMerkleTree(store, first.root).update({b"k": b"2", b"j": b"3"})
    store.commit_block(
        BlockCommit(1, b"\x01" * 32, b"b1", second.root, (), (), {b"k": b"2", b"j": b"3"}, second.nodes, ())
    )
    assert dict(view.iter_state()) == {b"k": b"1"} and view.head is not None and view.head.height == 0
    view.close()
    assert dict(store.iter_state()) == {b"k": b"2", b"j": b"3"}
    store.close()
