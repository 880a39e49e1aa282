"""The genesis state: the chain id, the starting time, the founding members and their first accounts, the first
validator set and chain params (epoch 0, from height 1) and the governance voters and approval threshold.

`genesis_changes(spec)` returns the state changes of height 0 (apply them to an empty store and update an empty
tree with them to get the genesis state root). Governance needs at least one admin account; a consortium usually
makes it an M-of-N account whose keys are held by the founding members.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.codec import EncodeError
from ledger.governance_state import chain_params_record
from ledger.records import Account, ChainMeta, EpochRecord, GovernanceRecord, Member, ValidatorInfo
from ledger.schema import (
    DEFAULT_CHAIN_PARAMS,
    ROLE_BITS,
    approval_threshold_error,
    default_approval_threshold,
    member_of,
)
from ledger.state import encode_value
from ledger.state_keys import EPOCH_KEY, GOVERNANCE_KEY, META_KEY, account_key, member_key


@dataclass(frozen=True, slots=True)
class GenesisAccount:
    account_id: str
    keys: tuple[bytes, ...]
    threshold: int
    roles: tuple[str, ...] = ()
    custodian: str | None = None


@dataclass(frozen=True, slots=True)
class GenesisSpec:
    chain_id: str
    time: int
    members: tuple[tuple[str, str], ...]  # (member_id, name)
    accounts: tuple[GenesisAccount, ...]
    validators: tuple[ValidatorInfo, ...] = ()  # epoch 0, in signer-bitmap order
    params: tuple[tuple[str, int], ...] = ()  # chain params by name; () = ledger.schema.DEFAULT_CHAIN_PARAMS
    voters: tuple[str, ...] | None = None  # governance voters; None = every member
    threshold: int | None = None  # approvals needed; None = floor(2N/3) + 1 of N voters


def genesis_epoch(spec: GenesisSpec) -> EpochRecord:
    """Epoch 0: the genesis validators and params, certifying heights >= 1. ValueError for a bad spec."""
    values = dict(DEFAULT_CHAIN_PARAMS)
    values.update(dict(spec.params))
    params = chain_params_record(values)
    ids = [v.node_id for v in spec.validators]
    for label, seen in (("node id", ids), ("identity key", [v.identity_key for v in spec.validators]),
                        ("BLS key", [v.bls_key for v in spec.validators])):
        if len(set(seen)) != len(seen):
            raise ValueError(f"two genesis validators share the same {label}")
    return EpochRecord(0, 1, tuple(spec.validators), params)


def genesis_governance(spec: GenesisSpec) -> GovernanceRecord:
    """The governance voters and threshold of height 0. ValueError for a bad spec."""
    members = [m for m, _ in spec.members]
    voters = members if spec.voters is None else list(spec.voters)
    if len(set(voters)) != len(voters):
        raise ValueError("governance voters repeat")
    unknown = set(voters) - set(members)
    if unknown:
        raise ValueError(f"governance voters {sorted(unknown)} are not genesis members")
    if not voters:
        raise ValueError("governance needs at least one voter")
    threshold = default_approval_threshold(len(voters)) if spec.threshold is None else spec.threshold
    error = approval_threshold_error(threshold, len(voters))
    if error is not None:
        raise ValueError(f"governance: {error}")
    return GovernanceRecord(tuple(sorted(voters)), threshold)


def genesis_changes(spec: GenesisSpec) -> dict[bytes, bytes | None]:
    """The height-0 state. Raises ValueError for an inconsistent spec (unknown member, duplicate, bad keys)."""
    out: dict[bytes, bytes | None] = {META_KEY: encode_value(META_KEY, ChainMeta(spec.chain_id, 0, spec.time))}
    members = set()
    for member_id, name in spec.members:
        if member_id in members:
            raise ValueError(f"duplicate member {member_id}")
        members.add(member_id)
        key = member_key(member_id)
        out[key] = encode_value(key, Member(name, 0))
    if not any("admin" in a.roles for a in spec.accounts):
        raise ValueError("genesis needs at least one admin account")
    for a in spec.accounts:
        member = member_of(a.account_id) if "@" in a.account_id else ""
        if member not in members:
            raise ValueError(f"account {a.account_id} belongs to no genesis member")
        key = account_key(a.account_id)
        if key in out:
            raise ValueError(f"duplicate account {a.account_id}")
        if not 1 <= a.threshold <= len(a.keys):
            raise ValueError(f"account {a.account_id}: threshold {a.threshold} with {len(a.keys)} keys")
        unknown = set(a.roles) - set(ROLE_BITS)
        if unknown:
            raise ValueError(f"account {a.account_id}: unknown roles {sorted(unknown)}")
        roles = 0
        for r in a.roles:
            roles |= ROLE_BITS[r]
        record = Account(member, tuple(sorted(a.keys)), a.threshold, roles, a.custodian, False, None)
        out[key] = encode_value(key, record)
    for v in spec.validators:
        if v.member not in members:
            raise ValueError(f"validator {v.node_id} belongs to no genesis member")
    try:
        out[EPOCH_KEY] = encode_value(EPOCH_KEY, genesis_epoch(spec))
        out[GOVERNANCE_KEY] = encode_value(GOVERNANCE_KEY, genesis_governance(spec))
    except EncodeError as exc:
        raise ValueError(f"genesis validators or governance: {exc}") from None
    return dict(sorted(out.items()))
