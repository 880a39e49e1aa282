"""The sparse Merkle tree's batch update: the native fast path (ledger._smt_native) against the pure-Python reference,
and the one-pass batch update against applying the same changes one key at a time.

Both implementations must give the same root AND the same new nodes (what a store persists), from every starting
tree: empty, a single key, populated ones, with inserts, overwrites, deletes of present and absent keys, and keys whose
paths share long prefixes. The native path is built by `pip install -e .` (setup.py; Debian: gcc python3-dev
libssl-dev, which .ci/run installs); these tests fail, rather than skip, when it is missing.
"""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codes
from ledger.smt import (
    EMPTY_ROOT,
    NATIVE_AVAILABLE,
    MemoryNodes,
    MissingNodeError,
    OverlayNodes,
    SmtError,
    SparseMerkleTree,
    key_path,
)


def _path_int(key: bytes) -> int:
    return int.from_bytes(key_path(key), "big")


def _long_prefix_keys(count: int = 4096, pairs: int = 24) -> list[bytes]:
    """Keys whose paths share long prefixes: among `count` keys sorted by path, the neighbours sharing the most
    leading bits (about 2·log2(count) ≈ 24 bits for the best pairs), plus their neighbours."""
    keys = sorted((b"lp/%d" % i for i in range(count)), key=_path_int)
    shared = []
    for a, b in itertools.pairwise(keys):
        shared.append((256 - (_path_int(a) ^ _path_int(b)).bit_length(), a, b))
    shared.sort(reverse=True)
    out: list[bytes] = []
    for _bits, a, b in shared[:pairs]:
        out += [a, b]
    return list(dict.fromkeys(out))


LONG_PREFIX_KEYS = _long_prefix_keys()


def _require_native() -> None:
    assert NATIVE_AVAILABLE, (
        "ledger._smt_native is not built: `pip install -e .` builds it (needs gcc, python3-dev, libssl-dev)"
    )


def _both(nodes: MemoryNodes, root: bytes, changes: dict[bytes, bytes | None]):
    tree = SparseMerkleTree(nodes, root)
    ref = tree.update(changes, native=False)
    fast = tree.update(changes, native=True)
    assert fast.root == ref.root
    assert fast.nodes == ref.nodes
    assert list(fast.nodes) == list(ref.nodes)  # same nodes, created in the same order
    return ref


def _per_key(nodes: MemoryNodes, root: bytes, changes: dict[bytes, bytes | None], native: bool) -> bytes:
    """The same changes applied one key at a time (each its own update), in a shuffled order."""
    items = list(changes.items())
    random.Random(len(items)).shuffle(items)
    for key, value in items:
        update = SparseMerkleTree(nodes, root).update({key: value}, native=native)
        nodes.put_nodes(update.nodes)
        root = update.root
    return root


def test_the_native_path_is_built_and_is_the_default():
    _require_native()
    nodes = MemoryNodes()
    changes = {b"k%d" % i: b"v%d" % i for i in range(50)}
    default = SparseMerkleTree(nodes).update(changes)
    assert default == SparseMerkleTree(nodes).update(changes, native=True)
    assert default == SparseMerkleTree(nodes).update(changes, native=False)


def test_fixed_cases_match_the_reference():
    _require_native()
    nodes = MemoryNodes()
    root = EMPTY_ROOT
    cases: list[dict[bytes, bytes | None]] = [
        {},  # nothing
        {b"absent": None},  # deleting from the empty tree
        {b"only": b"1"},  # a single key
        {b"only": b"2"},  # overwrite the single leaf
        {b"only": None},  # back to empty
        {b"a": b"", b"b": b"x" * 300},  # an empty value, a long one
        {b"a": None, b"c": b"3"},  # delete one of two, insert another
        {k: b"p" for k in LONG_PREFIX_KEYS},  # long shared prefixes
        {k: None for k in LONG_PREFIX_KEYS[::2]},  # delete one of each pair: collapses up long chains
        {k: b"q" for k in LONG_PREFIX_KEYS[::2]},  # and back
    ]
    for changes in cases:
        update = _both(nodes, root, changes)
        nodes.put_nodes(update.nodes)
        root = update.root
    # Deletes of absent keys only: the root stays (the nodes re-made on the way are ones the store already holds).
    update = _both(nodes, root, {b"missing-%d" % i: None for i in range(20)})
    assert update.root == root
    assert all(nodes.get_node(h) == node for h, node in update.nodes.items())


