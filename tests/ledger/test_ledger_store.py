"""BlockOutcome -> LedgerStore.commit_block: blocks applied over the LevelDB store commit, survive a reopen with the
same state root, and keep executing; receipts, transactions and history are retrievable."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ledger import operations as o
from ledger.context import BlockContext
from ledger.events import decode_receipt
from ledger.genesis import genesis_changes
from ledger.memory import InMemoryLedger
from ledger.smt import SparseMerkleTree
from ledger.state_keys import tree_entries
from ledger.store import BlockCommit, LedgerStore
from ledger.transition import BlockOutcome, apply_block
from tests.ledger.world import ADMIN, CHAIN, OPS, PROTOCOL, T0, World, pub

ISSUER = "treasury@issuer-co"
A, B = "alice@bank-a", "bob@bank-b"


def commit(store: LedgerStore, out: BlockOutcome) -> None:
    block_hash = hashlib.sha256(b"block %d" % out.height).digest()
    store.commit_block(
        BlockCommit(
            height=out.height,
            block_hash=block_hash,
            block_bytes=b"".join(tx for _, tx, _ in out.executed),
            state_root=out.state_root,
            txs=[(tx_id, tx) for tx_id, tx, _ in out.executed],
            receipts=[(tx_id, receipt) for tx_id, _, receipt in out.executed],
            state_changes=out.changes,
            smt_nodes=out.smt_nodes,
            history=list(out.history),
        )
    )


def run_on_store(store: LedgerStore, time: int, txs: list) -> BlockOutcome:
    head = store.head()
    assert head is not None
    tree = SparseMerkleTree(store, head.state_root)
    out = apply_block(store, BlockContext(CHAIN, head.height + 1, time), txs, tree=tree, protocol=PROTOCOL)
    commit(store, out)
    return out


def test_blocks_over_leveldb_match_memory_and_survive_reopen(tmp_path: Path) -> None:
    w = World()  # the reference: the same blocks in memory
    spec_changes = genesis_changes(_spec(w))
    path = str(tmp_path / "db")
    with LedgerStore.open(path) as store:
        update = SparseMerkleTree(store).update(spec_changes)
        store.commit_block(
            BlockCommit(0, b"\x00" * 32, b"genesis", update.root, [], [], spec_changes, update.nodes, [])
        )
        assert update.root == w.ledger.root
        setup = [
            w.tx(
                [ADMIN],
                o.RegisterAccount(ADMIN, ISSUER, (pub(ISSUER),), 1, None),
                o.GrantRole(ADMIN, ISSUER, "issuer"),
                o.RegisterAccount(ADMIN, A, (pub(A),), 1, None),
                o.RegisterAccount(ADMIN, B, (pub(B),), 1, None),
            ),
        ]
        from tests.ledger.world import key_for

        w.keys.update({ISSUER: [key_for(ISSUER)], A: [key_for(A)], B: [key_for(B)]})
        out = run_on_store(store, T0 + 1, setup)
        assert out.state_root == w.ledger.apply(setup, time=T0 + 1).state_root
        block2 = [
            w.tx(
                [ISSUER],
                o.DefineAsset(ISSUER, "BOND-A", 2, 10**6, "Bond", "", (), (), ()),
                o.Issue(ISSUER, "BOND-A", A, 1_000),
            ),
        ]
        out = run_on_store(store, T0 + 2, block2)
        assert out.state_root == w.ledger.apply(block2, time=T0 + 2).state_root
        pay = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 300),)))
        out = run_on_store(store, T0 + 3, [pay, pay])
        assert out.state_root == w.ledger.apply([pay, pay], time=T0 + 3).state_root
        receipt = decode_receipt(store.get_receipt(pay.tx_id), operations=OPS)
        assert receipt.code == 0 and receipt.events[0].kind == "transferred"
        assert store.get_tx(pay.tx_id)[2] == pay.to_bytes()
        assert [e.tx_id for e in store.account_history(B, limit=10)] == [pay.tx_id, setup[0].tx_id]
        root = store.head().state_root
    with LedgerStore.open(path) as store:
        assert store.head().state_root == root == store.recompute_state_root()
        # the replayed transaction is still refused after a restart; new ones apply
        again = run_on_store(store, T0 + 4, [pay, w.tx([B], o.Transfer(B, "BOND-A", (o.TransferLeg(A, 1),)))])
        assert [r.code for r in again.receipts] == [103, 0]
        tree = SparseMerkleTree(store, store.head().state_root)
        assert tree.root == store.recompute_state_root()


def _spec(w: World):  # the genesis spec the World used
    from ledger.genesis import GenesisAccount, GenesisSpec

    return GenesisSpec(
        chain_id=CHAIN,
        time=T0,
        members=(("consortium", "Consortium"),)
        + tuple((m, m.upper()) for m in ("bank-a", "bank-b", "issuer-co", "custody-c")),
        accounts=(GenesisAccount(ADMIN, (pub(ADMIN),), 1, ("admin",)),),
    )


def test_in_memory_ledger_root_is_a_function_of_state() -> None:
    led = InMemoryLedger(_spec(World()), PROTOCOL)
    assert SparseMerkleTree(led.nodes).update(dict(tree_entries(led.state.items()))).root == led.root
