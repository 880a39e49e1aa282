"""What every rule module shares: the per-movement context, the movement-kind groups, the module interface.

A module is a class with a `NAME`, a `parse(spec, rule_id)` classmethod that validates its parameters (raising
RuleConfigError when the rule is attached), `check(ctx) -> (code, message)` (no writes) and `on_success(ctx)`
(writes its state through ctx.state, only in the contracts namespace). A rule about the end state of a transaction
(how many holders, how much one account holds) is an `EndStateRule` as well: `check_end(asset_id, movements, state)`
decides once every operation has run, on the net effect, so the verdict does not depend on the order of the legs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from contracts.claims import account_claims, country_for
from contracts.state import Claim
from ledger import codes
from ledger import rules as r
from ledger.operations import RuleSpec
from ledger.records import ZERO_BALANCE, Balance
from ledger.rules import Movement, RuleState
from ledger.schema import ROLE_BITS

__all__ = [
    "ALLOWED",
    "DISTRIBUTION",
    "END_ALLOWED",
    "MATURITY_REDEMPTION",
    "RECEIVING",
    "RECIPIENT_INCREASES",
    "SENDER_DECREASES",
    "VOLUNTARY_OUT",
    "EndStateRule",
    "RuleContext",
    "RuleModule",
]

ALLOWED: tuple[int, str] = (codes.OK, "")
END_ALLOWED: tuple[int, str, int] = (codes.OK, "", 0)

# Movement kinds added by the corporate-action operations (docs/contracts.md, "Ledger operations").
DISTRIBUTION = "distribution"  # cash paid from the payer to a holder (checked like a transfer)
MATURITY_REDEMPTION = "maturity_redemption"  # a holder's units burned at maturity by the issuer (no recipient)

# Kinds in which the recipient receives units under the asset's rules (eligibility, countries, holders, balance).
RECEIVING = frozenset({r.ISSUE, r.TRANSFER, r.SETTLEMENT_LEG, r.HOLD_EXECUTE, DISTRIBUTION})
# Kinds in which the sender voluntarily gives up units (lock-up applies).
VOLUNTARY_OUT = frozenset({r.TRANSFER, r.SETTLEMENT_LEG, r.HOLD_CREATE, r.REDEEM, DISTRIBUTION})
# Kinds that lower the sender's total (active + held + frozen) / raise the recipient's total.
SENDER_DECREASES = frozenset(
    {
        r.TRANSFER,
        r.SETTLEMENT_LEG,
        r.HOLD_EXECUTE,
        r.FORCED_TRANSFER,
        r.MIGRATION,
        r.REDEEM,
        DISTRIBUTION,
        MATURITY_REDEMPTION,
    }
)
RECIPIENT_INCREASES = frozenset(
    {r.ISSUE, r.TRANSFER, r.SETTLEMENT_LEG, r.HOLD_EXECUTE, r.FORCED_TRANSFER, r.MIGRATION, DISTRIBUTION}
)


class RuleContext:
    """One movement under evaluation: the movement, the state, the asset's trusted KYC providers, cached reads."""

    __slots__ = ("_claims", "_providers", "cel_activation", "mv", "providers", "state")

    def __init__(self, mv: Movement, state: RuleState, providers: tuple[str, ...] | None) -> None:
        self.mv = mv
        self.state = state
        self.providers = providers
        self._claims: dict[str, tuple[Claim, ...]] = {}
        self._providers: dict[str, bool] = {}
        self.cel_activation: dict[str, Any] | None = None

    def claims(self, account: str) -> tuple[Claim, ...]:
        """The account's claims whose provider still holds the kyc_provider role (revoking a provider's role
        withdraws every claim it made)."""
        c = self._claims.get(account)
        if c is None:
            c = self._claims[account] = tuple(
                claim for claim in account_claims(self.state, account) if self._provider_active(claim.provider)
            )
        return c

    def _provider_active(self, provider: str) -> bool:
        active = self._providers.get(provider)
        if active is None:
            acct = self.state.account(provider)
            active = self._providers[provider] = bool(
                acct is not None and acct.closed_to is None and acct.roles & ROLE_BITS["kyc_provider"]
            )
        return active

    def country(self, account: str) -> str:
        """The account's country for this asset ('' when it has no valid trusted claim)."""
        return country_for(self.claims(account), self.providers, self.mv.time)

    def balance(self, account: str | None) -> Balance:
        if account is None:
            return ZERO_BALANCE
        b = self.state.balance(self.mv.asset_id, account)
        return ZERO_BALANCE if b is None else b

    def total(self, account: str | None) -> int:
        return self.balance(account).total


class RuleModule(Protocol):
    NAME: ClassVar[str]
    SINGLE: ClassVar[bool]

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> RuleModule: ...

    def check(self, ctx: RuleContext) -> tuple[int, str]: ...

    def on_success(self, ctx: RuleContext) -> None: ...


@runtime_checkable
class EndStateRule(Protocol):
    def check_end(self, asset_id: str, movements: tuple[Movement, ...], state: RuleState) -> tuple[int, str, int]:
        """The verdict on a transaction's end state, given its movements of `asset_id` (in order): (code, message,
        index of the operation to name in the refusal); END_ALLOWED allows."""
        ...
