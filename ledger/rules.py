"""The contracts hook: the one interface through which asset rules see every movement of units.

The ledger calls `RuleEngine.check(movement, state)` before every movement of units (issue, transfer leg,
redemption, hold creation and execution, forced transfer, settlement leg, migration) and
`RuleEngine.on_success(movement, state)` right after the movement is applied. Once every operation of a transaction
has run, `RuleEngine.check_transaction(movements, state)` sees the transaction's movements together with its end
state: rules about the end state (how many holders an asset has, how much one account holds) are decided there, on
the transaction's net effect, so their verdict does not depend on the order of its legs or operations. A refusal is
a (code, message) pair from ledger.codes; (0, "") allows. `validate_rules` is called when an asset's rule list is
set (definition or update) so a bad rule is refused when attached, not at transfer time.

Hard invariants are NOT pluggable: the ledger itself always enforces balances (no negative active, held or frozen
amount), the supply cap and the amount range, whatever the engine says. `CoreRuleEngine` adds the core policy:
a paused asset does not move, and frozen accounts neither send nor receive (forced movements by an agent are exempt
from both; a movement credited to the recipient's frozen balance, `into_frozen`, reaches a frozen recipient: the
freeze keeps holding what arrives). The contracts layer's engine should run CoreRuleEngine.check first and then its
asset rules.

Rule state lives in the ledger state under the contracts namespace (ledger.state_keys.contracts_key), so it is covered by
the state root and dropped with the transaction overlay when a transaction fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ledger import codes
from ledger.operations import RuleSpec
from ledger.records import Account, AssetDefinition, AssetStatus, Balance
from ledger.state import Overlay
from ledger.state_keys import account_key, asset_status_key, balance_key, contracts_key

__all__ = [
    "MOVEMENT_KINDS",
    "CoreRuleEngine",
    "Movement",
    "RuleEngine",
    "RuleState",
]

# What kind of movement a rule is looking at.
ISSUE = "issue"
TRANSFER = "transfer"
REDEEM = "redeem"
HOLD_CREATE = "hold_create"
HOLD_EXECUTE = "hold_execute"
FORCED_TRANSFER = "forced_transfer"
SETTLEMENT_LEG = "settlement_leg"
MIGRATION = "migration"
MOVEMENT_KINDS = (ISSUE, TRANSFER, REDEEM, HOLD_CREATE, HOLD_EXECUTE, FORCED_TRANSFER, SETTLEMENT_LEG, MIGRATION)
FORCED_KINDS = frozenset({FORCED_TRANSFER, MIGRATION})


@dataclass(frozen=True, slots=True)
class Movement:
    """One movement of units of one asset, as a rule sees it.

    sender is None for an issue, recipient is None for a redemption. For HOLD_CREATE nothing changes hands yet:
    units move from the sender's active to its held balance, recipient is the hold's payee. `into_frozen`: the units
    are credited to the recipient's frozen balance (a corporate action paying a frozen holder), so the recipient's
    account freeze does not refuse them."""

    kind: str
    asset_id: str
    asset: AssetDefinition
    sender: str | None
    recipient: str | None
    amount: int
    actor: str
    height: int
    time: int
    tx_id: bytes
    op_index: int
    signers: tuple[str, ...] = ()  # the transaction's signers (signatures and thresholds verified)
    into_frozen: bool = False

    @property
    def forced(self) -> bool:
        return self.kind in FORCED_KINDS


class RuleState:
    """What a rule engine may touch: typed reads of all state, writes only in the contracts namespace.
    `balance_before` reads a balance as it was when the transaction began (the overlay's parent)."""

    __slots__ = ("_overlay",)

    def __init__(self, overlay: Overlay) -> None:
        self._overlay = overlay

    def get(self, key: bytes) -> Any:
        """Any state record (or the bytes of a contracts key), None when absent."""
        return self._overlay.get(key)

    def account(self, account_id: str) -> Account | None:
        return self._overlay.get(account_key(account_id))

    def balance(self, asset_id: str, account_id: str) -> Balance | None:
        return self._overlay.get(balance_key(asset_id, account_id))

    def balance_before(self, asset_id: str, account_id: str) -> Balance | None:
        """The balance before this transaction's writes."""
        return self._overlay.parent_value(balance_key(asset_id, account_id))

    def asset_status(self, asset_id: str) -> AssetStatus | None:
        return self._overlay.get(asset_status_key(asset_id))

    def get_contract(self, suffix: bytes) -> bytes | None:
        return self._overlay.get(contracts_key(suffix))

    def put_contract(self, suffix: bytes, value: bytes | None) -> None:
        """Write (None: delete) a contracts-namespace value. Only meaningful from on_success."""
        assert value is None or type(value) is bytes
        self._overlay.put(contracts_key(suffix), value)


class RuleEngine(Protocol):
    def validate_rules(self, asset_id: str, rules: tuple[RuleSpec, ...]) -> tuple[int, str]: ...

    def check(self, movement: Movement, state: RuleState) -> tuple[int, str]: ...

    def on_success(self, movement: Movement, state: RuleState) -> None: ...

    def check_transaction(self, movements: tuple[Movement, ...], state: RuleState) -> tuple[int, str, int]:
        """After the last operation: (code, message, index of the operation the refusal names); code 0 allows."""
        ...


ALLOWED: tuple[int, str] = (codes.OK, "")


class CoreRuleEngine:
    """The core policy: pause and account freezes. Rule specs are stored but not interpreted."""

    __slots__ = ()

    def validate_rules(self, asset_id: str, rules: tuple[RuleSpec, ...]) -> tuple[int, str]:
        return ALLOWED

    def check(self, movement: Movement, state: RuleState) -> tuple[int, str]:
        if movement.kind in FORCED_KINDS:
            return ALLOWED
        status = state.asset_status(movement.asset_id)
        if status is not None and status.paused:
            return codes.ASSET_PAUSED, f"asset {movement.asset_id} is paused"
        if movement.sender is not None:
            acct = state.account(movement.sender)
            if acct is not None and acct.frozen:
                return codes.SENDER_FROZEN, f"account {movement.sender} is frozen"
        if movement.recipient is not None and movement.kind != HOLD_CREATE and not movement.into_frozen:
            acct = state.account(movement.recipient)
            if acct is not None and acct.frozen:
                return codes.RECEIVER_FROZEN, f"account {movement.recipient} is frozen"
        return ALLOWED

    def on_success(self, movement: Movement, state: RuleState) -> None:
        return None

    def check_transaction(self, movements: tuple[Movement, ...], state: RuleState) -> tuple[int, str, int]:
        return codes.OK, "", 0


DEFAULT_ENGINE = CoreRuleEngine()
