"""Holds (ERC-1996): units set aside from the sender's active balance for a notary to execute to a payee.

States: ordered -> executed | released_by_notary | released_by_payee | released_on_expiration.
- create: the sender, or the sender's custodian; expires_at (block time) must be in the future.
- execute: the notary only, strictly before expires_at; the units go to the payee under the asset's rules.
- release: the notary (released_by_notary) or the payee or the payee's custodian (released_by_payee), any time.
- expire: automatic. Every block first releases the ordered holds whose expires_at its time has reached
  (released_on_expiration, event hold_expired without an actor): `release_expired`, over the hold expiry queue
  (ledger.hold_expiry), at most MAX_HOLD_EXPIRIES_PER_BLOCK per block, earliest expiry first. The expire_hold
  operation stays: on a hold already released on expiration it succeeds and changes nothing; on an ordered hold
  past its expiry (one a block left for the next ones, beyond the per-block limit) it releases it at once.
Released units return to the sender's active balance. The hold record stays (with its final state) for audit.
"""

from __future__ import annotations

from dataclasses import replace

from ledger import codes, hold_expiry, rules
from ledger.context import TxContext
from ledger.errors import Refused
from ledger.operations import CreateHold, ExecuteHold, ExpireHold, ReleaseHold
from ledger.records import HOLD_STATUS_NAMES, Balance, Hold, HoldStatus
from ledger.schema import MAX_AMOUNT, MAX_EVENTS_PER_TX, MAX_HOLD_EXPIRIES_PER_BLOCK, ROLE_BITS
from ledger.state_keys import hold_key

assert MAX_HOLD_EXPIRIES_PER_BLOCK <= MAX_EVENTS_PER_TX, "a block's expiries are the events of one context"


def _acts_for(tx: TxContext, actor_id: str, account_id: str) -> bool:
    """True when actor is the account itself or its appointed custodian (holding the custodian role)."""
    if actor_id == account_id:
        return True
    acct = tx.find_account(account_id)
    if acct is None or acct.custodian != actor_id:
        return False
    custodian = tx.find_account(actor_id)
    return custodian is not None and bool(custodian.roles & ROLE_BITS["custodian"])


def _active(tx: TxContext, hold_id: str) -> Hold:
    h = tx.hold(hold_id)
    if h.status != HoldStatus.ORDERED:
        raise Refused(codes.HOLD_NOT_ACTIVE, f"hold {hold_id} is {HOLD_STATUS_NAMES[h.status]}")
    return h


def _release(tx: TxContext, hold_id: str, h: Hold, status: int) -> None:
    bal = tx.balance(h.asset, h.sender)
    assert bal.held >= h.amount, "held balance below an active hold"
    tx.put_balance(h.asset, h.sender, bal, Balance(bal.available + h.amount, bal.held - h.amount, bal.frozen))
    tx.state.put(hold_key(hold_id), replace(h, status=status))


def create_hold(tx: TxContext, op: CreateHold) -> None:
    tx.actor(op.actor)
    if not _acts_for(tx, op.actor, op.sender):
        raise Refused(codes.UNAUTHORIZED, f"{op.actor} may not place holds on {op.sender}")
    if tx.state.get(hold_key(op.hold)) is not None:
        raise Refused(codes.HOLD_EXISTS, f"hold {op.hold} already exists")
    if op.expires_at <= tx.block.time:
        raise Refused(codes.INVALID_HOLD_EXPIRY, f"expires_at {op.expires_at} <= block time {tx.block.time}")
    asset = tx.asset(op.asset)
    tx.account(op.sender)
    tx.account(op.recipient)
    tx.account(op.notary)
    if op.sender == op.recipient:
        raise Refused(codes.SELF_TRANSFER, "hold payee is the sender")
    mv = tx.movement(rules.HOLD_CREATE, op.asset, asset, op.sender, op.recipient, op.amount, op.actor)
    tx.check_rules(mv)
    bal = tx.balance(op.asset, op.sender)
    if bal.available < op.amount:
        raise Refused(
            codes.INSUFFICIENT_ACTIVE_BALANCE, f"{op.sender} has {bal.available} active {op.asset}, needs {op.amount}"
        )
    tx.put_balance(op.asset, op.sender, bal, Balance(bal.available - op.amount, bal.held + op.amount, bal.frozen))
    tx.state.put(
        hold_key(op.hold),
        Hold(
            op.asset, op.sender, op.recipient, op.notary, op.amount, op.expires_at, HoldStatus.ORDERED, tx.block.height
        ),
    )
    hold_expiry.schedule(tx.state, op.expires_at, op.hold)
    tx.rules_succeeded(mv)
    tx.emit(
        "hold_created",
        actor=op.actor,
        hold=op.hold,
        asset=op.asset,
        sender=op.sender,
        recipient=op.recipient,
        notary=op.notary,
        amount=op.amount,
        expires_at=op.expires_at,
    )


