"""Rule names -> rule modules, and compiling an asset's rule list into its modules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from contracts import codes as cc
from contracts.modules.base import EndStateRule, RuleModule
from contracts.modules.cel_rule import CelRule
from contracts.modules.cosign import CosignThreshold
from contracts.modules.countries import Countries
from contracts.modules.eligibility import Eligibility
from contracts.modules.holders import MaxHolders
from contracts.modules.limits import MaxBalance, TransferAmount
from contracts.modules.lockup import Lockup
from contracts.modules.window import WindowLimit
from contracts.params import RuleConfigError
from ledger.codec import encode, record_type
from ledger.operations import RuleSpec

__all__ = ["MODULES", "CompiledRules", "compile_rules", "rule_id"]

MODULES: dict[str, type] = {
    m.NAME: m
    for m in (
        Eligibility,
        Countries,
        MaxHolders,
        MaxBalance,
        TransferAmount,
        Lockup,
        WindowLimit,
        CosignThreshold,
        CelRule,
    )
}


@dataclass(frozen=True, slots=True)
class CompiledRules:
    modules: tuple[RuleModule, ...]
    providers: tuple[str, ...] | None  # the eligibility rule's trusted KYC providers (None: no eligibility rule)
    end_state: tuple[EndStateRule, ...] = ()  # the modules decided on a transaction's end state, in order


def rule_id(spec: RuleSpec) -> bytes:
    """8 bytes naming a rule instance by its content (keys per-instance state such as rolling windows)."""
    return hashlib.sha256(encode(record_type(RuleSpec), spec)).digest()[:8]


def compile_rules(specs: tuple[RuleSpec, ...]) -> CompiledRules:
    """The modules of an asset's rule list, in order; RuleConfigError names the first bad rule."""
    modules: list[RuleModule] = []
    seen: set[str] = set()
    providers: tuple[str, ...] | None = None
    for i, spec in enumerate(specs):
        cls = MODULES.get(spec.name)
        if cls is None:
            raise RuleConfigError(cc.RULE_UNKNOWN, f"rule {i}: unknown rule {spec.name!r}")
        if cls.SINGLE and spec.name in seen:
            raise RuleConfigError(cc.RULE_DUPLICATE, f"rule {i}: {spec.name} may be attached only once")
        seen.add(spec.name)
        module = cls.parse(spec, rule_id(spec))
        if isinstance(module, Eligibility):
            providers = module.providers
        modules.append(module)
    end_state = tuple(m for m in modules if isinstance(m, EndStateRule))
    return CompiledRules(tuple(modules), providers, end_state)
