"""What a node stores beside each committed block to prove it: commit certificates, epoch-change proofs, the records of
ended epochs, the genesis binding (the ledger store's "extra" keyspace, docs/state-proofs.md "Storage layout").

    cert/<height u64 BE>              CommitCertificate of the block at that height
    epoch-proof/<epoch %020d>         EpochChangeProof that ENDS that epoch (written with the epoch-ending block)
    epoch-record/<epoch %020d>        EpochRecord of that (ended) epoch, written with the block that ends it
    evidence/<epoch>/<round>/<validator>/<kind>   equivocation evidence this node received
    genesis_hash                      the genesis this store belongs to

All of them are written in the same synced batch as their block (ledger.store.LedgerStore.commit_block), except
evidence, which is not part of the chain.
"""

from __future__ import annotations

from typing import Final

from consensus.certificates import Evidence
from consensus.messages import CommitCertificate, EpochChangeProof, encode_block
from ledger.governance_state import validator_set_entries
from ledger.records import EpochRecord
from ledger.store import BlockCommit, LedgerStore
from node.chain.genesis import Genesis, GenesisState
from node.errors import NodeError

__all__ = [
    "GENESIS_KEY",
    "block_events_key",
    "bootstrap_store",
    "cert_key",
    "epoch_change_proof",
    "epoch_proof_key",
    "epoch_record_key",
    "evidence_key",
    "load_certificate",
    "load_epoch_proofs",
]

CERT_PREFIX: Final = b"cert/"
BLOCK_EVENTS_PREFIX: Final = b"block-events/"
EPOCH_PROOF_PREFIX: Final = b"epoch-proof/"
EPOCH_RECORD_PREFIX: Final = b"epoch-record/"
GENESIS_KEY: Final = b"genesis_hash"


def cert_key(height: int) -> bytes:
    return CERT_PREFIX + height.to_bytes(8, "big")


def block_events_key(height: int) -> bytes:
    """Store extra key of a block's own events (holds released on expiry), as a receipt with the block events' tx id;
    absent when the block emitted none."""
    return BLOCK_EVENTS_PREFIX + height.to_bytes(8, "big")


def epoch_proof_key(epoch: int) -> bytes:
    """Store extra key of the EpochChangeProof that ENDS `epoch` (written with the epoch-ending block)."""
    assert epoch >= 0
    return EPOCH_PROOF_PREFIX + b"%020d" % epoch


def epoch_record_key(epoch: int) -> bytes:
    """Store extra key of the EpochRecord of an ended epoch, written with the block that ends it."""
    assert epoch >= 0
    return EPOCH_RECORD_PREFIX + b"%020d" % epoch


def evidence_key(evidence: Evidence) -> bytes:
    kind = "proposal" if evidence.kind == evidence.KIND_PROPOSAL else "vote"
    return f"evidence/{evidence.epoch}/{evidence.round}/{evidence.validator}/{kind}".encode()


def load_certificate(store: LedgerStore, height: int) -> CommitCertificate | None:
    raw = store.get_extra(cert_key(height))
    return None if raw is None else CommitCertificate.decode(raw)


def load_epoch_proofs(store: LedgerStore, upto_epoch: int) -> list[EpochChangeProof]:
    """The proofs ending epochs 0 .. upto_epoch - 1, oldest first (what a light client follows from the genesis set
    to the set of `upto_epoch`). NodeError if one is missing: this store has not committed that far."""
    proofs = []
    for epoch in range(upto_epoch):
        raw = store.get_extra(epoch_proof_key(epoch))
        if raw is None:
            raise NodeError("epoch_proof_missing", f"no proof of the end of epoch {epoch} in {store.path}")
        proof = EpochChangeProof.decode(raw)
        assert proof.epoch == epoch
        proofs.append(proof)
    return proofs


def epoch_change_proof(cert: CommitCertificate, next_epoch: EpochRecord) -> EpochChangeProof:
    """The proof that the block certified by `cert` ended its epoch and that `next_epoch` follows."""
    assert next_epoch.epoch == cert.epoch + 1
    return EpochChangeProof(cert, validator_set_entries(next_epoch))


def bootstrap_store(store: LedgerStore, genesis: Genesis, state: GenesisState) -> None:
    """Write the genesis block (height 0) into an empty store, or check that the store belongs to `genesis`."""
    head = store.head()
    if head is None:
        store.commit_block(BlockCommit(0, state.block.id, encode_block(state.block), state.state_root, (), (),
                                       state.changes, state.smt_nodes, (), {GENESIS_KEY: genesis.hash}))
        return
    stored = store.get_extra(GENESIS_KEY)
    if stored != genesis.hash or store.state_root_at(0) != state.state_root:
        raise NodeError("genesis_mismatch",
                         f"the store at {store.path} was created from genesis "
                         f"{stored.hex() if stored else '?'}, the genesis file has hash {genesis.hash.hex()}; "
                         "use the matching genesis file or an empty data directory")
