"""Validator sets by epoch: members, BLS keys with proofs of possession, voting power, quorum arithmetic.

The application hands the consensus a `ValidatorSet` for each epoch (genesis, later reconfiguration). A set is only
admitted after every proof of possession verifies and no key repeats: that is what makes `fast_aggregate_verify`
over a signer bitmap sound (see consensus/bls.py on rogue-key attacks).

Quorum arithmetic, with N the total voting power (N = n when every validator has power 1):
    f      = (N - 1) // 3            largest faulty power tolerated
    quorum = N - f                   (= 2f + 1 when N = 3f + 1)
    weak   = f + 1                   any set this large contains an honest member
Two quorums intersect in at least N - 2f >= f + 1 power, hence in an honest validator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from consensus import bls
from consensus.errors import ConsensusError

MAX_VALIDATORS: Final = 1024
MAX_POWER: Final = 1 << 32
MAX_ID_BYTES: Final = 64


class ValidatorSetError(ConsensusError):
    """A validator set that cannot be admitted."""

    EMPTY: Final = "validators_empty"
    TOO_MANY: Final = "validators_too_many"
    BAD_ID: Final = "validators_bad_id"
    DUPLICATE_ID: Final = "validators_duplicate_id"
    DUPLICATE_KEY: Final = "validators_duplicate_key"
    BAD_POWER: Final = "validators_bad_power"
    BAD_KEY: Final = "validators_bad_key"
    BAD_POP: Final = "validators_bad_pop"
    BAD_EPOCH: Final = "validators_bad_epoch"


@dataclass(frozen=True, slots=True)
class Validator:
    id: bytes
    public_key: bytes
    pop: bytes
    power: int = 1


class ValidatorSet:
    """The validators of one epoch, in the order the application gives (that order defines signer bitmaps)."""

    __slots__ = (
        "_bitmap_cache",
        "digest",
        "epoch",
        "index_of",
        "max_faulty_power",
        "quorum_power",
        "total_power",
        "validators",
        "weak_power",
    )

    def __init__(self, epoch: int, validators: Iterable[Validator | Sequence[object]], *,
                 backend: bls.BlsBackend | None = None) -> None:
        if type(epoch) is not int or not 0 <= epoch < 1 << 63:
            raise ValidatorSetError(ValidatorSetError.BAD_EPOCH, "epoch must be an integer in [0, 2^63)")
        items: list[Validator] = []
        for entry in validators:
            if isinstance(entry, Validator):
                items.append(entry)
                continue
            fields = tuple(entry)
            if len(fields) not in (3, 4):
                raise ValidatorSetError(ValidatorSetError.BAD_ID, "entry must be (id, public_key, pop[, power])")
            power = fields[3] if len(fields) == 4 else 1
            items.append(Validator(fields[0], fields[1], fields[2], power))  # type: ignore[arg-type]
        if not items:
            raise ValidatorSetError(ValidatorSetError.EMPTY, "a validator set needs at least one validator")
        if len(items) > MAX_VALIDATORS:
            raise ValidatorSetError(ValidatorSetError.TOO_MANY, f"more than {MAX_VALIDATORS} validators")
        backend = backend or bls.get_backend()
        ids: set[bytes] = set()
        keys: set[bytes] = set()
        for v in items:
            if type(v.id) is not bytes or not 1 <= len(v.id) <= MAX_ID_BYTES:
                raise ValidatorSetError(ValidatorSetError.BAD_ID, f"id must be 1..{MAX_ID_BYTES} bytes")
            if v.id in ids:
                raise ValidatorSetError(ValidatorSetError.DUPLICATE_ID, f"validator {v.id!r} appears twice")
            ids.add(v.id)
            if type(v.power) is not int or not 1 <= v.power <= MAX_POWER:
                raise ValidatorSetError(ValidatorSetError.BAD_POWER, f"power of {v.id!r} must be in [1, 2^32]")
            if type(v.public_key) is not bytes or len(v.public_key) != bls.PUBLIC_KEY_SIZE:
                raise ValidatorSetError(ValidatorSetError.BAD_KEY, f"public key of {v.id!r} must be 48 bytes")
            if v.public_key in keys:
                raise ValidatorSetError(ValidatorSetError.DUPLICATE_KEY, f"public key of {v.id!r} repeats")
            keys.add(v.public_key)
            if type(v.pop) is not bytes or not backend.pop_verify(v.public_key, v.pop):
                raise ValidatorSetError(ValidatorSetError.BAD_POP, f"proof of possession of {v.id!r} fails")
        self.epoch = epoch
        self.validators: tuple[Validator, ...] = tuple(items)
        self.total_power = sum(v.power for v in items)
        self.max_faulty_power = (self.total_power - 1) // 3
        self.quorum_power = self.total_power - self.max_faulty_power
        self.weak_power = self.max_faulty_power + 1
        # Quorum intersection: 2 * quorum - total >= f + 1, so two quorums share an honest validator.
        assert 2 * self.quorum_power - self.total_power >= self.weak_power
        assert self.quorum_power <= self.total_power and 3 * self.quorum_power > 2 * self.total_power
        self.index_of: dict[bytes, int] = {v.id: i for i, v in enumerate(items)}
        h = hashlib.sha256(b"LEDGER-VALIDATOR-SET-V1")
        h.update(epoch.to_bytes(8, "big"))
        for v in items:
            h.update(len(v.id).to_bytes(1, "big") + v.id + v.public_key + v.power.to_bytes(8, "big"))
        self.digest = h.digest()
        self._bitmap_cache: dict[bytes, tuple[tuple[bytes, ...], int] | None] = {}

    def __len__(self) -> int:
        return len(self.validators)

    def __repr__(self) -> str:
        return f"ValidatorSet(epoch={self.epoch}, n={len(self.validators)}, total_power={self.total_power})"

    @property
    def bitmap_len(self) -> int:
        return (len(self.validators) + 7) // 8

    def entries(self) -> tuple[tuple[bytes, bytes, bytes, int], ...]:
        """(id, public key, pop, power) of every validator, in bitmap order (the wire form of an epoch-change
        proof's next set)."""
        return tuple((v.id, v.public_key, v.pop, v.power) for v in self.validators)

    def leader(self, round_: int) -> int:
        """Round-robin leader index of a round."""
        return round_ % len(self.validators)

    def power_of(self, indexes: Iterable[int]) -> int:
        return sum(self.validators[i].power for i in indexes)

    def bitmap(self, indexes: Iterable[int]) -> bytes:
        out = bytearray(self.bitmap_len)
        for i in indexes:
            assert 0 <= i < len(self.validators)
            out[i // 8] |= 0x80 >> (i % 8)
        return bytes(out)

    def signers(self, bitmap: bytes) -> tuple[tuple[bytes, ...], int] | None:
        """(public keys, power) of the signers named by `bitmap`, or None if the bitmap is malformed or empty."""
        cached = self._bitmap_cache.get(bitmap)
        if cached is not None or bitmap in self._bitmap_cache:
            return cached
        result: tuple[tuple[bytes, ...], int] | None = None
        if type(bitmap) is bytes and len(bitmap) == self.bitmap_len:
            indexes = bitmap_indexes(bitmap)
            if indexes and indexes[-1] < len(self.validators):
                keys = tuple(self.validators[i].public_key for i in indexes)
                result = (keys, self.power_of(indexes))
        if len(self._bitmap_cache) > 4096:
            self._bitmap_cache.clear()
        self._bitmap_cache[bitmap] = result
        return result


def bitmap_indexes(bitmap: bytes) -> list[int]:
    out = []
    for byte_index, byte in enumerate(bitmap):
        if byte:
            for bit in range(8):
                if byte & (0x80 >> bit):
                    out.append(byte_index * 8 + bit)
    return out
