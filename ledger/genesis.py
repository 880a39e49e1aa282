"""The genesis state: the chain id, the starting time, the founding members and their first accounts.

`genesis_changes(spec)` returns the state changes of height 0 (apply them to an empty store and update an empty
tree with them to get the genesis state root). Governance needs at least one admin account; a consortium usually
makes it an M-of-N account whose keys are held by the founding members.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.keys import META_KEY, account_key, member_key
from ledger.records import Account, ChainMeta, Member
from ledger.schema import ROLE_BITS, member_of
from ledger.state import encode_value


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
    return dict(sorted(out.items()))
