"""Enforcement by agents: freezes, pauses, forced transfers, and recovery of lost keys.

Authority:
- account freeze/unfreeze: an account holding the agent role (a freeze is not tied to one asset);
- partial freeze/unfreeze and forced transfer: an agent of the asset (listed in its agents, or its issuer)
  holding the agent role;
- pause/unpause: the asset's issuer or one of its agents;
- key recovery and account migration: a recovery agent, i.e. an account holding the agent role at the same
  member institution as the account (an institution recovers its own clients), or an admin.
"""

from __future__ import annotations

from dataclasses import replace

from ledger import codes, rules
from ledger.context import TxContext
from ledger.errors import Refused
from ledger.operations import (
    ForcedTransfer,
    FreezeAccount,
    FreezeAmount,
    MigrateAccount,
    PauseAsset,
    RecoverKeys,
    UnfreezeAccount,
    UnfreezeAmount,
    UnpauseAsset,
)
from ledger.ops.assets import move_units
from ledger.ops.identity import check_key_set
from ledger.records import Account, Balance
from ledger.schema import ROLE_BITS
from ledger.state_keys import asset_status_key


def _require_recovery_agent(tx: TxContext, actor_id: str, actor: Account, target: Account) -> None:
    if actor.roles & ROLE_BITS["admin"]:
        return
    if actor.roles & ROLE_BITS["agent"] and actor.member == target.member:
        return
    raise Refused(codes.UNAUTHORIZED, f"{actor_id} is not a recovery agent for accounts of {target.member}")


def freeze_account(tx: TxContext, op: FreezeAccount) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "agent")
    target = tx.account(op.account)
    if target.frozen:
        raise Refused(codes.ACCOUNT_ALREADY_FROZEN, f"{op.account} is already frozen")
    tx.put_account(op.account, replace(target, frozen=True))
    tx.emit("account_frozen", actor=op.actor, account=op.account, reason=op.reason)


def unfreeze_account(tx: TxContext, op: UnfreezeAccount) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "agent")
    target = tx.account(op.account)
    if not target.frozen:
        raise Refused(codes.ACCOUNT_NOT_FROZEN, f"{op.account} is not frozen")
    tx.put_account(op.account, replace(target, frozen=False))
    tx.emit("account_unfrozen", actor=op.actor, account=op.account, reason=op.reason)


def freeze_amount(tx: TxContext, op: FreezeAmount) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_agent(op.actor, actor, op.asset, asset)
    tx.account(op.account)
    bal = tx.balance(op.asset, op.account)
    if bal.available < op.amount:
        raise Refused(
            codes.INSUFFICIENT_ACTIVE_BALANCE, f"{op.account} has {bal.available} active {op.asset}, needs {op.amount}"
        )
    tx.put_balance(op.asset, op.account, bal, Balance(bal.available - op.amount, bal.held, bal.frozen + op.amount))
    tx.emit("amount_frozen", actor=op.actor, asset=op.asset, account=op.account, amount=op.amount, reason=op.reason)


def unfreeze_amount(tx: TxContext, op: UnfreezeAmount) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_agent(op.actor, actor, op.asset, asset)
    tx.account(op.account)
    bal = tx.balance(op.asset, op.account)
    if bal.frozen < op.amount:
        raise Refused(
            codes.INSUFFICIENT_FROZEN_BALANCE, f"{op.account} has {bal.frozen} frozen {op.asset}, needs {op.amount}"
        )
    tx.put_balance(op.asset, op.account, bal, Balance(bal.available + op.amount, bal.held, bal.frozen - op.amount))
    tx.emit("amount_unfrozen", actor=op.actor, asset=op.asset, account=op.account, amount=op.amount, reason=op.reason)


def pause_asset(tx: TxContext, op: PauseAsset) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_controller(op.actor, actor, op.asset, asset)
    status = tx.asset_status(op.asset)
    if status.paused:
        raise Refused(codes.ASSET_ALREADY_PAUSED, f"{op.asset} is already paused")
    tx.state.put(asset_status_key(op.asset), replace(status, paused=True))
    tx.emit("asset_paused", actor=op.actor, asset=op.asset, reason=op.reason)


