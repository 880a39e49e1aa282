"""Processors of the contracts layer's operations, and the contracts layer's operation set.

OPERATIONS = CORE_OPERATIONS.extend(...): the ledger's core kinds plus SetClaim, RevokeClaim, AnnounceAction and
PayAction with these processors and the event kinds they emit. A plain value: building it changes nothing in the
ledger (a node passes it wherever transactions are encoded, decoded or executed: node/chain/protocol.py).

Each works on the ledger's transaction context like a core processor: it checks authority, keeps its state in the
contracts namespace (claims, corporate actions, snapshots) through contracts.claims / contracts.actions, and makes
every unit movement of a corporate action itself, each under its asset's rules (movement kinds `distribution` and
`maturity_redemption`), with the ledger's balance helpers so supply and positions stay exact. A payment planned
`frozen` (a frozen holder, or the frozen part of a position at maturity) is credited to the recipient's frozen
balance as an `into_frozen` movement, which the recipient's account freeze does not refuse.
"""

from __future__ import annotations

from dataclasses import replace

from contracts import actions, claims
from contracts.actions import ActionPlan, ActionSpec, PlannedMovement
from contracts.modules.base import DISTRIBUTION, MATURITY_REDEMPTION
from contracts.operations import AnnounceAction, PayAction, RevokeClaim, SetClaim
from contracts.state import Claim
from ledger import codes
from ledger.context import TxContext
from ledger.errors import Refused
from ledger.operation_set import OperationSet
from ledger.ops import CORE_OPERATIONS
from ledger.ops.assets import move_units
from ledger.records import Balance
from ledger.schema import MAX_AMOUNT
from ledger.state_keys import asset_status_key

__all__ = ["EVENT_KINDS", "OPERATIONS", "announce_action", "pay_action", "revoke_claim", "set_claim"]

EVENT_KINDS = (
    "claim_set",
    "claim_revoked",
    "action_announced",
    "action_paid",
    "distribution_paid",
    "maturity_redeemed",
)


def _ok(result: tuple[int, str]) -> None:
    code, message = result
    if code != codes.OK:
        raise Refused(code, message or codes.message_for(code))


def set_claim(tx: TxContext, op: SetClaim) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "kyc_provider")
    tx.account(op.account)
    claim = Claim(op.actor, op.country, op.level, op.expires_at)
    _ok(claims.set_claim(tx.rule_state, op.account, claim, tx.block.time))
    tx.emit(
        "claim_set", actor=op.actor, account=op.account, country=op.country, level=op.level, expires_at=op.expires_at
    )


def revoke_claim(tx: TxContext, op: RevokeClaim) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "kyc_provider")
    tx.account(op.account)
    _ok(claims.revoke_claim(tx.rule_state, op.account, op.actor))
    tx.emit("claim_revoked", actor=op.actor, account=op.account)


def _require_payer(tx: TxContext, payer: str) -> None:
    if payer not in tx.signers:
        raise Refused(codes.ACTOR_NOT_SIGNER, f"the payer {payer} did not sign")


def announce_action(tx: TxContext, op: AnnounceAction) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_controller(op.actor, actor, op.asset, asset)
    tx.asset(op.pay_asset)
    tx.account(op.payer)
    tx.account(op.remainder_account)
    _require_payer(tx, op.payer)
    spec = ActionSpec(
        op.action_kind,
        op.asset,
        op.pay_asset,
        op.payer,
        op.remainder_account,
        op.record_height,
        op.rate_num,
        op.rate_den,
    )
    _ok(actions.announce(tx.rule_state, op.action, actions.record_for(spec), tx.block.height))
    tx.emit(
        "action_announced",
        actor=op.actor,
        action=op.action,
        action_kind=op.action_kind,
        asset=op.asset,
        pay_asset=op.pay_asset,
        payer=op.payer,
        remainder_account=op.remainder_account,
        record_height=op.record_height,
        rate_num=op.rate_num,
        rate_den=op.rate_den,
    )


