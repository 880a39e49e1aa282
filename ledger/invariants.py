"""Invariants of the ledger state, asserted in code.

- Per block (`assert_block_supply`, run by apply_block on every block): for every asset whose balances or supply
  changed, the change of outstanding supply (issued - redeemed) equals the change of the sum of all its balances
  (active + held + frozen), and outstanding supply never exceeds the cap. Negative balances cannot exist: the
  codec refuses to encode a negative uint64 and `TxContext.put_balance` asserts the range.
- Whole state (`audit_state`, for tests, audits and the property test): per asset, issued - redeemed == sum of
  every account's active + held + frozen; per (asset, account), held == sum of that sender's ordered holds; every
  account's position list names exactly the assets in which it has a non-zero balance; every stored value is the
  canonical encoding of a valid record; the replay set is consistent: the derived index `T` holds exactly the ids
  the replay buckets `e` list, each with its bucket's expiry height, every bucket but an expiry height's last is
  full, each replay index `E` counts its buckets' ids, and no expiry height below the chain meta's height is left
  (the block at h prunes h - 1).
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.codec import decode
from ledger.records import (
    REPLAY_CHUNK,
    AssetDefinition,
    AssetStatus,
    Balance,
    ChainMeta,
    Hold,
    HoldStatus,
    Positions,
    ReplayBucket,
    ReplayIndex,
    TxSeen,
)
from ledger.schema import MAX_STATE_VALUE_BYTES
from ledger.state import Overlay
from ledger.state_keys import parse_balance_key, record_type_of


class InvariantViolation(AssertionError):
    """The state broke a ledger invariant: a bug, never a user error."""


def assert_block_supply(overlay: Overlay) -> None:
    """Check the supply invariant incrementally for the assets this block touched."""
    # Per asset (its id's bytes, as in the keys): the change of the sum of its balances and of its outstanding supply.
    delta_balances: dict[bytes, int] = {}
    delta_supply: dict[bytes, int] = {}
    get = overlay.get
    parent_value = overlay.parent_value
    for key, written in overlay.written_items():
        tag = key[0]
        if tag == 0x42:  # 'B': tag, u8 length of the asset id, asset id, account id
            old: Balance | None = parent_value(key)
            new: Balance | None = written
            asset = key[2 : 2 + key[1]]
            d = 0 if new is None else new.available + new.held + new.frozen
            if old is not None:
                d -= old.available + old.held + old.frozen
            delta_balances[asset] = delta_balances.get(asset, 0) + d
        elif tag == 0x53:  # 'S'
            old_s: AssetStatus | None = parent_value(key)
            new_s: AssetStatus | None = written
            assert new_s is not None, "asset status deleted"
            asset = key[1:]
            delta_supply[asset] = new_s.outstanding - (0 if old_s is None else old_s.outstanding)
            definition: AssetDefinition | None = get(b"A" + asset)
            if definition is None or not 0 <= new_s.outstanding <= definition.supply_cap:
                raise InvariantViolation(f"outstanding supply of {asset.decode()} outside [0, cap]")
    for asset in delta_balances.keys() | delta_supply.keys():
        if delta_balances.get(asset, 0) != delta_supply.get(asset, 0):
            raise InvariantViolation(
                f"{asset.decode()}: supply changed by {delta_supply.get(asset, 0)}, "
                f"balances by {delta_balances.get(asset, 0)}"
            )


def audit_state(items: Iterable[tuple[bytes, bytes]]) -> dict[str, int]:
    """Check every whole-state invariant over all (key, value bytes); returns outstanding supply per asset."""
    outstanding: dict[str, int] = {}
    totals: dict[str, int] = {}
    held: dict[tuple[str, str], int] = {}
    holds: dict[tuple[str, str], int] = {}
    nonzero: dict[str, set[str]] = {}
    positions: dict[str, set[str]] = {}
    seen: dict[bytes, int] = {}  # T: tx id -> expiry height
    listed: dict[bytes, int] = {}  # the ids the buckets list -> their bucket's expiry height
    chunks: dict[int, dict[int, int]] = {}  # expiry height -> {chunk: ids}
    counts: dict[int, int] = {}  # E: expiry height -> count
    height: int | None = None  # the chain meta's
    for key, raw in items:
        rt = record_type_of(key)
        value = raw if rt is None else decode(rt, raw, MAX_STATE_VALUE_BYTES)  # strict: every field re-checked
        tag = key[:1]
        if tag == b"S":
            assert isinstance(value, AssetStatus)
            outstanding[key[1:].decode()] = value.outstanding
        elif tag == b"B":
            assert isinstance(value, Balance)
            asset_id, account_id = parse_balance_key(key)
            if value.total == 0:
                raise InvariantViolation(f"zero balance record stored for {account_id} in {asset_id}")
            totals[asset_id] = totals.get(asset_id, 0) + value.total
            held[(asset_id, account_id)] = value.held
            nonzero.setdefault(account_id, set()).add(asset_id)
        elif tag == b"H":
            assert isinstance(value, Hold)
            if value.status == HoldStatus.ORDERED:
                k = (value.asset, value.sender)
                holds[k] = holds.get(k, 0) + value.amount
        elif tag == b"P":
            assert isinstance(value, Positions)
            positions[key[1:].decode()] = set(value.assets)
        elif tag == b"T":
            assert isinstance(value, TxSeen)
            seen[key[1:]] = value.expiry_height
        elif tag == b"e":
            assert isinstance(value, ReplayBucket)
            expiry = int.from_bytes(key[1:9], "big")
            chunks.setdefault(expiry, {})[int.from_bytes(key[9:13], "big")] = len(value.tx_ids)
            for tx_id in value.tx_ids:
                if tx_id in listed:
                    raise InvariantViolation(f"replay id {tx_id.hex()} listed twice")
                listed[tx_id] = expiry
        elif tag == b"E":
            assert isinstance(value, ReplayIndex)
            counts[int.from_bytes(key[1:9], "big")] = value.count
        elif tag == b"M":
            assert isinstance(value, ChainMeta)
            height = value.height
    for asset_id in outstanding.keys() | totals.keys():
        if outstanding.get(asset_id, 0) != totals.get(asset_id, 0):
            raise InvariantViolation(
                f"{asset_id}: issued - redeemed = {outstanding.get(asset_id, 0)}, balances sum to {totals.get(asset_id, 0)}"
            )
    for k in held.keys() | holds.keys():
        if held.get(k, 0) != holds.get(k, 0):
            raise InvariantViolation(f"{k}: held {held.get(k, 0)} but active holds total {holds.get(k, 0)}")
    if nonzero != positions:
        raise InvariantViolation("position lists do not match the non-zero balances")
    if seen != listed:
        raise InvariantViolation(f"the replay index T ({len(seen)} ids) differs from the replay buckets' ids "
                                 f"({len(listed)}) or their expiry heights")
    for expiry in chunks.keys() | counts.keys():
        sizes = chunks.get(expiry, {})
        count = counts.get(expiry, 0)
        expected = [min(REPLAY_CHUNK, count - c * REPLAY_CHUNK) for c in range((count + REPLAY_CHUNK - 1) // REPLAY_CHUNK)]
        if [sizes.get(c) for c in range(len(expected))] != expected or len(sizes) != len(expected):
            raise InvariantViolation(f"expiry height {expiry}: replay index counts {count}, buckets hold {sizes}")
        if height is not None and expiry < height:
            raise InvariantViolation(f"expiry height {expiry}: replay entries left after block {height} (not pruned)")
    return outstanding
