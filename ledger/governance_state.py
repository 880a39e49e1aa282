"""Governance and epochs in ledger state: reading them, and the rules they obey (docs/protocol.md, "Governance and
epochs").

    current_epoch(state)          the EpochRecord under EPOCH_KEY: the validators and params of heights >= start_height
    current_governance(state)     the GovernanceRecord: voters and approval threshold
    proposal(state, id)           a ProposalRecord or None
    validator_set_entries(rec)    (node_id bytes, bls_key, bls_pop, power) per validator, in bitmap order: exactly what
                                  consensus.validators.ValidatorSet(rec.epoch, ...) takes
    PopVerifier                   the type of the BLS proof-of-possession check governance uses when it adds or rotates
                                  a BLS key: fn(bls_public_key_48, pop_96) -> bool

The ledger does not import the consensus layer (the layers stay apart): the check is part of the protocol value
passed to apply_block (ledger.protocol.Protocol.pop_verifier; a node passes consensus.bls.pop_verify, composed in
node/chain/protocol.py). Nothing is registered, so there is no node "without a verifier".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ledger import codes
from ledger.records import ChainParamsRecord, EpochRecord, GovernanceRecord, ProposalRecord, ValidatorInfo
from ledger.schema import CHAIN_PARAM_NAMES, MIN_VALIDATORS, chain_params_error
from ledger.state import Overlay, StateReader, decode_value
from ledger.state_keys import EPOCH_KEY, GOVERNANCE_KEY, proposal_key

__all__ = [
    "MissingGovernanceState",
    "PopVerifier",
    "chain_params_record",
    "chain_params_values",
    "current_epoch",
    "current_governance",
    "proposal",
    "validator_set_entries",
    "validator_set_error",
]

PopVerifier = Callable[[bytes, bytes], bool]


class MissingGovernanceState(LookupError):
    """The state has no epoch or governance record (it was not built by this version's genesis)."""


def _read(state: StateReader | Overlay, key: bytes) -> Any:
    if isinstance(state, Overlay):
        return state.get(key)
    raw = state.get_state(key)
    return None if raw is None else decode_value(key, raw)


def current_epoch(state: StateReader | Overlay) -> EpochRecord:
    """The EpochRecord in `state` (after an epoch-ending block at height H: the next epoch's, start_height H + 1)."""
    rec = _read(state, EPOCH_KEY)
    if rec is None:
        raise MissingGovernanceState("state has no epoch record")
    return rec


def current_governance(state: StateReader | Overlay) -> GovernanceRecord:
    rec = _read(state, GOVERNANCE_KEY)
    if rec is None:
        raise MissingGovernanceState("state has no governance record")
    return rec


def proposal(state: StateReader | Overlay, proposal_id: str) -> ProposalRecord | None:
    return _read(state, proposal_key(proposal_id))


def validator_set_entries(rec: EpochRecord) -> tuple[tuple[bytes, bytes, bytes, int], ...]:
    """(node_id.encode(), bls_key, bls_pop, power) of each validator in bitmap order: the arguments of
    consensus.validators.ValidatorSet(rec.epoch, entries) and the next set of an epoch-change proof."""
    return tuple((v.node_id.encode(), v.bls_key, v.bls_pop, v.power) for v in rec.validators)


def chain_params_record(values: Mapping[str, int]) -> ChainParamsRecord:
    """The record of six named chain params; ValueError when a name is missing or extra, or a value is out of
    bounds (ledger.schema.CHAIN_PARAM_BOUNDS)."""
    if set(values) != set(CHAIN_PARAM_NAMES):
        raise ValueError(f"chain params must name exactly {', '.join(CHAIN_PARAM_NAMES)}")
    error = chain_params_error(dict(values))
    if error is not None:
        raise ValueError(error)
    return ChainParamsRecord(*(values[n] for n in CHAIN_PARAM_NAMES))


def chain_params_values(rec: ChainParamsRecord | Any) -> dict[str, int]:
    """The six chain params of a record (or of any object with those attributes) by name."""
    return {n: getattr(rec, n) for n in CHAIN_PARAM_NAMES}


def validator_set_error(validators: tuple[ValidatorInfo, ...]) -> tuple[int, str] | None:
    """Why a validator set may not result from a governance change (None: it may): at least MIN_VALIDATORS, and no
    single validator with more than (total - 1) // 3 of the power, so one faulty validator is always tolerated.
    (Size, uniqueness and proofs of possession are checked by the actions that add keys.) Returns (code, detail)."""
    if len(validators) < MIN_VALIDATORS:
        return codes.TOO_FEW_VALIDATORS, f"{len(validators)} validators; at least {MIN_VALIDATORS} are required"
    total = sum(v.power for v in validators)
    faulty = (total - 1) // 3
    for v in validators:
        if v.power > faulty:
            detail = f"{v.node_id} would hold power {v.power} of {total}; at most {faulty} keeps one fault tolerated"
            return codes.VALIDATOR_POWER_TOO_HIGH, detail
    return None