def execute_hold(tx: TxContext, op: ExecuteHold) -> None:
    tx.actor(op.actor)
    h = _active(tx, op.hold)
    if op.actor != h.notary:
        raise Refused(codes.NOT_HOLD_NOTARY, f"{op.actor} is not the notary of hold {op.hold}")
    if tx.block.time >= h.expires_at:
        raise Refused(codes.HOLD_EXPIRED, f"hold {op.hold} expired at {h.expires_at}")
    asset = tx.asset(h.asset)
    tx.account(h.recipient)
    mv = tx.movement(rules.HOLD_EXECUTE, h.asset, asset, h.sender, h.recipient, h.amount, op.actor)
    tx.check_rules(mv)
    src = tx.balance(h.asset, h.sender)
    assert src.held >= h.amount, "held balance below an active hold"
    tx.put_balance(h.asset, h.sender, src, Balance(src.available, src.held - h.amount, src.frozen))
    dst = tx.balance(h.asset, h.recipient)
    assert dst.available + h.amount <= MAX_AMOUNT
    tx.put_balance(h.asset, h.recipient, dst, Balance(dst.available + h.amount, dst.held, dst.frozen))
    tx.state.put(hold_key(op.hold), replace(h, status=HoldStatus.EXECUTED))
    tx.rules_succeeded(mv)
    tx.emit(
        "hold_executed",
        actor=op.actor,
        hold=op.hold,
        asset=h.asset,
        sender=h.sender,
        recipient=h.recipient,
        notary=h.notary,
        amount=h.amount,
    )


def release_hold(tx: TxContext, op: ReleaseHold) -> None:
    tx.actor(op.actor)
    h = _active(tx, op.hold)
    if op.actor == h.notary:
        status = HoldStatus.RELEASED_BY_NOTARY
    elif _acts_for(tx, op.actor, h.recipient):
        status = HoldStatus.RELEASED_BY_PAYEE
    else:
        raise Refused(codes.NOT_HOLD_NOTARY, f"{op.actor} is neither the notary nor the payee of hold {op.hold}")
    _release(tx, op.hold, h, status)
    tx.emit(
        "hold_released",
        actor=op.actor,
        hold=op.hold,
        asset=h.asset,
        sender=h.sender,
        amount=h.amount,
        status=HOLD_STATUS_NAMES[status],
    )


def expire_hold(tx: TxContext, op: ExpireHold) -> None:
    tx.actor(op.actor)
    if tx.hold(op.hold).status == HoldStatus.RELEASED_ON_EXPIRATION:
        return  # released when it expired: nothing left to do, and asking again is not an error
    h = _active(tx, op.hold)
    if tx.block.time < h.expires_at:
        raise Refused(codes.HOLD_NOT_EXPIRED, f"hold {op.hold} expires at {h.expires_at}")
    _release(tx, op.hold, h, HoldStatus.RELEASED_ON_EXPIRATION)
    tx.emit("hold_expired", actor=op.actor, hold=op.hold, asset=h.asset, sender=h.sender, amount=h.amount)


def release_expired(tx: TxContext) -> None:
    """At the start of a block (`tx` is the block's own context, no signer): release the ordered holds whose
    expires_at the block time has reached, earliest first, at most MAX_HOLD_EXPIRIES_PER_BLOCK."""
    for entry in hold_expiry.take_due(tx.state, tx.block.time, MAX_HOLD_EXPIRIES_PER_BLOCK):
        h = tx.hold(entry.hold)
        if h.status != HoldStatus.ORDERED:
            continue  # executed or released before it expired
        _release(tx, entry.hold, h, HoldStatus.RELEASED_ON_EXPIRATION)
        tx.emit(
            "hold_expired", hold=entry.hold, asset=h.asset, sender=h.sender, amount=h.amount, expires_at=h.expires_at
        )