def test_a_large_random_history_matches_the_reference():
    _require_native()
    rng = random.Random(14)
    nodes = MemoryNodes()
    root = EMPTY_ROOT
    live: list[bytes] = []
    for block in range(12):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randrange(1, 600)):
            r = rng.random()
            if live and r < 0.25:
                changes[rng.choice(live)] = None
            elif live and r < 0.6:
                changes[rng.choice(live)] = rng.randbytes(rng.randrange(0, 40))
            else:
                changes[b"key/%d/%d" % (block, rng.randrange(10**9))] = rng.randbytes(rng.randrange(0, 40))
        update = _both(nodes, root, changes)
        nodes.put_nodes(update.nodes)
        root = update.root
        live = [k for k in {*live, *changes} if SparseMerkleTree(nodes, root).get(k) is not None]


def test_a_missing_node_is_the_same_typed_error():
    _require_native()
    nodes = MemoryNodes()
    update = SparseMerkleTree(nodes).update({b"k%d" % i: b"v" for i in range(40)})
    partial = MemoryNodes({h: n for i, (h, n) in enumerate(update.nodes.items()) if i % 3})
    for native in (False, True):
        with pytest.raises(MissingNodeError) as info:
            SparseMerkleTree(partial, update.root).update({b"k%d" % i: b"w" for i in range(40)}, native=native)
        assert info.value.code == codes.MISSING_SMT_NODE


def test_reads_through_a_python_node_reader():
    _require_native()
    base = MemoryNodes()
    first = SparseMerkleTree(base).update({b"a%d" % i: b"1" for i in range(30)})
    reader = OverlayNodes(base, first.nodes)  # get_node is a Python method here, not a dict's lookup
    _both(reader, first.root, {b"a%d" % i: (None if i % 2 else b"2") for i in range(0, 40, 3)})  # type: ignore[arg-type]


keys_st = st.one_of(st.binary(max_size=4), st.sampled_from(LONG_PREFIX_KEYS))
values_st = st.one_of(st.none(), st.binary(max_size=12))
batch_st = st.dictionaries(keys_st, values_st, max_size=24)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys_st, st.binary(max_size=12), max_size=24), batch_st)
def test_batch_equals_per_key_and_native_equals_reference(base, changes):
    """From a random starting tree (possibly empty or a single key), one batch update gives the same root as the
    same changes one key at a time; the native batch gives the reference's root and nodes."""
    _require_native()
    start = SparseMerkleTree(MemoryNodes()).update(base, native=False)
    batch = _both(MemoryNodes(start.nodes), start.root, changes)
    assert _per_key(MemoryNodes(start.nodes), start.root, changes, native=False) == batch.root
    assert _per_key(MemoryNodes(start.nodes), start.root, changes, native=True) == batch.root
    # Every new node is content-addressed and the new tree reads back the model.
    for h, node in batch.nodes.items():
        if node[0] == 0:
            assert hashlib.sha256(node[:33] + hashlib.sha256(node[33:]).digest()).digest() == h
        else:
            assert hashlib.sha256(node).digest() == h
    nodes = MemoryNodes(start.nodes)
    nodes.put_nodes(batch.nodes)
    model = {**base, **changes}
    after = SparseMerkleTree(nodes, batch.root)
    for key, value in model.items():
        assert after.get(key) == value


def test_invalid_changes_are_the_same_typed_error():
    _require_native()
    tree = SparseMerkleTree(MemoryNodes())
    bad: list[dict] = [
        {"str-key": b"v"},
        {b"k": 5},
        {b"k" * 2000: b"v"},
        {b"k": b"v" * (1 << 21)},
        {b"ok": b"v", 7: None},
    ]
    for changes in bad:
        errors = []
        for native in (False, True):
            with pytest.raises(SmtError) as info:
                tree.update(changes, native=native)
            errors.append((type(info.value), info.value.code, str(info.value)))
        assert errors[0] == errors[1]
        assert errors[0][1] == codes.INVALID_STATE_CHANGE
