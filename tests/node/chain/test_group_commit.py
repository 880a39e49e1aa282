"""node.chain: block sync's group commit (Application.finalize_group / commit_group) leaves exactly what committing
the same certified blocks one by one leaves -- the store's blocks, transactions and receipts, the head, and what each
commit reports -- with one synced write for the group."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from consensus import bls
from consensus.messages import Block, BlockHeader, CommitCertificate, QuorumCert, payload_hash, vote_message
from ledger import codes
from ledger.transaction import decode_transaction
from node.chain.application import Application
from node.chain.genesis import Genesis
from node.chain.payload import encode_payload
from node.chain.protocol import OPERATIONS
from node.chain.sigverify import Ed25519Verifier
from node.errors import NodeError
from node.validator.keyfile import load_keys
from tests.node.chain.one_validator import OneValidator, one_validator


def tx_id(raw: bytes) -> bytes:
    return decode_transaction(raw, operations=OPERATIONS).tx_id


class Certified:
    """Certified blocks on a one-validator chain: each block's certificate is signed with the validator's BLS key."""

    def __init__(self, genesis: Genesis, app: Application, secret: bytes) -> None:
        self.genesis, self.app, self.secret = genesis, app, secret
        self.cid = genesis.consensus_chain_id

    def _qc(self, round_: int, block_id: bytes, root: bytes) -> QuorumCert:
        backend = bls.get_backend()
        sig = backend.sign(self.secret, vote_message(self.cid, 0, round_, block_id, root))
        return QuorumCert(0, round_, block_id, root, self.app.epochs.validator_set.bitmap((0,)),
                          backend.aggregate([sig]))

    def certificate(self, block: Block, root: bytes) -> CommitCertificate:
        """`block`'s commit certificate binding state root `root` (its child, in the next round, carries the QC)."""
        height = block.header.height
        child = BlockHeader(self.cid, 0, height + 1, height + 1, block.id, 0, payload_hash(b""),
                            self._qc(height, block.id, root))
        return CommitCertificate((block.header, child), self._qc(height + 1, child.id, bytes(32)))

    def chain(self, payloads: list[list[bytes]]) -> list[tuple[Block, CommitCertificate]]:
        """Blocks at heights 1.. (round = height) carrying `payloads`, each certified with the root this
        application computes for it (executed speculatively, then forgotten)."""
        parent, root = self.genesis.block().id, self.app.head.state_root
        out = []
        for height, txs in enumerate(payloads, start=1):
            payload = encode_payload(self.genesis.genesis_time * 1000 + 1000 * height, txs)
            block = Block(BlockHeader(self.cid, 0, height, height, parent, 0, payload_hash(payload),
                                      self._qc(height - 1, parent, root)), payload)
            e = self.app.execute(block, root, None)
            assert e.state_root is not None
            out.append((block, self.certificate(block, e.state_root)))
            parent, root = block.id, e.state_root
        self.app.forget_speculation()
        return out


@pytest.fixture
def pair(tmp_path) -> Iterator[tuple[OneValidator, OneValidator]]:
    """Two nodes of the same one-validator chain (same seed and genesis time), each over its own store."""
    genesis_time = int(time.time())
    with Ed25519Verifier(workers=0) as verifier, \
            one_validator(str(tmp_path / "a"), "dev-group", b"group", verifier, genesis_time) as a, \
            one_validator(str(tmp_path / "b"), "dev-group", b"group", verifier, genesis_time) as b:
        yield a, b


def stored(app: Application, ids: list[bytes]) -> dict[bytes, object]:
    store = app.store
    return {i: (store.get_tx(i), store.get_receipt(i)) for i in ids} | {
        b"head": store.head(), b"blocks": [store.get_block(h) for h in range(1, 5)]}


