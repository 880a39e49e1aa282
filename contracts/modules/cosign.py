"""`cosign_threshold`: a transfer, settlement leg or hold above `threshold` units needs the co-signature of an agent
of the asset (an account in the asset's agent list, or its issuer, holding the agent role) other than the sender.

Parameter: threshold. The co-signer is looked for among the transaction's signers (`Movement.signers`, whose
signatures and key thresholds the ledger has verified) and the acting account.
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts.modules.base import ALLOWED, RuleContext
from contracts.params import Params
from ledger import rules as r
from ledger.operations import RuleSpec
from ledger.schema import ROLE_BITS

COSIGNED_KINDS = frozenset({r.TRANSFER, r.SETTLEMENT_LEG, r.HOLD_CREATE})


def signers_of(ctx: RuleContext) -> frozenset[str]:
    return frozenset(ctx.mv.signers) | {ctx.mv.actor}


class CosignThreshold:
    NAME: ClassVar[str] = "cosign_threshold"
    SINGLE: ClassVar[bool] = False
    __slots__ = ("threshold",)

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> CosignThreshold:
        p = Params(spec)
        out = cls(p.int("threshold", None, 0))
        p.finish()
        return out

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        mv = ctx.mv
        if mv.kind not in COSIGNED_KINDS or mv.amount <= self.threshold:
            return ALLOWED
        asset = mv.asset
        for signer in sorted(signers_of(ctx)):
            if signer == mv.sender or (signer not in asset.agents and signer != asset.issuer):
                continue
            acct = ctx.state.account(signer)
            if acct is not None and acct.roles & ROLE_BITS["agent"]:
                return ALLOWED
        return cc.COSIGNATURE_REQUIRED, f"{mv.amount} {mv.asset_id} > {self.threshold} needs an agent's co-signature"

    def on_success(self, ctx: RuleContext) -> None:
        return None
