"""Asset definition, issuance, transfer, redemption — and `move_units`, the one place units change hands."""

from __future__ import annotations

from dataclasses import replace

from ledger import codes, rules
from ledger.codec import constructor
from ledger.context import MACHINE_FAILURES, TxContext
from ledger.errors import Refused
from ledger.operations import DefineAsset, Issue, Redeem, RuleSpec, SetAssetAgents, SetAssetRules, Transfer
from ledger.records import ZERO_BALANCE, AssetDefinition, AssetStatus, Balance
from ledger.schema import MAX_AMOUNT, ROLE_BITS
from ledger.state_keys import asset_key, asset_status_key, balance_key

_make_balance = constructor(Balance)


def move_units(
    tx: TxContext, asset_id: str, sender: str, recipient: str, amount: int, from_frozen: bool = False
) -> None:
    """Debit `amount` from the sender's active (or frozen) balance and credit the recipient's active balance."""
    assert amount > 0 and sender != recipient
    get = tx.state.get
    src_key = balance_key(asset_id, sender)
    src = get(src_key) or ZERO_BALANCE
    if from_frozen:
        if src.frozen < amount:
            raise Refused(
                codes.INSUFFICIENT_FROZEN_BALANCE, f"{sender} has {src.frozen} frozen {asset_id}, needs {amount}"
            )
        tx.put_balance(asset_id, sender, src, _make_balance(src.available, src.held, src.frozen - amount), src_key)
    else:
        if src.available < amount:
            raise Refused(
                codes.INSUFFICIENT_ACTIVE_BALANCE, f"{sender} has {src.available} active {asset_id}, needs {amount}"
            )
        tx.put_balance(asset_id, sender, src, _make_balance(src.available - amount, src.held, src.frozen), src_key)
    dst_key = balance_key(asset_id, recipient)
    dst = get(dst_key) or ZERO_BALANCE
    # Cannot overflow: every balance is part of the outstanding supply, which is capped at supply_cap <= 2^64-1.
    assert dst.available + amount <= MAX_AMOUNT
    tx.put_balance(asset_id, recipient, dst, _make_balance(dst.available + amount, dst.held, dst.frozen), dst_key)


def check_agents(tx: TxContext, agents: tuple[str, ...]) -> None:
    for agent in agents:
        acct = tx.account(agent)
        if not acct.roles & ROLE_BITS["agent"]:
            raise Refused(codes.INVALID_ASSET_DEFINITION, f"asset agent {agent} lacks the agent role")


def check_rule_specs(tx: TxContext, asset_id: str, specs: tuple[RuleSpec, ...]) -> None:
    try:
        code, message = tx.engine.validate_rules(asset_id, specs)
    except (Refused, AssertionError, *MACHINE_FAILURES):
        raise
    except Exception as exc:  # noqa: BLE001 - a failing validator refuses the rule list
        raise Refused(codes.RULE_ENGINE_ERROR, f"rule validation failed: {type(exc).__name__}") from None
    if code not in codes.REASONS:
        raise Refused(codes.RULE_ENGINE_ERROR, f"rule engine returned unregistered code {code}")
    if code != codes.OK:
        raise Refused(code, message or codes.message_for(code))


def define_asset(tx: TxContext, op: DefineAsset) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "issuer")
    if tx.state.get(asset_key(op.asset)) is not None:
        raise Refused(codes.ASSET_EXISTS, f"asset {op.asset} already exists")
    check_agents(tx, op.agents)
    check_rule_specs(tx, op.asset, op.rules)
    definition = AssetDefinition(
        op.actor, op.decimals, op.supply_cap, op.name, op.isin, op.documents, op.agents, op.rules, tx.block.height
    )
    tx.state.put(asset_key(op.asset), definition)
    tx.state.put(asset_status_key(op.asset), AssetStatus(0, 0, False))
    tx.emit(
        "asset_defined",
        actor=op.actor,
        issuer=op.actor,
        asset=op.asset,
        decimals=op.decimals,
        supply_cap=op.supply_cap,
        name=op.name,
        isin=op.isin,
        documents=len(op.documents),
        agents=",".join(op.agents),
        rules=",".join(r.name for r in op.rules),
    )


