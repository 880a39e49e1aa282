"""node.chain.application: a proposal leaves out every transaction of the branch it extends, and carries
transactions only on a branch this node has executed (a parent it has not executed, or one waiting behind an ancestor that has not, tells it
nothing of what those blocks carry: proposing from the pool then copied their transactions, each copy a TX_REPLAYED
receipt; such a block now carries no transaction)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consensus.messages import Block, BlockHeader, QuorumCert, payload_hash
from node.chain.application import Application
from node.chain.genesis import Genesis
from node.chain.payload import decode_payload, encode_payload
from node.chain.sigverify import Ed25519Verifier
from tests.node.chain.one_validator import one_validator


@pytest.fixture(scope="module")
def verifier() -> Iterator[Ed25519Verifier]:
    v = Ed25519Verifier(workers=0)
    yield v
    v.close()


@pytest.fixture
def chain(tmp_path, verifier) -> Iterator[tuple[Application, Genesis, list[bytes]]]:
    """An Application at the genesis of a one-validator chain, and six signed transfers (none admitted yet)."""
    with one_validator(str(tmp_path), "dev-app", b"app", verifier) as c:
        yield c.app, c.genesis, c.txs


def _child(parent: Block, parent_root: bytes, chain_id: bytes, time_ms: int, txs: list[bytes]) -> Block:
    """A block of round and height parent + 1 (its QC's signature is not checked by execution)."""
    payload = encode_payload(time_ms, txs)
    h = parent.header
    qc = QuorumCert(0, h.round, parent.id, parent_root, b"\x80", bytes(96)) if h.round else \
        QuorumCert(0, 0, parent.id, parent_root, b"", b"")
    header = BlockHeader(chain_id, 0, h.round + 1, h.height + 1, parent.id, 0, payload_hash(payload), qc)
    return Block(header, payload)


def _proposed(app: Application, parent: Block, time_ms: int, txs: list[bytes]) -> set[int]:
    """Which of `txs` (by index) a proposal on `parent` carries."""
    return {txs.index(tx) for tx in decode_payload(app.propose(parent.id, time_ms), 100, 1 << 20).txs}


def test_no_proposal_copies_the_transactions_of_a_branch_not_executed_here(chain) -> None:
    """Blocks 1 (t0, t1) and 2 (t2) were proposed by others; this node pooled t0..t5 and has executed neither block
    (block 1 is on its execution thread, block 2 waits for it, and the others' votes already certified block 2).
    A proposal on block 2 must carry none of t0..t2: it carries no transaction until both executed, then t3..t5."""
    app, genesis, txs = chain
    assert all(a.ok for a in app.admit_now(txs))
    g, t0, cid = genesis.block(), genesis.genesis_time * 1000, genesis.consensus_chain_id
    root = app.head.state_root
    block_1 = _child(g, root, cid, t0 + 1000, txs[:2])
    assert _proposed(app, g, t0 + 1000, txs) == {0, 1, 2, 3, 4, 5}  # on the committed head: the whole pool

    # Neither block executed here: nothing tells which pooled transactions they carry.
    block_2 = _child(block_1, bytes(32), cid, t0 + 2000, txs[2:3])  # (its QC names block 1's root: unknown yet)
    assert _proposed(app, block_2, t0 + 3000, txs) == set()
    assert app.branch_executed(g.id) and not app.branch_executed(block_2.id) and not app.branch_executed(block_1.id)
    assert not app.has_work(block_2.id) and app.pending_beyond(block_2.id) == 0

    # Block 1 executed, block 2 not yet (it waits behind block 1): a proposal on block 1 leaves out t0, t1; one on
    # block 2 still carries nothing.
    e1 = app.execute(block_1, root, None)
    assert e1.state_root is not None
    assert app.branch_executed(block_1.id) and not app.branch_executed(block_2.id)
    assert _proposed(app, block_1, t0 + 2000, txs) == {2, 3, 4, 5}
    assert _proposed(app, block_2, t0 + 3000, txs) == set()

    # Both executed: the proposal on block 2 carries exactly what neither carries.
    block_2 = _child(block_1, e1.state_root, cid, t0 + 2000, txs[2:3])
    assert app.execute(block_2, e1.state_root, None).state_root is not None
    assert app.branch_executed(block_2.id) and app.has_work(block_2.id) and app.pending_beyond(block_2.id) == 3
    assert _proposed(app, block_2, t0 + 3000, txs) == {3, 4, 5}
