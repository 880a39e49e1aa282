"""The epochs a node knows: the one of its committed head (validator set, chain params), the ones before it, and the
validator set of any past epoch (docs/consensus.md §10).

    epochs = Epochs(store, genesis, backend)
    epochs.record / epochs.validator_set / epochs.params     the epoch that certifies height head + 1
    epochs.previous                                          the record of the epoch just ended (None in epoch 0)
    epochs.set_of(record)                                    the ValidatorSet of any EpochRecord (cached)
    epochs.set_at(epoch)                                     the set of a past (or the current) epoch
    epochs.advance(record) -> EpochSwitch                    after the epoch-ending block committed

The current record always comes from the committed head state (ledger.governance_state.current_epoch); the records of
ended epochs and the proofs that end them are stored with their epoch-ending blocks (node/chain/certified.py).
Building a ValidatorSet verifies every proof of possession, so sets are cached (at most MAX_CACHED_SETS each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consensus.bls import BlsBackend
from consensus.messages import EpochChangeProof
from consensus.validators import ValidatorSet, ValidatorSetError
from ledger.governance_state import current_epoch, validator_set_entries
from ledger.records import EpochRecord
from ledger.state import decode_value
from ledger.state_keys import EPOCH_KEY
from ledger.store import LedgerStore
from node.chain.certified import epoch_proof_key, epoch_record_key, load_epoch_proofs
from node.chain.genesis import ChainParams, Genesis
from node.errors import NodeError

__all__ = ["MAX_CACHED_SETS", "EpochSwitch", "Epochs", "params_of"]

# Validator sets built from EpochRecords (each construction verifies every PoP) kept at most, per cache.
MAX_CACHED_SETS: Final = 16


def params_of(rec: EpochRecord) -> ChainParams:
    """The node's ChainParams from an EpochRecord's params (same names and bounds)."""
    params = ChainParams(**{name: getattr(rec.params, name) for name in ChainParams.__dataclass_fields__})
    params.check()
    return params


@dataclass(frozen=True, slots=True)
class EpochSwitch:
    """An epoch-ending block committed: the epoch it ended and the one that starts at its height + 1."""

    ended: EpochRecord
    started: EpochRecord
    validator_set: ValidatorSet
    params: ChainParams


class Epochs:
    def __init__(self, store: LedgerStore, genesis: Genesis, backend: BlsBackend) -> None:
        self._store = store
        self._genesis = genesis
        self._backend = backend
        self._sets: dict[tuple[int, tuple[tuple[bytes, bytes, bytes, int], ...]], ValidatorSet] = {}
        self._past: dict[int, ValidatorSet] = {}
        self.record: EpochRecord = current_epoch(store)
        self.previous: EpochRecord | None = self.ended_record(self.record.epoch - 1)
        self.validator_set: ValidatorSet = self.set_of(self.record)
        self.params: ChainParams = params_of(self.record)

    @property
    def epoch(self) -> int:
        return self.record.epoch

    def ended_record(self, epoch: int) -> EpochRecord | None:
        """The stored record of an ended epoch (None below 0 or when this store has not committed its end)."""
        if epoch < 0:
            return None
        raw = self._store.get_extra(epoch_record_key(epoch))
        return None if raw is None else decode_value(EPOCH_KEY, raw)

    def before_previous(self) -> EpochRecord | None:
        """The record of epoch e - 2 when epoch e - 1 lasted a single block (else None): a node switches its
        identity one block into the epoch that rotated it, so that key may still be in use."""
        prev = self.previous
        if prev is None or prev.epoch == 0 or self.record.start_height - prev.start_height > 1:
            return None
        return self.ended_record(prev.epoch - 1)

    def set_of(self, rec: EpochRecord) -> ValidatorSet:
        """The ValidatorSet of an EpochRecord (cached: building one verifies every proof of possession)."""
        entries = validator_set_entries(rec)
        key = (rec.epoch, entries)
        vs = self._sets.get(key)
        if vs is None:
            try:
                vs = ValidatorSet(rec.epoch, entries, backend=self._backend)
            except ValidatorSetError as exc:
                # The ledger admitted this set (it checks PoPs and sizes): a node disagreeing must stop.
                raise NodeError("bad_validator_set", f"epoch {rec.epoch}: {exc}") from None
            if len(self._sets) >= MAX_CACHED_SETS:
                self._sets.pop(next(iter(self._sets)))
            self._sets[key] = vs
        return vs

    def set_at(self, epoch: int) -> ValidatorSet:
        """The validator set of `epoch` (<= the current one): the genesis set, or the next set of the stored proof
        that ended epoch - 1 (checked when that block committed: its QC commits to exactly this set). KeyError for
        an epoch that has not started here."""
        if epoch == self.record.epoch:
            return self.validator_set
        if not 0 <= epoch < self.record.epoch:
            raise KeyError(f"epoch {epoch} has not started")
        vs = self._past.get(epoch)
        if vs is None:
            if epoch == 0:
                vs = self._genesis.validator_set(self._backend)
            else:
                raw = self._store.get_extra(epoch_proof_key(epoch - 1))
                if raw is None:
                    raise KeyError(f"no stored proof of the end of epoch {epoch - 1}")
                vs = ValidatorSet(epoch, EpochChangeProof.decode(raw).next_validators, backend=self._backend)
            if len(self._past) >= MAX_CACHED_SETS:
                self._past.pop(next(iter(self._past)))
            self._past[epoch] = vs
        return vs

    def proofs(self, upto_epoch: int | None = None) -> list[EpochChangeProof]:
        """The proofs of every ended epoch below `upto_epoch` (default: the current one), oldest first."""
        return load_epoch_proofs(self._store, self.record.epoch if upto_epoch is None else upto_epoch)

    def advance(self, started: EpochRecord) -> EpochSwitch:
        """The block ending the current epoch committed and `started` is the head state's record now."""
        ended = self.record
        assert started.epoch == ended.epoch + 1, f"epoch {ended.epoch} followed by {started.epoch}"
        self.previous = ended
        self.record = started
        self.validator_set = self.set_of(started)
        self.params = params_of(started)
        return EpochSwitch(ended, started, self.validator_set, self.params)

    def reload(self) -> None:
        """Re-read the current epoch from the store (after blocks were committed by another path)."""
        rec = current_epoch(self._store)
        if rec != self.record:
            self.record = rec
            self.previous = self.ended_record(rec.epoch - 1)
            self.validator_set = self.set_of(rec)
            self.params = params_of(rec)