@pytest.mark.parametrize("executed_first", [True, False])
def test_a_group_commit_leaves_what_one_by_one_commits_leave(pair, executed_first) -> None:
    a, b = pair
    txs, expired = a.txs, a.expired
    # Height 2 rejects the expired transfer for good (its receipt is stored); height 3 carries it again (no second
    # receipt: the id keeps the one stored by height 2, in the same group) and a transfer height 1 committed.
    payloads = [txs[0:3], txs[3:6] + [expired], [expired, txs[0]], []]
    blocks = Certified(a.genesis, a.app, load_keys(a.keys_file).bls_secret).chain(payloads)
    one = [a.app.commit(a.app.finalize(block, cert)) for block, cert in blocks]
    if executed_first:  # as block sync runs it: every block executed against its certificate, then the group
        root = b.app.head.state_root
        for block, cert in blocks:
            root = b.app.execute(block, root, None, cert).state_root
    writes = []
    original = b.app.store.commit_blocks
    b.app.store.commit_blocks = lambda commits: (writes.append(len(commits)), original(commits))[1]
    group = b.app.commit_group(b.app.finalize_group(blocks))
    assert writes == [4]  # one write for the four blocks
    assert [r.block for r in group] == [r.block for r in one]
    assert [r.block.newly_final_txs for r in group] == [3, 4, 1, 0]  # a final rejection counts, a replay not
    ids = [tx_id(raw) for raw in txs + [expired]]
    assert stored(b.app, ids) == stored(a.app, ids)
    assert b.app.head == a.app.head and b.app.head.height == 4
    receipt_heights = {r.tx_id: r.height for r in group[1].block.receipts}
    assert receipt_heights[tx_id(expired)] == 2
    assert [r.code for r in group[2].block.receipts] == [codes.TX_EXPIRED, codes.TX_REPLAYED]


def test_a_group_with_a_block_that_disagrees_with_its_certificate_refuses_and_writes_nothing(pair) -> None:
    a, b = pair
    certified = Certified(a.genesis, a.app, load_keys(a.keys_file).bls_secret)
    blocks = certified.chain([a.txs[0:3], a.txs[3:6], []])
    second = blocks[1][0]
    blocks[1] = (second, certified.certificate(second, bytes(range(32))))  # a root this node does not compute
    with pytest.raises(NodeError) as info:
        b.app.finalize_group(blocks)
    assert info.value.code == "state_root_mismatch" and "height 2" in info.value.message
    assert b.app.store.head().height == 0 and b.app.head.height == 0
    # The blocks before it are not lost: they commit as a group of their own.
    b.app.commit_group(b.app.finalize_group(blocks[:1]))
    assert b.app.store.head().height == 1


def test_certificates_warmed_on_another_thread_answer_the_later_checks_from_the_memo(pair) -> None:
    import concurrent.futures

    a, b = pair
    certified = Certified(a.genesis, a.app, load_keys(a.keys_file).bls_secret)
    certs = [cert for _, cert in certified.chain([a.txs[0:3], a.txs[3:6], []])]
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        assert thread.submit(b.app.certificate_warmer(certs)).result() == 3
    checks = b.app.bls.checks
    for cert in certs:
        b.app.check_certificate(cert)
    assert b.app.bls.checks == checks  # every check answered by the memo
    # A certificate that does not verify stops the warm-up there (the ones after it are checked in their turn).
    other = Certified(a.genesis, a.app, bytes(31) + b"\x01")
    forged = other.certificate(certified.chain([a.txs[0:3], a.txs[3:6]])[1][0], bytes(32))
    assert b.app.certificate_warmer([certs[0], forged, certs[2]])() == 1


def test_a_pruned_store_keeps_no_rejection_for_a_transaction_it_may_have_executed_unseen(pair) -> None:
    """An expired transaction carried again is rejected for good and its receipt stored -- unless the store lacks the
    blocks in which it could have executed (below its base height): there an archive node keeps its execution's
    receipt, and the pruned node must not answer "rejected" for a transaction that committed."""
    archive, pruned = pair
    expired = archive.expired  # expiry height 1: it executes at height 1, and is rejected for good from height 2
    payloads = [[expired], [], [expired]]
    blocks = Certified(archive.genesis, archive.app, load_keys(archive.keys_file).bls_secret).chain(payloads)
    for app in (archive.app, pruned.app):
        for block, cert in blocks[:2]:
            app.commit(app.finalize(block, cert))
    pruned.app.store.prune_blocks(2)
    assert pruned.app.store.base_height() == 2 and pruned.app.store.get_tx(tx_id(expired)) is None
    results = [app.commit(app.finalize(*blocks[2])) for app in (archive.app, pruned.app)]
    # Consensus is the same on both: the block's receipt says expired, the roots agree.
    assert [r.block.receipts[0].code for r in results] == [codes.TX_EXPIRED, codes.TX_EXPIRED]
    assert archive.app.head == pruned.app.head
    # The archive keeps the receipt of the execution at height 1; the pruned node stores none rather than a wrong one.
    assert archive.app.store.get_tx(tx_id(expired)) == (1, 0, expired)
    assert pruned.app.store.get_tx(tx_id(expired)) is None and pruned.app.store.get_receipt(tx_id(expired)) is None
