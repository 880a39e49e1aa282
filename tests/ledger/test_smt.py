"""The compact sparse Merkle tree: roots, reads at any root, proofs, tampering, strict decoding."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import codes
from ledger.smt import (
    EMPTY_HASH,
    EMPTY_ROOT,
    INTERNAL_TAG,
    LEAF_TAG,
    MemoryNodes,
    MissingNodeError,
    OverlayNodes,
    ProofLeaf,
    SmtError,
    SparseMerkleTree,
    StateProof,
    StateProofError,
    internal_hash,
    key_path,
    leaf_hash,
    value_hash,
    verify_proof,
)


def build(items: dict[bytes, bytes | None], nodes: MemoryNodes | None = None, root: bytes = EMPTY_ROOT):
    nodes = nodes if nodes is not None else MemoryNodes()
    update = SparseMerkleTree(nodes, root).update(items)
    nodes.put_nodes(update.nodes)
    return SparseMerkleTree(nodes, update.root), nodes


def recompute_root(items: dict[bytes, bytes]) -> bytes:
    """An independent, naive definition of the root: recursive over the set of (path, value) leaves."""
    leaves = sorted((key_path(k), v) for k, v in items.items())

    def bit(path: bytes, depth: int) -> int:
        return (path[depth // 8] >> (7 - depth % 8)) & 1

    def subtree(group: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not group:
            return EMPTY_HASH
        if len(group) == 1:
            return leaf_hash(group[0][0], value_hash(group[0][1]))
        left = [x for x in group if bit(x[0], depth) == 0]
        right = [x for x in group if bit(x[0], depth) == 1]
        return internal_hash(subtree(left, depth + 1), subtree(right, depth + 1))

    return subtree(leaves, 0)


def reachable(nodes: MemoryNodes, root: bytes) -> set[bytes]:
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        h = stack.pop()
        if h == EMPTY_HASH or h in seen:
            continue
        seen.add(h)
        node = nodes.get_node(h)
        if node[0] == INTERNAL_TAG:
            stack += [node[1:33], node[33:]]
    return seen


def accepted(root: bytes, key: bytes, value: bytes | None, make) -> bool:
    """Whether a (possibly tampered) proof is accepted; building a malformed proof counts as rejection."""
    try:
        proof = make()
    except StateProofError:
        return False
    return verify_proof(root, key, value, proof)


KEYS = [b"acct/%d" % i for i in range(300)]


def test_empty_tree():
    tree = SparseMerkleTree(MemoryNodes())
    assert tree.root == EMPTY_ROOT == bytes(32)
    assert tree.get(b"anything") is None
    proof = tree.prove(b"anything")
    assert proof == StateProof(depth=0, bitmap=b"", siblings=())
    assert verify_proof(EMPTY_ROOT, b"anything", None, proof)
    assert not verify_proof(EMPTY_ROOT, b"anything", b"x", proof)
    update = tree.update({})
    assert update.root == EMPTY_ROOT and update.nodes == {}
    assert tree.update({b"a": None}).root == EMPTY_ROOT


def test_single_key_root_is_its_leaf():
    tree, nodes = build({b"k": b"v"})
    assert tree.root == leaf_hash(key_path(b"k"), value_hash(b"v"))
    assert nodes.get_node(tree.root) == bytes([LEAF_TAG]) + key_path(b"k") + b"v"
    assert tree.get(b"k") == b"v"
    assert tree.get(b"other") is None
    proof = tree.prove(b"k")
    assert proof.depth == 0 and proof.siblings == ()
    assert verify_proof(tree.root, b"k", b"v", proof)
    absent = tree.prove(b"other")
    assert absent.other_leaf == ProofLeaf(key_path(b"k"), value_hash(b"v"))
    assert verify_proof(tree.root, b"other", None, absent)


def test_many_keys_match_naive_definition_and_read_back():
    items = {k: b"value-" + k for k in KEYS}
    tree, nodes = build(items)
    assert tree.root == recompute_root(items)
    for k, v in items.items():
        assert tree.get(k) == v
    assert tree.get(b"missing") is None
    # One leaf node per key; at least n-1 internal nodes (more where paths share prefixes: one-child levels).
    internal = [n for n in nodes._nodes.values() if n[0] == INTERNAL_TAG]
    leaves = [n for n in nodes._nodes.values() if n[0] == LEAF_TAG]
    assert len(leaves) == len(items)
    assert len(internal) >= len(items) - 1


def test_order_independence_of_batches():
    rng = random.Random(7)
    items = {k: b"v" + k for k in KEYS}
    one_batch, _ = build(items)
    keys = list(items)
    rng.shuffle(keys)
    tree, nodes = build({})
    for i in range(0, len(keys), 17):
        tree, nodes = build({k: items[k] for k in keys[i : i + 17]}, nodes, tree.root)
    assert tree.root == one_batch.root
    # Overwrite then restore in another order: same root again.
    tree, nodes = build({k: b"tmp" for k in keys[:50]}, nodes, tree.root)
    assert tree.root != one_batch.root
    tree, nodes = build({k: items[k] for k in reversed(keys[:50])}, nodes, tree.root)
    assert tree.root == one_batch.root


def test_delete_back_to_previous_root():
    base = {k: b"v" for k in KEYS[:100]}
    tree, nodes = build(base)
    before = tree.root
    tree2, nodes = build({k: b"new" for k in KEYS[100:140]} | {KEYS[0]: b"changed"}, nodes, before)
    assert tree2.root != before
    tree3, nodes = build({k: None for k in KEYS[100:140]} | {KEYS[0]: b"v"}, nodes, tree2.root)
    assert tree3.root == before
    # Deleting everything gives the empty root; deleting an absent key changes nothing.
    assert tree3.update({b"absent": None}).root == before
    assert tree3.update(dict.fromkeys(KEYS[:100])).root == EMPTY_ROOT


def test_update_is_pure_and_reports_new_nodes():
    tree, nodes = build({k: b"v" for k in KEYS[:10]})
    size = len(nodes)
    update = tree.update({KEYS[0]: b"w"})
    assert len(nodes) == size  # nothing written
    assert update.root != tree.root
    assert update.root in update.nodes
    assert SparseMerkleTree(nodes, update.root).root == update.root
    with pytest.raises(MissingNodeError):
        SparseMerkleTree(nodes, update.root).get(KEYS[0])  # nodes not persisted yet
    nodes.put_nodes(update.nodes)
    assert SparseMerkleTree(nodes, update.root).get(KEYS[0]) == b"w"
    assert set(update.nodes) <= reachable(nodes, update.root)  # no garbage is written
    for h, node in update.nodes.items():
        if node[0] == INTERNAL_TAG:
            assert internal_hash(node[1:33], node[33:]) == h
        else:
            assert leaf_hash(node[1:33], value_hash(node[33:])) == h


def test_overlay_reads_unpersisted_updates():
    base, nodes = build({k: b"v" for k in KEYS[:50]})
    first = base.update({KEYS[0]: b"w"})
    second = SparseMerkleTree(OverlayNodes(nodes, first.nodes), first.root).update({KEYS[1]: b"x"})
    overlay = OverlayNodes(nodes, second.nodes, first.nodes)
    tree = SparseMerkleTree(overlay, second.root)
    assert tree.get(KEYS[0]) == b"w" and tree.get(KEYS[1]) == b"x" and tree.get(KEYS[2]) == b"v"
    assert verify_proof(second.root, KEYS[1], b"x", tree.prove(KEYS[1]))
    assert second.root == build({k: b"v" for k in KEYS[:50]} | {KEYS[0]: b"w", KEYS[1]: b"x"})[0].root


def test_invalid_changes_are_typed_errors():
    tree = SparseMerkleTree(MemoryNodes())
    with pytest.raises(SmtError):
        tree.update({"str-key": b"v"})  # type: ignore[dict-item]
    with pytest.raises(SmtError):
        tree.update({b"k": 5})  # type: ignore[dict-item]
    with pytest.raises(SmtError):
        tree.update({b"k" * 2000: b"v"})


def test_historical_reads_and_proofs():
    tree, nodes = build({k: b"v1" for k in KEYS[:60]})
    roots = [tree.root]
    models = [{k: b"v1" for k in KEYS[:60]}]
    for i in range(5):
        changes = {KEYS[i]: b"v%d" % (i + 2), KEYS[60 + i]: b"new", KEYS[30 + i]: None}
        tree, nodes = build(changes, nodes, tree.root)
        model = dict(models[-1])
        for k, v in changes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        roots.append(tree.root)
        models.append(model)
    for root, model in zip(roots, models, strict=True):
        assert recompute_root(model) == root
        for k in KEYS[:70]:
            assert tree.get(k, root) == model.get(k)
            proof = tree.prove(k, root)
            assert verify_proof(root, k, model.get(k), proof)
            assert not verify_proof(root, k, b"forged", proof)
    # A proof from one root does not verify against another root where the value differs.
    assert not verify_proof(roots[0], KEYS[0], b"v2", tree.prove(KEYS[0], roots[1]))


def test_non_inclusion_kinds():
    tree, _ = build({k: b"v" for k in KEYS})
    kinds = set()
    for i in range(400):
        key = b"absent/%d" % i
        proof = tree.prove(key)
        assert verify_proof(tree.root, key, None, proof)
        assert not verify_proof(tree.root, key, b"v", proof)
        kinds.add("leaf" if proof.other_leaf is not None else "empty")
    assert kinds == {"leaf", "empty"}


def test_inclusion_proof_cannot_claim_absence_and_vice_versa():
    tree, _ = build({k: b"v" for k in KEYS})
    proof = tree.prove(KEYS[5])
    assert not verify_proof(tree.root, KEYS[5], None, proof)
    # Dress the inclusion proof up as a non-inclusion proof with the key's own leaf: refused.
    fake = dataclasses.replace(proof, other_leaf=ProofLeaf(key_path(KEYS[5]), value_hash(b"v")))
    assert not verify_proof(tree.root, KEYS[5], None, fake)


def _tamper_cases(proof: StateProof):
    yield "value", None
    if proof.siblings:
        s = bytearray(proof.siblings[0])
        s[0] ^= 1
        yield "sibling", lambda: dataclasses.replace(proof, siblings=(bytes(s), *proof.siblings[1:]))
        yield "drop-sibling", lambda: dataclasses.replace(proof, siblings=proof.siblings[1:])
    if proof.depth:
        b = bytearray(proof.bitmap)
        b[0] ^= 0x80
        yield "bitmap", lambda: dataclasses.replace(proof, bitmap=bytes(b))
        yield "depth", lambda: dataclasses.replace(proof, depth=proof.depth - 1, bitmap=proof.bitmap)
    if proof.other_leaf is not None:
        p = bytearray(proof.other_leaf.value_hash)
        p[3] ^= 4
        yield "other-leaf", lambda: dataclasses.replace(proof, other_leaf=ProofLeaf(proof.other_leaf.path, bytes(p)))


def test_tampered_proofs_fail():
    items = {k: b"value" + k for k in KEYS[:200]}
    tree, _ = build(items)
    checked = 0
    for key in [*KEYS[:20], *(b"absent/%d" % i for i in range(20))]:
        value = items.get(key)
        proof = tree.prove(key)
        assert verify_proof(tree.root, key, value, proof)
        for name, make in _tamper_cases(proof):
            if name == "value":
                assert not verify_proof(tree.root, key, b"tampered", proof)
            else:
                assert not accepted(tree.root, key, value, make), name
            checked += 1
        assert not verify_proof(tree.root, key + b"x", value, proof)  # another key
        bad_root = bytearray(tree.root)
        bad_root[31] ^= 1
        assert not verify_proof(bytes(bad_root), key, value, proof)  # another root
        # Every single-byte flip of the canonical bytes is either rejected when decoding or fails to verify.
        raw = proof.to_bytes()
        for i in range(len(raw)):
            flipped = bytearray(raw)
            flipped[i] ^= 0x01
            assert not accepted(tree.root, key, value, lambda f=flipped: StateProof.from_bytes(bytes(f)))
    assert checked > 100


def test_proof_size_is_logarithmic():
    items = {b"k%d" % i: b"v" for i in range(4096)}
    tree, _ = build(items)
    sizes = [len(tree.prove(b"k%d" % i).to_bytes()) for i in range(0, 4096, 97)]
    depths = [tree.prove(b"k%d" % i).depth for i in range(0, 4096, 97)]
    assert max(depths) < 40  # log2(4096) = 12, plus a few shared bits
    assert max(sizes) < 40 * 34 + 80


def test_proof_bytes_and_json_round_trip():
    tree, _ = build({k: b"v" for k in KEYS})
    for key in [KEYS[1], b"absent/1", b"absent/2", b"absent/3"]:
        proof = tree.prove(key)
        assert StateProof.from_bytes(proof.to_bytes()) == proof
        assert StateProof.from_json(proof.to_json()) == proof
        assert StateProof.from_json(json.dumps(proof.to_json())) == proof


def test_from_bytes_rejects_non_canonical_and_malformed():
    tree, _ = build({k: b"v" for k in KEYS})
    proof = tree.prove(KEYS[0])
    good = [1, proof.depth, proof.bitmap, list(proof.siblings), None]
    assert StateProof.from_bytes(msgpack.packb(good)) == proof
    bad_inputs = [
        b"",
        b"\xc1",
        msgpack.packb(good) + b"\x00",  # trailing bytes
        msgpack.packb([2, *good[1:]]),  # version
        msgpack.packb(good[:4]),  # missing field
        msgpack.packb([*good, None]),  # extra field
        msgpack.packb([1, proof.depth, proof.bitmap.hex(), list(proof.siblings), None]),  # str, not bin
        msgpack.packb([1, float(proof.depth), proof.bitmap, list(proof.siblings), None]),  # float
        msgpack.packb([1, proof.depth, proof.bitmap, list(proof.siblings), [b"x" * 32]]),  # other_leaf shape
        msgpack.packb([1, proof.depth, proof.bitmap, [*proof.siblings, b"\x01" * 32], None]),  # count
        msgpack.packb([1, proof.depth, proof.bitmap, [EMPTY_HASH] * len(proof.siblings), None]),  # empty sibling
        msgpack.packb([1, 257, b"\x00" * 33, [], None]),  # depth too large
        msgpack.packb([1, 3, b"\x01", [b"\x01" * 32], None]),  # bit set beyond depth
        msgpack.packb({"depth": 1}),
        # a non-canonical integer width: depth as uint16
        b"\x95\x01\xcd" + proof.depth.to_bytes(2, "big") + msgpack.packb(good)[3:],
    ]
    for raw in bad_inputs:
        with pytest.raises(StateProofError) as info:
            StateProof.from_bytes(raw)
        assert info.value.code == codes.INVALID_STATE_PROOF
    for obj in [
        "not json",
        {"depth": 0},
        proof.to_json() | {"bitmap": proof.bitmap.hex().upper() or "ZZ"},
        proof.to_json() | {"extra": 1},
        proof.to_json() | {"siblings": ["00" * 33]},
        proof.to_json() | {"version": 2},
        proof.to_json() | {"other_leaf": {"path": "00"}},
    ]:
        with pytest.raises(StateProofError):
            StateProof.from_json(obj)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_from_bytes_random(raw):
    try:
        proof = StateProof.from_bytes(raw)
    except StateProofError:
        return
    assert proof.to_bytes() == raw
    assert verify_proof(EMPTY_ROOT, b"k", None, proof) in (True, False)


_FUZZ_TREE, _ = build({k: b"v" + k for k in KEYS[:64]})
_FUZZ_PROOFS = [(k, _FUZZ_TREE.prove(k).to_bytes()) for k in [*KEYS[:8], b"absent/1", b"absent/2"]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FUZZ_PROOFS), st.data())
def test_fuzz_mutated_proof_bytes(case, data):
    key, raw = case
    value = _FUZZ_TREE.get(key)
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if op == "flip" and mutated:
            mutated[pos] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            mutated.insert(pos, data.draw(st.integers(0, 255)))
        elif op == "delete" and mutated:
            del mutated[pos]
        elif op == "truncate":
            del mutated[pos:]
    try:
        proof = StateProof.from_bytes(bytes(mutated))
    except StateProofError:
        return
    ok = verify_proof(_FUZZ_TREE.root, key, value, proof)
    assert isinstance(ok, bool)
    if ok:
        assert bytes(mutated) == raw  # only the original proof is canonical and valid


def test_verify_never_raises_on_garbage():
    tree, _ = build({k: b"v" for k in KEYS[:10]})
    proof = tree.prove(KEYS[0])
    weird = object.__new__(StateProof)
    for name, val in (("depth", "x"), ("bitmap", None), ("siblings", [1]), ("other_leaf", 5)):
        object.__setattr__(weird, name, val)
    for args in [
        (tree.root, KEYS[0], b"v", weird),
        (tree.root, KEYS[0], b"v", "proof"),
        (b"short", KEYS[0], b"v", proof),
        (tree.root, "str", b"v", proof),
        (tree.root, KEYS[0], 7, proof),
        (None, None, None, None),
    ]:
        assert verify_proof(*args) is False  # type: ignore[arg-type]


keys_st = st.binary(min_size=0, max_size=6)
values_st = st.one_of(st.none(), st.binary(min_size=0, max_size=8))


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.dictionaries(keys_st, values_st, max_size=12), min_size=1, max_size=8), st.lists(keys_st, max_size=6)
)
def test_property_against_dict_model(batches, probes):
    nodes = MemoryNodes()
    tree = SparseMerkleTree(nodes)
    model: dict[bytes, bytes] = {}
    history: list[tuple[bytes, dict[bytes, bytes]]] = [(tree.root, {})]
    for batch in batches:
        update = tree.update(batch)
        nodes.put_nodes(update.nodes)
        assert set(update.nodes) <= reachable(nodes, update.root)
        tree = SparseMerkleTree(nodes, update.root)
        for k, v in batch.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        history.append((tree.root, dict(model)))
        assert tree.root == recompute_root(model)
        # Rebuilding the same contents in one batch gives the same root (history independence).
        assert SparseMerkleTree(MemoryNodes()).update(dict(model)).root == tree.root
    for root, snapshot in history:
        for k in [*snapshot, *probes]:
            assert tree.get(k, root) == snapshot.get(k)
            proof = tree.prove(k, root)
            assert verify_proof(root, k, snapshot.get(k), proof)
            assert StateProof.from_bytes(proof.to_bytes()) == proof
            assert tree.get_with_proof(k, root) == (snapshot.get(k), proof)


# ---------------------------------------------------------------------------------------------------------------
# Test vectors: tests/vectors/state_proof.json, regenerated with `python tests/ledger/test_smt.py --write-vectors`.

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "state_proof.json"
VECTOR_ITEMS = {b"bal/alice@bank-a/BOND-A": b"\x00\x00\x00\x00\x00\x01\x86\xa0"} | {
    b"bal/holder-%d@bank-b/CASH-T" % i: (1000 * (i + 1)).to_bytes(8, "big") for i in range(7)
}


def _walk(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> list[str]:
    """The hashes computed by verification, terminal first, root last (to debug another implementation)."""
    path = key_path(key)
    if value is not None:
        h = leaf_hash(path, value_hash(value))
    elif proof.other_leaf is None:
        h = EMPTY_HASH
    else:
        h = leaf_hash(proof.other_leaf.path, proof.other_leaf.value_hash)
    steps = [h.hex()]
    for level in range(proof.depth - 1, -1, -1):
        sibling = proof.sibling_at(level)
        bit = (path[level // 8] >> (7 - level % 8)) & 1
        h = internal_hash(sibling, h) if bit else internal_hash(h, sibling)
        steps.append(h.hex())
    assert h == root
    return steps


def _case(name: str, tree: SparseMerkleTree, key: bytes, note: str) -> dict:
    value = tree.get(key)
    proof = tree.prove(key)
    assert verify_proof(tree.root, key, value, proof)
    return {
        "name": name,
        "note": note,
        "root": tree.root.hex(),
        "key": key.hex(),
        "key_utf8": key.decode(),
        "path": key_path(key).hex(),
        "value": None if value is None else value.hex(),
        "proof_bytes": proof.to_bytes().hex(),
        "proof_json": proof.to_json(),
        "verification_hashes": _walk(tree.root, key, value, proof),
        "valid": True,
    }


def make_vectors() -> dict:
    empty = SparseMerkleTree(MemoryNodes())
    one, _ = build({b"bal/alice@bank-a/BOND-A": VECTOR_ITEMS[b"bal/alice@bank-a/BOND-A"]})
    tree, _ = build(dict(VECTOR_ITEMS))
    cases = [
        _case("empty-tree-absent", empty, b"bal/alice@bank-a/BOND-A", "non-inclusion in the empty tree: depth 0"),
        _case("single-leaf-present", one, b"bal/alice@bank-a/BOND-A", "the root is the only leaf: depth 0"),
        _case("single-leaf-absent", one, b"bal/bob@bank-a/BOND-A", "non-inclusion ending in another leaf"),
    ]
    for key in VECTOR_ITEMS:
        cases.append(_case("present-" + key.decode(), tree, key, "inclusion"))
    kinds: set[str] = set()
    for i in range(100):
        key = b"bal/nobody-%d@bank-c/BOND-A" % i
        kind = "other-leaf" if tree.prove(key).other_leaf is not None else "empty"
        if kind not in kinds:
            kinds.add(kind)
            cases.append(_case(f"absent-{kind}", tree, key, f"non-inclusion ending in {kind.replace('-', ' ')}"))
    assert kinds == {"other-leaf", "empty"}
    good = cases[4]
    tampered_value = dict(good, name="tampered-value", value=(b"\xff" * 8).hex(), valid=False)
    tampered_value["note"] = "the proof of a present key with a different value: must fail"
    tampered_value.pop("verification_hashes")
    raw = bytearray(bytes.fromhex(good["proof_bytes"]))
    raw[-2] ^= 0x01  # inside the last sibling
    tampered_sibling = dict(good, name="tampered-sibling", proof_bytes=bytes(raw).hex(), valid=False)
    tampered_sibling["proof_json"] = StateProof.from_bytes(bytes(raw)).to_json()
    tampered_sibling["note"] = "one bit of the last sibling flipped: must fail"
    tampered_sibling.pop("verification_hashes")
    cases += [tampered_value, tampered_sibling]
    return {
        "description": "Sparse Merkle tree state proofs (docs/state-proofs.md). Generated by "
        "`python tests/ledger/test_smt.py --write-vectors`; checked by tests/ledger/test_smt.py.",
        "hash_function": "sha256",
        "empty_hash": EMPTY_HASH.hex(),
        "primitives": {
            "key": b"k".hex(),
            "path": key_path(b"k").hex(),
            "value": b"v".hex(),
            "value_hash": value_hash(b"v").hex(),
            "leaf_hash": leaf_hash(key_path(b"k"), value_hash(b"v")).hex(),
            "internal_left": (b"\x11" * 32).hex(),
            "internal_right": (b"\x22" * 32).hex(),
            "internal_hash": internal_hash(b"\x11" * 32, b"\x22" * 32).hex(),
        },
        "tree": {k.hex(): v.hex() for k, v in VECTOR_ITEMS.items()},
        "tree_root": tree.root.hex(),
        "cases": cases,
    }


def test_vectors_file_matches_and_verifies():
    stored = json.loads(VECTORS_PATH.read_text())
    assert stored == make_vectors()
    prim = stored["primitives"]
    assert leaf_hash(bytes.fromhex(prim["path"]), bytes.fromhex(prim["value_hash"])).hex() == prim["leaf_hash"]
    for case in stored["cases"]:
        root, key = bytes.fromhex(case["root"]), bytes.fromhex(case["key"])
        value = None if case["value"] is None else bytes.fromhex(case["value"])
        from_bytes = StateProof.from_bytes(bytes.fromhex(case["proof_bytes"]))
        assert StateProof.from_json(case["proof_json"]) == from_bytes
        assert verify_proof(root, key, value, from_bytes) is case["valid"], case["name"]


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write-vectors"]:
        sys.exit("usage: python tests/ledger/test_smt.py --write-vectors")
    VECTORS_PATH.write_text(json.dumps(make_vectors(), indent=2) + "\n")
    print(f"wrote {VECTORS_PATH}")


def test_from_json_text_refuses_hostile_input_with_a_typed_error():
    """Regression: deeply nested JSON text raised RecursionError (not StateProofError), and hex with spaces was a
    second accepted spelling of the same proof."""
    tree, _ = build({k: b"v" for k in KEYS})
    proof = tree.prove(KEYS[1])
    with pytest.raises(StateProofError):
        StateProof.from_json("[" * 100_000)
    with pytest.raises(StateProofError):
        StateProof.from_json(" " * (70 * 1024) + json.dumps(proof.to_json()))
    spaced = proof.to_json()
    spaced["siblings"] = [s[:2] + " " + s[2:] for s in spaced["siblings"]]
    assert spaced["siblings"], "the proof must have a sibling for this check"
    with pytest.raises(StateProofError):
        StateProof.from_json(spaced)
    # The pretty-printed form of a maximal proof (256 levels) still fits the text limit.
    deep = StateProof(depth=256, bitmap=b"\xff" * 32, siblings=tuple(bytes([i % 255 + 1]) * 32 for i in range(256)))
    assert StateProof.from_json(json.dumps(deep.to_json(), indent=4)) == deep
