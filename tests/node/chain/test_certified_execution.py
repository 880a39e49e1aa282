"""node.chain: a block that comes with its commit certificate (block sync) is executed without checking its
transactions' signatures once the certificate verifies, and only when the certified root proves that changes
nothing; otherwise, and for any certificate that does not verify, every signature is checked."""

from __future__ import annotations

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
from node.validator.keyfile import load_keys
from tests.ledger.world import corrupt_signature, count_verifications
from tests.node.chain.one_validator import one_validator


class Chain:
    def __init__(self, app: Application, genesis: Genesis, txs: list[bytes], bls_secret: bytes) -> None:
        self.app, self.genesis, self.txs, self.secret = app, genesis, txs, bls_secret
        self.cid = genesis.consensus_chain_id

    def block(self, txs: list[bytes]) -> Block:
        """Block 1 on the genesis block, carrying `txs`."""
        g = self.genesis.block()
        payload = encode_payload(self.genesis.genesis_time * 1000 + 1000, txs)
        qc = QuorumCert(0, 0, g.id, self.app.head.state_root, b"", b"")
        return Block(BlockHeader(self.cid, 0, 1, 1, g.id, 0, payload_hash(payload), qc), payload)

    def qc(self, round_: int, block_id: bytes, root: bytes, secret: bytes | None = None) -> QuorumCert:
        backend = bls.get_backend()
        sig = backend.sign(secret or self.secret, vote_message(self.cid, 0, round_, block_id, root))
        vs = self.app.epochs.validator_set
        return QuorumCert(0, round_, block_id, root, vs.bitmap((0,)), backend.aggregate([sig]))

    def certificate(self, block: Block, root: bytes, secret: bytes | None = None) -> CommitCertificate:
        """The commit certificate of `block` with state root `root`: its child in the next round carries the QC
        binding the root, and a QC on the child (signed with `secret`, the validator's by default)."""
        child = BlockHeader(self.cid, 0, 2, 2, block.id, 0, payload_hash(b""), self.qc(1, block.id, root, secret))
        return CommitCertificate((block.header, child), self.qc(2, child.id, bytes(32), secret))

    def checked_root(self, block: Block) -> bytes:
        """The root of `block` executed with every signature checked (then forgotten)."""
        e = self.app.execute(block, self.app.head.state_root, None)
        assert e.state_root is not None
        self.app.forget_speculation()
        return e.state_root


@pytest.fixture
def chain(tmp_path) -> Iterator[Chain]:
    """A one-validator chain at its genesis (the validator's BLS key at hand) and six signed transfers, none
    admitted: execution has nothing decoded or verified ahead."""
    with Ed25519Verifier(workers=0) as verifier, one_validator(str(tmp_path), "dev-cert", b"cert", verifier) as c:
        yield Chain(c.app, c.genesis, c.txs, load_keys(c.keys_file).bls_secret)


@pytest.fixture
def verifications(monkeypatch) -> list[int]:
    """How many Ed25519 checks execution makes from now on."""
    return count_verifications(monkeypatch)


def corrupt(raw: bytes) -> bytes:
    return corrupt_signature(decode_transaction(raw, operations=OPERATIONS))


def test_a_certified_block_executes_without_signature_checks_and_commits(chain, verifications) -> None:
    block = chain.block(chain.txs)
    root = chain.checked_root(block)
    assert verifications[0] == len(chain.txs)
    cert = chain.certificate(block, root)
    e = chain.app.execute(block, chain.app.head.state_root, None, cert)
    assert e.state_root == root and e.signatures == "skipped"
    assert verifications[0] == len(chain.txs)  # none more
    assert chain.app.executor.certified_unchecked == 1 and chain.app.executor.certified_rechecked == 0
    committed = chain.app.commit(chain.app.finalize(block, cert)).block
    assert committed.height == 1 and [r.code for r in committed.receipts] == [codes.OK] * len(chain.txs)
    assert chain.app.head.state_root == root


def test_a_certificate_that_does_not_verify_or_names_another_block_is_ignored(chain, verifications) -> None:
    block = chain.block(chain.txs)
    root = chain.checked_root(block)
    other = chain.block(chain.txs[:2])
    forged = chain.certificate(block, root, secret=bytes(31) + b"\x07")
    for cert in (forged, chain.certificate(other, root)):
        before = verifications[0]
        e = chain.app.execute(block, chain.app.head.state_root, None, cert)
        assert e.state_root == root and e.signatures == "checked"
        assert verifications[0] - before == len(chain.txs)  # every signature checked
        chain.app.forget_speculation()
    assert chain.app.executor.certified_unchecked == 0


def test_a_block_asked_for_a_vote_is_checked_even_with_a_certificate(chain, verifications) -> None:
    block = chain.block(chain.txs)
    root = chain.checked_root(block)
    before = verifications[0]
    e = chain.app.execute(block, chain.app.head.state_root, 0, chain.certificate(block, root))
    assert e.state_root == root and verifications[0] - before == len(chain.txs)
    assert chain.app.executor.certified_unchecked == 0


def test_a_certified_block_with_a_corrupt_signature_is_executed_again_with_the_checks(chain, verifications) -> None:
    """A faulty proposer's block that the validators certified: the transaction whose signature does not verify is
    rejected here as it was there, and the valid copy that follows it (same id) executes."""
    txs = [chain.txs[0], corrupt(chain.txs[1]), chain.txs[2], corrupt(chain.txs[3]), chain.txs[3]]
    block = chain.block(txs)
    root = chain.checked_root(block)
    cert = chain.certificate(block, root)
    e = chain.app.execute(block, chain.app.head.state_root, None, cert)
    assert e.state_root == root and e.signatures == "rechecked"
    assert chain.app.executor.certified_rechecked == 1 and chain.app.executor.certified_unchecked == 0
    committed = chain.app.commit(chain.app.finalize(block, cert)).block
    assert [r.code for r in committed.receipts] == [codes.OK, codes.BAD_SIGNATURE, codes.OK, codes.BAD_SIGNATURE,
                                                    codes.OK]
    stored = chain.app.store.get_tx(committed.receipts[4].tx_id)
    assert stored is not None and stored[2] == chain.txs[3]  # the valid copy's bytes, not the corrupt one's
