"""Execution contexts: what a block gives the transition (BlockContext) and what an operation processor works with
(TxContext: the transaction overlay, the authorized signers, the protocol — rule engine, operation set, PoP check —,
the events emitted so far, and the typed read/write helpers that keep balances, positions and supply consistent)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger import codes
from ledger.codec import constructor
from ledger.errors import Refused
from ledger.events import Event, make_event
from ledger.records import (
    ZERO_BALANCE,
    Account,
    AssetDefinition,
    AssetStatus,
    Balance,
    Hold,
    Member,
    Positions,
)
from ledger.rules import Movement, RuleEngine, RuleState
from ledger.schema import MAX_AMOUNT, MAX_EVENTS_PER_TX, MAX_POSITIONS, ROLE_BITS
from ledger.state import Overlay
from ledger.state_keys import (
    account_key,
    asset_key,
    asset_status_key,
    balance_key,
    hold_key,
    member_key,
    positions_key,
)

if TYPE_CHECKING:
    from ledger.protocol import Protocol

__all__ = ["BlockContext", "TxContext"]


@dataclass(frozen=True, slots=True)
class BlockContext:
    """The block being executed: its chain, height and time (seconds, from the block header — never a clock)."""

    chain_id: str
    height: int
    time: int


_make_event = constructor(Event)
_make_movement = constructor(Movement)

MACHINE_FAILURES: tuple[type[BaseException], ...] = (MemoryError, RecursionError)
"""Failures that depend on the machine (memory, stack depth), not on the transaction: they are never turned into a
refusal, because another validator with more memory would decide otherwise and the chain would fork. They propagate
and the node stops executing the block instead."""


class TxContext:
    """One transaction being executed on its own overlay."""

    __slots__ = (
        "balance_changes", "block", "engine", "events", "movements", "op_index", "protocol", "rule_state", "signers",
        "state", "tx_id",
    )

    def __init__(
        self, state: Overlay, block: BlockContext, tx_id: bytes, signers: tuple[str, ...], protocol: Protocol
    ) -> None:
        self.state = state
        self.block = block
        self.tx_id = tx_id
        self.signers = signers
        self.protocol = protocol
        self.engine: RuleEngine = protocol.engine
        self.events: list[Event] = []
        self.op_index = 0
        self.rule_state = RuleState(state)
        self.movements: list[Movement] = []  # the movements applied so far, for the end-of-transaction rules
        # Every balance write, as (asset, account, Δavailable, Δheld, Δfrozen): what indexers record as balance
        # movements (ledger.transition.BlockOutcome.balance_changes). Not part of any hash.
        self.balance_changes: list[tuple[str, str, int, int, int]] = []

    # -- events ------------------------------------------------------------------------------------------------

    def emit(self, kind: str, **attrs: Any) -> None:
        assert kind in self.protocol.operations.event_names, f"event kind {kind} is not in the operation set"
        if len(self.events) >= MAX_EVENTS_PER_TX:
            raise Refused(codes.TX_TOO_COMPLEX, f"more than {MAX_EVENTS_PER_TX} events")
        self.events.append(make_event(self.tx_id, self.op_index, kind, attrs))

    def emit_canonical(self, kind: str, attrs: tuple[tuple[str, int | str | bytes], ...]) -> None:
        """`emit` for attributes already in canonical order (sorted by name, none of them None): the same event
        `emit(kind, **dict(attrs))` records, without sorting (hot processors; tests/ledger check the equality)."""
        assert kind in self.protocol.operations.event_names, f"event kind {kind} is not in the operation set"
        if len(self.events) >= MAX_EVENTS_PER_TX:
            raise Refused(codes.TX_TOO_COMPLEX, f"more than {MAX_EVENTS_PER_TX} events")
        self.events.append(_make_event(self.tx_id, self.op_index, kind, attrs))

    # -- identities and authority ------------------------------------------------------------------------------

    def member(self, member_id: str) -> Member | None:
        return self.state.get(member_key(member_id))

    def find_account(self, account_id: str) -> Account | None:
        return self.state.get(account_key(account_id))

    def account(self, account_id: str) -> Account:
        """An open account, or refuse (ACCOUNT_NOT_FOUND / ACCOUNT_CLOSED)."""
        acct = self.state.get(account_key(account_id))
        if acct is None:
            raise Refused(codes.ACCOUNT_NOT_FOUND, f"account {account_id} does not exist")
        if acct.closed_to is not None:
            raise Refused(codes.ACCOUNT_CLOSED, f"account {account_id} was migrated to {acct.closed_to}")
        return acct

    def put_account(self, account_id: str, acct: Account) -> None:
        self.state.put(account_key(account_id), acct)

    def actor(self, actor_id: str) -> Account:
        """The acting account: it must have signed (threshold met) and be open."""
        if actor_id not in self.signers:
            raise Refused(codes.ACTOR_NOT_SIGNER, f"{actor_id} did not sign this transaction")
        return self.account(actor_id)

    @staticmethod
    def has_role(acct: Account, role: str) -> bool:
        return bool(acct.roles & ROLE_BITS[role])

    def require_role(self, actor_id: str, acct: Account, role: str) -> None:
        if not acct.roles & ROLE_BITS[role]:
            raise Refused(codes.UNAUTHORIZED, f"{actor_id} lacks the {role} role")

    # -- assets ------------------------------------------------------------------------------------------------

    def asset(self, asset_id: str) -> AssetDefinition:
        asset = self.state.get(asset_key(asset_id))
        if asset is None:
            raise Refused(codes.ASSET_NOT_FOUND, f"asset {asset_id} does not exist")
        return asset

    def asset_status(self, asset_id: str) -> AssetStatus:
        status = self.state.get(asset_status_key(asset_id))
        assert status is not None, f"asset {asset_id} has no status record"
        return status

    def require_controller(self, actor_id: str, actor: Account, asset_id: str, asset: AssetDefinition) -> None:
        """The actor must be the asset's issuer, or one of its agents holding the agent role."""
        if actor_id == asset.issuer:
            return
        if actor_id in asset.agents and actor.roles & ROLE_BITS["agent"]:
            return
        raise Refused(codes.NOT_ASSET_CONTROLLER, f"{actor_id} is not the issuer or an agent of {asset_id}")

    def require_agent(self, actor_id: str, actor: Account, asset_id: str, asset: AssetDefinition) -> None:
        """The actor must be one of the asset's agents holding the agent role (enforcement operations)."""
        if (actor_id in asset.agents or actor_id == asset.issuer) and actor.roles & ROLE_BITS["agent"]:
            return
        raise Refused(codes.NOT_ASSET_CONTROLLER, f"{actor_id} is not an agent of {asset_id}")

    # -- balances ----------------------------------------------------------------------------------------------

    def balance(self, asset_id: str, account_id: str) -> Balance:
        bal = self.state.get(balance_key(asset_id, account_id))
        return ZERO_BALANCE if bal is None else bal

    def put_balance(
        self, asset_id: str, account_id: str, old: Balance, new: Balance, key: bytes | None = None
    ) -> None:
        """Write a balance (deleting it when it becomes zero) and keep the account's position list in step.
        `key`: balance_key(asset_id, account_id) when the caller has it already."""
        na, nh, nf = new.available, new.held, new.frozen
        assert 0 <= na <= MAX_AMOUNT and 0 <= nh <= MAX_AMOUNT and 0 <= nf <= MAX_AMOUNT, "balance out of range"
        oa, oh, of = old.available, old.held, old.frozen
        was_empty = oa == 0 and oh == 0 and of == 0
        is_empty = na == 0 and nh == 0 and nf == 0
        self.state.put(balance_key(asset_id, account_id) if key is None else key, None if is_empty else new)
        if na != oa or nh != oh or nf != of:
            self.balance_changes.append((asset_id, account_id, na - oa, nh - oh, nf - of))
        if was_empty != is_empty:
            pkey = positions_key(account_id)
            pos: Positions | None = self.state.get(pkey)
            assets = set(pos.assets) if pos is not None else set()
            if is_empty:
                assets.discard(asset_id)
            else:
                if len(assets) >= MAX_POSITIONS:
                    raise Refused(codes.POSITION_LIMIT, f"{account_id} already holds {MAX_POSITIONS} assets")
                assets.add(asset_id)
            self.state.put(pkey, Positions(tuple(sorted(assets))) if assets else None)

    def positions(self, account_id: str) -> tuple[str, ...]:
        pos: Positions | None = self.state.get(positions_key(account_id))
        return () if pos is None else pos.assets

    # -- holds -------------------------------------------------------------------------------------------------

    def hold(self, hold_id: str) -> Hold:
        h = self.state.get(hold_key(hold_id))
        if h is None:
            raise Refused(codes.HOLD_NOT_FOUND, f"hold {hold_id} does not exist")
        return h

    # -- rules -------------------------------------------------------------------------------------------------

    def movement(
        self,
        kind: str,
        asset_id: str,
        asset: AssetDefinition,
        sender: str | None,
        recipient: str | None,
        amount: int,
        actor: str,
        into_frozen: bool = False,
    ) -> Movement:
        b = self.block
        return _make_movement(
            kind,
            asset_id,
            asset,
            sender,
            recipient,
            amount,
            actor,
            b.height,
            b.time,
            self.tx_id,
            self.op_index,
            self.signers if type(self.signers) is tuple else tuple(self.signers),
            into_frozen,
        )

    def check_rules(self, mv: Movement) -> None:
        try:
            code, message = self.engine.check(mv, self.rule_state)
        except (Refused, AssertionError, *MACHINE_FAILURES):
            raise
        except Exception as exc:  # noqa: BLE001 - a failing rule denies (deterministically) instead of halting blocks
            raise Refused(codes.RULE_ENGINE_ERROR, f"rule check failed: {type(exc).__name__}") from None
        if code != codes.OK:
            if code not in codes.REASONS:
                raise Refused(codes.RULE_ENGINE_ERROR, f"rule engine returned unregistered code {code}")
            raise Refused(code, message or codes.message_for(code))

    def rules_succeeded(self, mv: Movement) -> None:
        try:
            self.engine.on_success(mv, self.rule_state)
        except (Refused, AssertionError, *MACHINE_FAILURES):
            raise
        except Exception as exc:  # noqa: BLE001 - as in check_rules; the transaction overlay is dropped
            raise Refused(codes.RULE_ENGINE_ERROR, f"rule update failed: {type(exc).__name__}") from None
        self.movements.append(mv)

    def check_transaction_rules(self) -> None:
        """After the last operation: the rules decided on the transaction's end state (net effect). A refusal names
        the operation the engine points at."""
        if not self.movements:
            return
        try:
            code, message, op_index = self.engine.check_transaction(tuple(self.movements), self.rule_state)
        except (Refused, AssertionError, *MACHINE_FAILURES):
            raise
        except Exception as exc:  # noqa: BLE001 - as in check_rules
            raise Refused(codes.RULE_ENGINE_ERROR, f"rule check failed: {type(exc).__name__}") from None
        if code != codes.OK:
            self.op_index = op_index
            if code not in codes.REASONS:
                raise Refused(codes.RULE_ENGINE_ERROR, f"rule engine returned unregistered code {code}")
            raise Refused(code, message or codes.message_for(code))
