"""apply_block as a pure function: block checks, speculative execution on uncommitted parents, trusted codecs."""

from __future__ import annotations

import pytest

from ledger import operations as o
from ledger.codec import decode, decode_trusted, encode, encode_trusted
from ledger.context import BlockContext
from ledger.events import RECEIPT, decode_receipt, encode_receipt
from ledger.keys import RECORD_BY_TAG
from ledger.smt import SparseMerkleTree
from ledger.state import MemoryState, Overlay, PendingNodes
from ledger.transition import apply_block
from tests.ledger.world import CHAIN, World, standard_world

ISSUER = "treasury@issuer-co"
A, B = "alice@bank-a", "bob@bank-b"


def test_block_context_is_checked() -> None:
    w = standard_world()
    led = w.ledger
    with pytest.raises(AssertionError):
        apply_block(led.state, BlockContext(CHAIN, led.height + 2, led.time), [], tree=led.tree)
    with pytest.raises(AssertionError):
        apply_block(led.state, BlockContext("other", led.height + 1, led.time), [], tree=led.tree)
    with pytest.raises(AssertionError):
        apply_block(led.state, BlockContext(CHAIN, led.height + 1, led.time - 1), [], tree=led.tree)
    with pytest.raises(AssertionError):
        apply_block(MemoryState(), BlockContext(CHAIN, 1, 0), [], tree=led.tree)


def test_apply_block_is_pure() -> None:
    w = standard_world()
    led = w.ledger
    before = dict(led.state.items())
    t = w.tx([ISSUER], o.Issue(ISSUER, "BOND-A", A, 5))
    out1 = led.execute([t], time=w.time + 1)
    out2 = led.execute([t], time=w.time + 1)
    assert out1.state_root == out2.state_root and out1.changes == out2.changes
    assert dict(led.state.items()) == before


def test_speculative_chain_then_commit() -> None:
    """Execute block h+1 on top of the uncommitted block h, then commit both: same roots as one by one."""
    w1, w2 = standard_world(), standard_world()
    t1 = w1.tx([ISSUER], o.Issue(ISSUER, "BOND-A", A, 100))
    t2 = w1.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 40),)))
    led = w1.ledger
    ctx1 = BlockContext(CHAIN, led.height + 1, led.time + 1)
    ctx2 = BlockContext(CHAIN, led.height + 2, led.time + 2)
    out1 = apply_block(led.state, ctx1, [t1], tree=led.tree)
    tree1 = SparseMerkleTree(PendingNodes(led.nodes, out1.smt_nodes), out1.state_root)
    out2 = apply_block(out1.overlay, ctx2, [t2], tree=tree1)
    assert [r.code for r in out2.receipts] == [0]
    # a losing branch on top of out1 is simply dropped
    loser = apply_block(out1.overlay, ctx2, [w1.tx([A], o.Redeem(A, "BOND-A", 100))], tree=tree1)
    assert loser.state_root != out2.state_root
    led.commit(out1)
    led.commit(out2)
    assert led.audit() == {"BOND-A": 100, "CASH-T": 0}
    # the same blocks applied one after the other on a fresh world give the same roots
    r1 = w2.ledger.apply([t1], time=ctx1.time)
    r2 = w2.ledger.apply([t2], time=ctx2.time)
    assert (r1.state_root, r2.state_root) == (out1.state_root, out2.state_root)


def test_overlay_reads_through_layers() -> None:
    base = MemoryState({b"M": b"\x93\xa1x\x00\x00"})
    block = Overlay(base)
    tx = Overlay(block)
    assert tx.get(b"M").chain_id == "x"
    tx.put(b"P" + b"a@b", None)
    assert block.get(b"Pa@b") is None and block.get_state(b"Pa@b") is None
    tx.commit()
    assert list(block.written_keys()) == [b"Pa@b"]
    assert block.changes() == {b"Pa@b": None}


def test_trusted_codecs_match_strict_ones(tmp_path: object) -> None:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 7))
    out = w.ledger.apply([w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)))], time=w.time + 2)
    for receipt in out.receipts:
        data = encode_receipt(receipt)
        assert data == encode(RECEIPT, receipt) and decode_receipt(data) == receipt
    seen = 0
    for key, raw in w.ledger.state.items():
        rt = RECORD_BY_TAG[key[0]]
        if rt is None:
            continue
        strict = decode(rt, raw)
        assert decode_trusted(rt, raw) == strict
        assert encode_trusted(rt, strict) == encode(rt, strict) == raw
        seen += 1
    assert seen > 20


def test_world_helper_sanity() -> None:
    w = World()
    assert w.ledger.height == 0 and w.ledger.audit() == {}
