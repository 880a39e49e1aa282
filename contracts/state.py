"""The contracts layer's state: key layout and record types under the ledger's contracts namespace ('C').

Every value is a frozen dataclass encoded with the ledger's canonical codec, so rule state is covered by the state
root and by proofs like any other record. Keys (after the ledger's 'C' tag; `lp(x)` = u8 length + bytes):

    'c' account                                ClaimSet        identity claims by KYC providers
    'x' lp(asset)                              HolderHead      holder counts and the size of the holder index
    'y' lp(asset) u32be(index)                 HolderSlot      the index-th account that ever held the asset
    'i' lp(asset) account                      HolderEntry     an account's slot, country and holding flag
    'k' lp(asset) country                      Count           current holders per country
    's' asset                                  Snapshots       record heights announced for the asset
    'p' lp(asset) account                      Checkpoints     an account's total balance at record heights
    'q' asset                                  Checkpoints     the asset's outstanding supply at record heights
    'l' lp(asset) account                      Lots            locked issuance lots of an account
    'v' lp(asset) rule_id(8) account           Window          rolling-window transfer history
    'd' action_id                              Distribution    a corporate action and its payment progress
    'm' asset                                  MaturityRef     the asset's maturity redemption, if announced

Reads go through `RuleState.get_contract`, writes through `RuleState.put_contract` (only from on_success or from a
ledger operation processor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from ledger.codec import Bool, Seq, Str, UInt, decode_trusted, encode, record_type, wire
from ledger.rules import RuleState
from ledger.schema import ACCOUNT_ID, ASSET_ID, HEIGHT, HOLD_PATTERN, TIME, U64

__all__ = [
    "MAX_CHECKPOINTS",
    "MAX_CLAIMS",
    "MAX_LOTS",
    "MAX_SNAPSHOTS",
    "MAX_WINDOW_ENTRIES",
    "Checkpoint",
    "Checkpoints",
    "Claim",
    "ClaimSet",
    "Count",
    "Distribution",
    "HolderEntry",
    "HolderHead",
    "HolderSlot",
    "Lot",
    "Lots",
    "MaturityRef",
    "Snapshots",
    "Window",
    "WindowEntry",
    "read",
    "write",
]

MAX_CLAIMS = 16  # identity claims per account (one per KYC provider)
MAX_LOTS = 256  # locked issuance lots per (asset, account)
MAX_SNAPSHOTS = 1024  # record heights per asset
MAX_CHECKPOINTS = MAX_SNAPSHOTS
MAX_WINDOW_ENTRIES = 256  # rolling-window entries per (rule, account)
COUNTRY = Str(2, "[A-Z]{2}", min_bytes=2)
COUNTRY_OR_NONE = Str(2, "([A-Z]{2})?")
ACTION_ID = Str(64, HOLD_PATTERN, min_bytes=1)


@dataclass(frozen=True, slots=True)
class Claim:
    """An identity claim: `provider` (a kyc_provider account) verified the account, resident in `country`
    (ISO 3166-1 alpha-2), investor `level` (0-255, meaning set by the provider), valid while time < expires_at."""

    provider: str = wire(ACCOUNT_ID)
    country: str = wire(COUNTRY)
    level: int = wire(UInt(8))
    expires_at: int = wire(TIME)


@dataclass(frozen=True, slots=True)
class ClaimSet:
    claims: tuple[Claim, ...] = wire(
        Seq(record_type(Claim), MAX_CLAIMS, sorted_unique=True, sort_key=lambda c: c.provider)
    )


@dataclass(frozen=True, slots=True)
class HolderHead:
    """`holders`: accounts with a non-zero total balance now; `slots`: accounts that ever held (index size)."""

    holders: int = wire(U64)
    slots: int = wire(U64)


@dataclass(frozen=True, slots=True)
class HolderSlot:
    account: str = wire(ACCOUNT_ID)
    first_height: int = wire(HEIGHT)


@dataclass(frozen=True, slots=True)
class HolderEntry:
    """`country`: the country the account was counted under when it became a holder ('' = unknown)."""

    index: int = wire(U64)
    country: str = wire(COUNTRY_OR_NONE)
    holding: bool = wire(Bool())


@dataclass(frozen=True, slots=True)
class Count:
    value: int = wire(U64)


@dataclass(frozen=True, slots=True)
class Snapshots:
    heights: tuple[int, ...] = wire(Seq(HEIGHT, MAX_SNAPSHOTS, sorted_unique=True))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    height: int = wire(HEIGHT)
    value: int = wire(U64)


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """Values at record heights, ascending (ERC20Snapshot style: written lazily at the first change after R)."""

    points: tuple[Checkpoint, ...] = wire(
        Seq(record_type(Checkpoint), MAX_CHECKPOINTS, sorted_unique=True, sort_key=lambda c: c.height)
    )


@dataclass(frozen=True, slots=True)
class Lot:
    unlock_at: int = wire(TIME)
    amount: int = wire(UInt(64, minimum=1))


@dataclass(frozen=True, slots=True)
class Lots:
    """Locked lots, ascending by unlock time (ties merged)."""

    lots: tuple[Lot, ...] = wire(
        Seq(record_type(Lot), MAX_LOTS, sorted_unique=True, sort_key=lambda lot: lot.unlock_at)
    )


@dataclass(frozen=True, slots=True)
class WindowEntry:
    time: int = wire(TIME)
    amount: int = wire(U64)
    count: int = wire(U64)


@dataclass(frozen=True, slots=True)
class Window:
    entries: tuple[WindowEntry, ...] = wire(
        Seq(record_type(WindowEntry), MAX_WINDOW_ENTRIES, sorted_unique=True, sort_key=lambda e: e.time)
    )


@dataclass(frozen=True, slots=True)
class Distribution:
    """A corporate action paying `pay_asset` from `payer` to the holders of `asset` at `record_height`:
    per unit held, rate_num / rate_den units of pay_asset, rounded down per holder; the difference between
    floor(supply_at_record * rate) and the sum of the payments goes to `remainder_account`.
    kind 1 = distribution (coupon, dividend); kind 2 = redemption at maturity (holders' units are also redeemed).
    Progress: `cursor` (next holder-index slot), `units` (units paid for so far), `paid` (sum paid so far),
    `done`."""

    kind: int = wire(UInt(8, minimum=1, maximum=2))
    asset: str = wire(ASSET_ID)
    pay_asset: str = wire(ASSET_ID)
    payer: str = wire(ACCOUNT_ID)
    remainder_account: str = wire(ACCOUNT_ID)
    record_height: int = wire(HEIGHT)
    rate_num: int = wire(UInt(64, minimum=1))
    rate_den: int = wire(UInt(64, minimum=1))
    cursor: int = wire(U64)
    units: int = wire(U64)
    paid: int = wire(U64)
    done: bool = wire(Bool())


@dataclass(frozen=True, slots=True)
class MaturityRef:
    """The asset's maturity redemption: after `record_height` only forced movements and the redemption move it."""

    action_id: str = wire(ACTION_ID)
    record_height: int = wire(HEIGHT)


T = TypeVar("T")


def read(state: RuleState, suffix: bytes, cls: type[T]) -> T | None:
    raw = state.get_contract(suffix)
    if raw is None:
        return None
    value: Any = decode_trusted(record_type(cls), raw)
    return value


def write(state: RuleState, suffix: bytes, value: Any) -> None:
    """Write a record (None deletes)."""
    state.put_contract(suffix, None if value is None else encode(record_type(type(value)), value))


def lp(text: str) -> bytes:
    b = text.encode()
    assert len(b) < 256
    return bytes((len(b),)) + b


def claims_key(account: str) -> bytes:
    return b"c" + account.encode()


def holder_head_key(asset: str) -> bytes:
    return b"x" + lp(asset)


def holder_slot_key(asset: str, index: int) -> bytes:
    return b"y" + lp(asset) + index.to_bytes(4, "big")


def holder_entry_key(asset: str, account: str) -> bytes:
    return b"i" + lp(asset) + account.encode()


def country_count_key(asset: str, country: str) -> bytes:
    return b"k" + lp(asset) + country.encode()


def snapshots_key(asset: str) -> bytes:
    return b"s" + asset.encode()


def checkpoints_key(asset: str, account: str) -> bytes:
    return b"p" + lp(asset) + account.encode()


def supply_checkpoints_key(asset: str) -> bytes:
    return b"q" + asset.encode()


def lots_key(asset: str, account: str) -> bytes:
    return b"l" + lp(asset) + account.encode()


def window_key(asset: str, rule_id: bytes, account: str) -> bytes:
    assert len(rule_id) == 8
    return b"v" + lp(asset) + rule_id + account.encode()


def action_key(action_id: str) -> bytes:
    return b"d" + action_id.encode()


def maturity_key(asset: str) -> bytes:
    return b"m" + asset.encode()
