"""ContractsEngine: the contracts layer behind the ledger's RuleEngine hook.

    check(movement, state)       CoreRuleEngine (pause, frozen accounts; not for the issuer-forced redemption at
                                 maturity) first, then maturity (a matured asset
                                 moves only by forced transfer, migration or its redemption), then the asset's
                                 rules in order; the first refusal wins. No writes.
    on_success(movement, state)  the engine's bookkeeping for every asset (holder index and counts, record-height
                                 checkpoints), then each rule's own state update.
    check_transaction(movements, state)
                                 after the last operation, per asset moved (in the order first moved): the rules
                                 decided on the end state (max_holders, max_balance: EndStateRule), with the asset's
                                 rules as they are at the end of the transaction; the first refusal wins.
    validate_rules(asset, rules) compiles the rule list when it is attached; a bad rule is refused then.

Compiled rule lists are cached by their content (the RuleSpec tuple), so a list compiles once per process. The
engine keeps no other state: everything it needs is in the ledger state, so dry-run and execution on any node see
the same thing.
"""

from __future__ import annotations

from contracts import actions, claims, holders, snapshots
from contracts import codes as cc
from contracts.modules.base import (
    ALLOWED,
    END_ALLOWED,
    MATURITY_REDEMPTION,
    RECIPIENT_INCREASES,
    SENDER_DECREASES,
    RuleContext,
)
from contracts.params import RuleConfigError
from contracts.registry import CompiledRules, compile_rules
from ledger import codes
from ledger import rules as r
from ledger.operations import RuleSpec
from ledger.records import AssetDefinition
from ledger.rules import CoreRuleEngine, Movement, RuleEngine, RuleState
from ledger.state_keys import asset_key

__all__ = ["ContractsEngine"]

MAX_COMPILED = 4096
_MATURITY_EXEMPT = frozenset({r.FORCED_TRANSFER, r.MIGRATION, MATURITY_REDEMPTION})


class ContractsEngine:
    __slots__ = ("_compiled", "core")

    def __init__(self, core: RuleEngine | None = None) -> None:
        self.core: RuleEngine = core if core is not None else CoreRuleEngine()
        self._compiled: dict[tuple[RuleSpec, ...], CompiledRules | RuleConfigError] = {}

    def compiled(self, specs: tuple[RuleSpec, ...]) -> CompiledRules | RuleConfigError:
        got = self._compiled.get(specs)
        if got is None:
            try:
                got = compile_rules(specs)
            except RuleConfigError as exc:
                got = exc
            if len(self._compiled) >= MAX_COMPILED:
                self._compiled.clear()
            self._compiled[specs] = got
        return got

    # -- the RuleEngine hook -------------------------------------------------------------------------------------

    def validate_rules(self, asset_id: str, rules: tuple[RuleSpec, ...]) -> tuple[int, str]:
        got = self.compiled(rules)
        if isinstance(got, RuleConfigError):
            return got.code, f"{asset_id}: {got.message}"
        return ALLOWED

    def check(self, movement: Movement, state: RuleState) -> tuple[int, str]:
        if movement.kind != MATURITY_REDEMPTION:  # the issuer's burn at maturity is forced, like forced transfers
            res = self.core.check(movement, state)
            if res[0] != codes.OK:
                return res
        if movement.kind not in _MATURITY_EXEMPT and actions.matured(state, movement.asset_id, movement.height):
            return cc.ASSET_MATURED, f"{movement.asset_id} has matured"
        rules = self.compiled(movement.asset.rules)
        if isinstance(rules, RuleConfigError):
            # Only reachable if the code that validated the stored rules differs from this one: refuse, loudly.
            return rules.code, f"{movement.asset_id}: stored rules no longer compile: {rules.message}"
        if not rules.modules:
            return ALLOWED
        ctx = RuleContext(movement, state, rules.providers)
        for module in rules.modules:
            res = module.check(ctx)
            if res[0] != codes.OK:
                return res
        return ALLOWED

    def check_transaction(self, movements: tuple[Movement, ...], state: RuleState) -> tuple[int, str, int]:
        res = self.core.check_transaction(movements, state)
        if res[0] != codes.OK:
            return res
        by_asset: dict[str, list[Movement]] = {}
        for mv in movements:
            by_asset.setdefault(mv.asset_id, []).append(mv)
        for asset_id, moved in by_asset.items():
            asset: AssetDefinition | None = state.get(asset_key(asset_id))
            assert asset is not None, "units moved of an asset that does not exist"
            rules = self.compiled(asset.rules)
            if isinstance(rules, RuleConfigError):
                return rules.code, f"{asset_id}: stored rules no longer compile: {rules.message}", moved[0].op_index
            for module in rules.end_state:
                res = module.check_end(asset_id, tuple(moved), state)
                if res[0] != codes.OK:
                    return res
        return END_ALLOWED

    def on_success(self, movement: Movement, state: RuleState) -> None:
        self.core.on_success(movement, state)
        rules = self.compiled(movement.asset.rules)
        assert not isinstance(rules, RuleConfigError), "a movement succeeded under rules that do not compile"
        ctx = RuleContext(movement, state, rules.providers)
        self._bookkeeping(ctx)
        for module in rules.modules:
            module.on_success(ctx)

    # -- bookkeeping for every asset -------------------------------------------------------------------------------

    @staticmethod
    def _bookkeeping(ctx: RuleContext) -> None:
        mv = ctx.mv
        asset = mv.asset_id
        if mv.kind == r.MIGRATION and mv.sender is not None and mv.recipient is not None:
            claims.inherit(ctx.state, mv.sender, mv.recipient)
        changes: list[tuple[str, int]] = []
        if mv.sender is not None and mv.kind in SENDER_DECREASES:
            after = ctx.total(mv.sender)
            changes.append((mv.sender, after + mv.amount))
            if after == 0:
                holders.leave(ctx.state, asset, mv.sender)
        if mv.recipient is not None and mv.kind in RECIPIENT_INCREASES:
            after = ctx.total(mv.recipient)
            before = after - mv.amount
            assert before >= 0, "recipient total below the amount it just received"
            changes.append((mv.recipient, before))
            if before == 0:
                holders.join(ctx.state, asset, mv.recipient, ctx.country(mv.recipient), mv.height)
        supply_before: int | None = None
        if mv.kind == r.ISSUE or mv.kind in (r.REDEEM, MATURITY_REDEMPTION):
            status = ctx.state.asset_status(asset)
            assert status is not None
            supply_before = status.outstanding - mv.amount if mv.kind == r.ISSUE else status.outstanding + mv.amount
        snapshots.on_change(ctx.state, asset, mv.height, tuple(changes), supply_before)