def _pay(tx: TxContext, actor: str, action: str, m: PlannedMovement) -> None:
    assert m.recipient is not None and m.amount > 0
    asset = tx.asset(m.asset)
    tx.account(m.recipient)
    mv = tx.movement(DISTRIBUTION, m.asset, asset, m.sender, m.recipient, m.amount, actor, into_frozen=m.frozen)
    tx.check_rules(mv)
    if m.frozen:
        src = tx.balance(m.asset, m.sender)
        if src.available < m.amount:
            raise Refused(
                codes.INSUFFICIENT_ACTIVE_BALANCE, f"{m.sender} has {src.available} active {m.asset}, needs {m.amount}"
            )
        tx.put_balance(m.asset, m.sender, src, Balance(src.available - m.amount, src.held, src.frozen))
        dst = tx.balance(m.asset, m.recipient)
        assert dst.frozen + m.amount <= MAX_AMOUNT
        tx.put_balance(m.asset, m.recipient, dst, Balance(dst.available, dst.held, dst.frozen + m.amount))
    else:
        move_units(tx, m.asset, m.sender, m.recipient, m.amount)
    tx.rules_succeeded(mv)
    on_behalf = {} if m.entitled is None else {"entitled": m.entitled, "escrowed": int(m.escrowed)}
    tx.emit(
        "distribution_paid",
        action=action,
        asset=m.asset,
        payer=m.sender,
        recipient=m.recipient,
        amount=m.amount,
        frozen=int(m.frozen),
        **on_behalf,
    )


def _burn(tx: TxContext, actor: str, action: str, m: PlannedMovement) -> None:
    asset = tx.asset(m.asset)
    mv = tx.movement(MATURITY_REDEMPTION, m.asset, asset, m.sender, None, m.amount, actor)
    tx.check_rules(mv)
    src = tx.balance(m.asset, m.sender)
    if m.frozen:
        assert src.frozen >= m.amount, "maturity plan burns more than the frozen balance"
        new = Balance(src.available, src.held, src.frozen - m.amount)
    else:
        assert src.available >= m.amount, "maturity plan burns more than the active balance"
        new = Balance(src.available - m.amount, src.held, src.frozen)
    tx.put_balance(m.asset, m.sender, src, new)
    status = tx.asset_status(m.asset)
    tx.state.put(asset_status_key(m.asset), replace(status, redeemed=status.redeemed + m.amount))
    tx.rules_succeeded(mv)
    tx.emit("maturity_redeemed", action=action, asset=m.asset, sender=m.sender, amount=m.amount, frozen=int(m.frozen))


def pay_action(tx: TxContext, op: PayAction) -> None:
    actor = tx.actor(op.actor)
    plan = actions.plan_batch(tx.rule_state, op.action, tx.block.height, op.max_holders)
    if not isinstance(plan, ActionPlan):
        _ok(plan)
        raise TypeError("plan_batch returned neither a plan nor a refusal")
    tx.require_controller(op.actor, actor, plan.asset, tx.asset(plan.asset))
    _require_payer(tx, plan.payer)
    for m in plan.movements:
        if m.kind == DISTRIBUTION:
            _pay(tx, op.actor, op.action, m)
        else:
            assert m.kind == MATURITY_REDEMPTION
            _burn(tx, op.actor, op.action, m)
    actions.commit(tx.rule_state, op.action, plan)
    held = {"held": plan.held} if plan.held else {}
    tx.emit("action_paid", actor=op.actor, action=op.action, movements=len(plan.movements), done=int(plan.done), **held)


OPERATIONS: OperationSet = CORE_OPERATIONS.extend(
    (
        (SetClaim, set_claim),
        (RevokeClaim, revoke_claim),
        (AnnounceAction, announce_action),
        (PayAction, pay_action),
    ),
    EVENT_KINDS,
)