def unpause_asset(tx: TxContext, op: UnpauseAsset) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_controller(op.actor, actor, op.asset, asset)
    status = tx.asset_status(op.asset)
    if not status.paused:
        raise Refused(codes.ASSET_NOT_PAUSED, f"{op.asset} is not paused")
    tx.state.put(asset_status_key(op.asset), replace(status, paused=False))
    tx.emit("asset_unpaused", actor=op.actor, asset=op.asset, reason=op.reason)


def forced_transfer(tx: TxContext, op: ForcedTransfer) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_agent(op.actor, actor, op.asset, asset)
    if tx.find_account(op.sender) is None:
        raise Refused(codes.ACCOUNT_NOT_FOUND, f"account {op.sender} does not exist")
    tx.account(op.recipient)
    if op.sender == op.recipient:
        raise Refused(codes.SELF_TRANSFER)
    mv = tx.movement(rules.FORCED_TRANSFER, op.asset, asset, op.sender, op.recipient, op.amount, op.actor)
    tx.check_rules(mv)
    move_units(tx, op.asset, op.sender, op.recipient, op.amount, from_frozen=op.from_frozen)
    tx.rules_succeeded(mv)
    tx.emit(
        "forced_transfer",
        actor=op.actor,
        asset=op.asset,
        sender=op.sender,
        recipient=op.recipient,
        amount=op.amount,
        from_frozen=int(op.from_frozen),
        forced=1,
        reason=op.reason,
    )


def recover_keys(tx: TxContext, op: RecoverKeys) -> None:
    actor = tx.actor(op.actor)
    target = tx.account(op.account)
    _require_recovery_agent(tx, op.actor, actor, target)
    check_key_set(op.keys, op.threshold)
    tx.put_account(op.account, replace(target, keys=op.keys, threshold=op.threshold))
    tx.emit(
        "keys_recovered",
        actor=op.actor,
        account=op.account,
        keys=len(op.keys),
        threshold=op.threshold,
        reason=op.reason,
    )


def migrate_account(tx: TxContext, op: MigrateAccount) -> None:
    """Move every position (active and frozen units), the roles, the custodian and the freeze status of `account`
    to the registered, empty `new_account`, then close `account` (closed_to = new_account). Refused while units of
    `account` sit in active holds (their records name the old account)."""
    actor = tx.actor(op.actor)
    old = tx.account(op.account)
    _require_recovery_agent(tx, op.actor, actor, old)
    if op.new_account == op.account:
        raise Refused(codes.SELF_TRANSFER, "new account is the account itself")
    new = tx.account(op.new_account)
    if tx.positions(op.new_account):
        raise Refused(codes.POSITION_NOT_EMPTY, f"{op.new_account} already holds assets")
    assets = tx.positions(op.account)
    for asset_id in assets:
        if tx.balance(asset_id, op.account).held:
            raise Refused(codes.HOLDS_PENDING, f"{op.account} has {asset_id} in active holds")
    for asset_id in assets:
        asset = tx.asset(asset_id)
        bal = tx.balance(asset_id, op.account)
        mv = tx.movement(rules.MIGRATION, asset_id, asset, op.account, op.new_account, bal.total, op.actor)
        tx.check_rules(mv)
        tx.put_balance(asset_id, op.account, bal, Balance(0, 0, 0))
        tx.put_balance(asset_id, op.new_account, Balance(0, 0, 0), bal)
        tx.rules_succeeded(mv)
        tx.emit(
            "account_migrated",
            actor=op.actor,
            account=op.account,
            new_account=op.new_account,
            asset=asset_id,
            available=bal.available,
            frozen=bal.frozen,
            reason=op.reason,
        )
    tx.put_account(
        op.new_account,
        replace(
            new, roles=new.roles | old.roles, custodian=old.custodian or new.custodian, frozen=old.frozen or new.frozen
        ),
    )
    tx.put_account(op.account, replace(old, roles=0, closed_to=op.new_account))
    tx.emit(
        "account_migrated",
        actor=op.actor,
        account=op.account,
        new_account=op.new_account,
        positions=len(assets),
        frozen=int(old.frozen),
        reason=op.reason,
    )