def set_asset_rules(tx: TxContext, op: SetAssetRules) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_controller(op.actor, actor, op.asset, asset)
    check_rule_specs(tx, op.asset, op.rules)
    tx.state.put(asset_key(op.asset), replace(asset, rules=op.rules))
    tx.emit("asset_rules_set", actor=op.actor, asset=op.asset, rules=",".join(r.name for r in op.rules))


def set_asset_agents(tx: TxContext, op: SetAssetAgents) -> None:
    tx.actor(op.actor)
    asset = tx.asset(op.asset)
    if op.actor != asset.issuer:
        raise Refused(codes.NOT_ASSET_CONTROLLER, f"only the issuer {asset.issuer} may set agents of {op.asset}")
    check_agents(tx, op.agents)
    tx.state.put(asset_key(op.asset), replace(asset, agents=op.agents))
    tx.emit("asset_agents_set", actor=op.actor, asset=op.asset, agents=",".join(op.agents))


def issue(tx: TxContext, op: Issue) -> None:
    actor = tx.actor(op.actor)
    asset = tx.asset(op.asset)
    tx.require_controller(op.actor, actor, op.asset, asset)
    tx.account(op.recipient)
    mv = tx.movement(rules.ISSUE, op.asset, asset, None, op.recipient, op.amount, op.actor)
    tx.check_rules(mv)
    status = tx.asset_status(op.asset)
    if status.outstanding + op.amount > asset.supply_cap:
        raise Refused(
            codes.SUPPLY_CAP_EXCEEDED,
            f"outstanding {status.outstanding} + {op.amount} exceeds the cap {asset.supply_cap} of {op.asset}",
        )
    if status.issued + op.amount > MAX_AMOUNT:
        raise Refused(codes.AMOUNT_OVERFLOW, f"total issued of {op.asset} would exceed 2^64-1")
    tx.state.put(asset_status_key(op.asset), replace(status, issued=status.issued + op.amount))
    dst = tx.balance(op.asset, op.recipient)
    tx.put_balance(op.asset, op.recipient, dst, Balance(dst.available + op.amount, dst.held, dst.frozen))
    tx.rules_succeeded(mv)
    tx.emit("issued", actor=op.actor, asset=op.asset, recipient=op.recipient, amount=op.amount)


def transfer(tx: TxContext, op: Transfer) -> None:
    tx.actor(op.actor)
    asset = tx.asset(op.asset)
    for i, leg in enumerate(op.legs):
        if leg.recipient == op.actor:
            raise Refused(codes.SELF_TRANSFER, f"leg {i} sends to its own sender")
        tx.account(leg.recipient)
        mv = tx.movement(rules.TRANSFER, op.asset, asset, op.actor, leg.recipient, leg.amount, op.actor)
        tx.check_rules(mv)
        move_units(tx, op.asset, op.actor, leg.recipient, leg.amount)
        tx.rules_succeeded(mv)
        # emit("transferred", asset=, sender=, recipient=, amount=, leg=), its attributes given in canonical order
        tx.emit_canonical(
            "transferred",
            (("amount", leg.amount), ("asset", op.asset), ("leg", i), ("recipient", leg.recipient), ("sender", op.actor)),
        )


def redeem(tx: TxContext, op: Redeem) -> None:
    tx.actor(op.actor)
    asset = tx.asset(op.asset)
    mv = tx.movement(rules.REDEEM, op.asset, asset, op.actor, None, op.amount, op.actor)
    tx.check_rules(mv)
    src = tx.balance(op.asset, op.actor)
    if src.available < op.amount:
        raise Refused(
            codes.INSUFFICIENT_ACTIVE_BALANCE, f"{op.actor} has {src.available} active {op.asset}, needs {op.amount}"
        )
    status = tx.asset_status(op.asset)
    tx.put_balance(op.asset, op.actor, src, Balance(src.available - op.amount, src.held, src.frozen))
    tx.state.put(asset_status_key(op.asset), replace(status, redeemed=status.redeemed + op.amount))
    tx.rules_succeeded(mv)
    tx.emit("redeemed", actor=op.actor, asset=op.asset, sender=op.actor, amount=op.amount)
