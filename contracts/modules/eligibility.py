"""`eligibility`: the recipient (and optionally the sender) must hold a valid identity claim from a trusted KYC
provider, with at least the required investor level.

Parameters: providers = "kyc@prov-a,kyc@prov-b" (trusted, in priority order; required), min_level (default 0),
check_sender (0 or 1, default 0). Applies to receiving movements (issue, transfer, settlement leg, hold execution,
distribution) and to the payee at hold creation; forced transfers and migrations are exempt.
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts.claims import valid_claim
from contracts.modules.base import ALLOWED, RECEIVING, VOLUNTARY_OUT, RuleContext
from contracts.params import Params
from ledger import rules as r
from ledger.operations import RuleSpec


class Eligibility:
    NAME: ClassVar[str] = "eligibility"
    SINGLE: ClassVar[bool] = True
    __slots__ = ("check_sender", "min_level", "providers")

    def __init__(self, providers: tuple[str, ...], min_level: int, check_sender: bool) -> None:
        self.providers = providers
        self.min_level = min_level
        self.check_sender = check_sender

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> Eligibility:
        p = Params(spec)
        out = cls(
            p.accounts("providers", required=True), p.int("min_level", 0, 0, 255), bool(p.int("check_sender", 0, 0, 1))
        )
        p.finish()
        return out

    def _verify(self, ctx: RuleContext, account: str, missing: int, expired_code: int, side: str) -> tuple[int, str]:
        claim, expired = valid_claim(ctx.claims(account), self.providers, ctx.mv.time)
        if claim is None:
            if expired:
                return expired_code, f"{side} {account}: identity claim expired"
            return missing, f"{side} {account} is not verified by {','.join(self.providers)}"
        if claim.level < self.min_level:
            return missing, f"{side} {account}: investor level {claim.level} < {self.min_level}"
        return ALLOWED

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        mv = ctx.mv
        if mv.recipient is not None and (mv.kind in RECEIVING or mv.kind == r.HOLD_CREATE):
            res = self._verify(ctx, mv.recipient, cc.RECIPIENT_NOT_ELIGIBLE, cc.RECIPIENT_CLAIM_EXPIRED, "recipient")
            if res[0]:
                return res
        if self.check_sender and mv.sender is not None and mv.kind in VOLUNTARY_OUT:
            return self._verify(ctx, mv.sender, cc.SENDER_NOT_ELIGIBLE, cc.SENDER_CLAIM_EXPIRED, "sender")
        return ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        return None
