"""Corporate actions: distributions (coupon, dividend) and redemption at maturity — the pure part.

The allocation math, the bookkeeping and the *plan* (the unit movements an action implies) live here; the
PayAction processor (contracts.processors) asks for the next plan, moves the units itself through the ledger's
balance helpers (each movement under its asset's rules), then records the progress with `commit`. Nothing here
moves units.

Distribution (kind 1). Announced with a record height R >= the current height; R is registered as a snapshot
(contracts.snapshots), so every holder's balance at R stays known after later transfers. Payment starts once R is
final (current height > R) and walks the asset's holder index (contracts.holders) in slot order, at most
`max_holders` slots per batch; slots whose first holding came after R mark the end. Holder i receives
floor(units_i(R) * rate_num / rate_den) of the pay asset from the payer. When the walk completes, the units paid
for must equal the supply at R (asserted), and the remainder floor(supply(R) * rate) - sum of payments
(0 <= remainder < number of holders) goes to the remainder account, so exactly floor(supply(R) * rate) leaves the
payer: nothing created, nothing lost. A completed action refuses further batches (ACTION_COMPLETED) and the cursor
only moves forward, so no holder is paid twice.

Redemption at maturity (kind 2). Announced like a distribution, R being the maturity height. After R the engine
refuses voluntary movements of the asset (ASSET_MATURED); only agents' forced transfers and migrations still move
it. Each batch takes the next holders and, for each, burns its current position's active and frozen parts and pays
floor(units * rate) of the pay asset per part, the frozen part's payment credited to the frozen balance. Units in
active holds are promised to a payee and stay until the hold ends (a matured asset's hold can no longer be
executed, so it is released or expires and the units come back); they never hold up anyone else's payment (the
batch's `action_paid` event reports them as `held`). If the walk reaches the end while units remain outstanding
(held units, or units an agent moved to an already-visited account), it starts again; the action completes when
the outstanding supply is zero. Burned units cannot be paid twice. The rounding remainder
floor(units burned * rate) - sum of payments goes to the remainder account at completion.

Who receives a payment (both kinds, `_pay`): what happens to a holder after R never blocks the action.
- A migrated holder (lost-key migration: its account is closed with `closed_to` = the new account, same owner) is
  paid at the end of its migration chain, followed at most MAX_SUCCESSOR_HOPS links. Migration targets must be open
  and an account closes once, so the chain has no cycle and ends at an open account.
- A holder whose chain does not reach an open account within MAX_SUCCESSOR_HOPS links (the ledger has no other
  closure without a successor) is paid into the remainder account, the action's escrow, with the event naming the
  entitled holder (`entitled`, `escrowed` = 1); the paying agent settles it from there. If the remainder account is
  itself unreachable that way, the payment is not made and stays with the payer. Either way no unit is created or
  lost.
- A recipient whose account is frozen is paid into its frozen balance of the pay asset (`into_frozen`): the agent
  neither lifts nor needs to lift the freeze, and the freeze holds the payment too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from contracts import codes as cc
from contracts import holders, snapshots
from contracts.modules.base import DISTRIBUTION, MATURITY_REDEMPTION
from contracts.state import Distribution, MaturityRef, action_key, maturity_key, read, write
from ledger import codes
from ledger.rules import RuleState
from ledger.schema import MAX_AMOUNT
from ledger.state_keys import asset_key

__all__ = [
    "KIND_DISTRIBUTION",
    "KIND_MATURITY",
    "MAX_BATCH",
    "MAX_SUCCESSOR_HOPS",
    "ActionPlan",
    "ActionSpec",
    "PlannedMovement",
    "allocate",
    "announce",
    "commit",
    "get_action",
    "matured",
    "plan_batch",
    "successor",
]

KIND_DISTRIBUTION = 1
KIND_MATURITY = 2
MAX_BATCH = 64  # holder slots per batch: at most 4 movements each, far under the receipt's event limit
MAX_SUCCESSOR_HOPS = 16  # migration links followed to find where a closed holder's payment goes


@dataclass(frozen=True, slots=True)
class PlannedMovement:
    """One unit movement the ledger operation must make. kind DISTRIBUTION: `amount` of `asset` from `sender` to
    `recipient` (credited to its frozen balance when `frozen`); `entitled` names the account the payment is for when
    it is not the recipient (a migrated holder's successor, or the escrow: `escrowed`). kind MATURITY_REDEMPTION:
    burn `amount` of `asset` from `sender`'s active (or, when `frozen`, frozen) balance; recipient is None."""

    kind: str
    asset: str
    sender: str
    recipient: str | None
    amount: int
    frozen: bool = False
    entitled: str | None = None
    escrowed: bool = False


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """The next batch of a corporate action: the movements to make, then `commit(plan)`. `progress` is the action
    record after this batch (opaque to the ledger)."""

    asset: str
    payer: str
    movements: tuple[PlannedMovement, ...]
    done: bool
    progress: Distribution
    held: int = 0  # units left in active holds among the holders this batch visited (maturity)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A corporate action as announced: kind 1 = distribution, 2 = redemption at maturity."""

    kind: int
    asset: str
    pay_asset: str
    payer: str
    remainder_account: str
    record_height: int
    rate_num: int
    rate_den: int


def allocate(units: list[int], supply: int, rate_num: int, rate_den: int) -> tuple[list[int], int, int]:
    """Pro-rata allocation with floor rounding: (per-holder amounts, total due, remainder). Pure.
    `units` must sum to `supply`; the remainder is in [0, number of holders)."""
    assert rate_num > 0 and rate_den > 0
    assert sum(units) == supply, "holders' units do not add up to the supply"
    amounts = [u * rate_num // rate_den for u in units]
    due = supply * rate_num // rate_den
    remainder = due - sum(amounts)
    assert 0 <= remainder <= max(0, len(units) - 1), "rounding remainder out of bounds"
    return amounts, due, remainder


def get_action(state: RuleState, action_id: str) -> Distribution | None:
    return read(state, action_key(action_id), Distribution)


def matured(state: RuleState, asset: str, height: int) -> str | None:
    """The id of the asset's maturity action if its maturity height has passed at `height`, else None."""
    ref = read(state, maturity_key(asset), MaturityRef)
    if ref is None or height <= ref.record_height:
        return None
    return ref.action_id


def record_for(spec: ActionSpec) -> Distribution:
    """The new action record (nothing paid yet) for an announcement."""
    return Distribution(
        spec.kind,
        spec.asset,
        spec.pay_asset,
        spec.payer,
        spec.remainder_account,
        spec.record_height,
        spec.rate_num,
        spec.rate_den,
        0,
        0,
        0,
        False,
    )


def announce(state: RuleState, action_id: str, action: Distribution, height: int) -> tuple[int, str]:
    """Validate and store a new action (nothing paid yet), registering its record height as a snapshot.
    The ledger operation has already checked the actor's authority and that the accounts and assets exist."""
    if get_action(state, action_id) is not None:
        return cc.ACTION_EXISTS, f"corporate action {action_id} already exists"
    if action.rate_num <= 0 or action.rate_den <= 0:
        return cc.INVALID_RATE, f"rate {action.rate_num}/{action.rate_den}"
    if action.asset == action.pay_asset:
        return cc.SAME_ASSET, f"{action.asset} cannot pay in itself"
    asset = state.get(asset_key(action.asset))
    if asset is None or state.get(asset_key(action.pay_asset)) is None:
        return codes.ASSET_NOT_FOUND, f"asset {action.asset} or {action.pay_asset} does not exist"
    if asset.supply_cap * action.rate_num // action.rate_den > MAX_AMOUNT:
        return cc.ACTION_LIMIT, f"the cap of {action.asset} times the rate exceeds 2^64-1"
    if action.kind == KIND_MATURITY and read(state, maturity_key(action.asset), MaturityRef) is not None:
        return cc.ACTION_EXISTS, f"{action.asset} already has a maturity redemption"
    code, msg = snapshots.add_snapshot(state, action.asset, action.record_height, height)
    if code != codes.OK:
        return code, msg
    write(state, action_key(action_id), replace(action, cursor=0, units=0, paid=0, done=False))
    if action.kind == KIND_MATURITY:
        write(state, maturity_key(action.asset), MaturityRef(action_id, action.record_height))
    return codes.OK, ""


def plan_batch(state: RuleState, action_id: str, height: int, max_holders: int) -> ActionPlan | tuple[int, str]:
    """The movements of the next batch of `action_id` in a block at `height`, or a refusal. No writes."""
    action = get_action(state, action_id)
    if action is None:
        return cc.ACTION_NOT_FOUND, f"corporate action {action_id} does not exist"
    if action.done:
        return cc.ACTION_COMPLETED, f"corporate action {action_id} is complete"
    if height <= action.record_height:
        return cc.RECORD_HEIGHT_NOT_REACHED, f"record height {action.record_height} is not final at {height}"
    assert 1 <= max_holders <= MAX_BATCH
    if action.kind == KIND_DISTRIBUTION:
        return _distribution_batch(state, action, height, max_holders)
    return _maturity_batch(state, action, max_holders)


def successor(state: RuleState, account: str) -> str | None:
    """The open account that now holds what `account` held: `account` itself while open, else the end of its
    migration chain (`closed_to` links), or None when that end is not reached within MAX_SUCCESSOR_HOPS links."""
    for _ in range(MAX_SUCCESSOR_HOPS + 1):
        acct = state.account(account)
        assert acct is not None, f"a payment for {account}, which never existed"
        if acct.closed_to is None:
            return account
        account = acct.closed_to
    return None


def _pay(
    state: RuleState, action: Distribution, entitled: str, amount: int, frozen: bool = False
) -> list[PlannedMovement]:
    """The payment of `amount` due to `entitled`, made to whoever may receive it now (module docstring)."""
    if amount == 0:
        return []
    recipient, escrowed = successor(state, entitled), False
    if recipient is None and entitled != action.remainder_account:
        recipient, escrowed = successor(state, action.remainder_account), True
    if recipient is None or recipient == action.payer:
        return []  # nobody can receive it: it stays with the payer
    account = state.account(recipient)
    assert account is not None
    return [
        PlannedMovement(
            DISTRIBUTION,
            action.pay_asset,
            action.payer,
            recipient,
            amount,
            frozen or account.frozen,
            None if recipient == entitled else entitled,
            escrowed,
        )
    ]


def _plan(action: Distribution, moves: list[PlannedMovement]) -> ActionPlan:
    return ActionPlan(action.asset, action.payer, tuple(moves), action.done, action)


def _distribution_batch(state: RuleState, action: Distribution, height: int, max_holders: int) -> ActionPlan:
    head = holders.head(state, action.asset)
    record = action.record_height

    def in_range(index: int) -> str | None:
        if index >= head.slots:
            return None
        slot = holders.slot(state, action.asset, index)
        assert slot is not None
        return slot.account if slot.first_height <= record else None

    moves: list[PlannedMovement] = []
    cursor, units, paid = action.cursor, action.units, action.paid
    for _ in range(max_holders):
        account = in_range(cursor)
        if account is None:
            break
        cursor += 1
        held = snapshots.balance_at(state, action.asset, account, record, height)
        amount = held * action.rate_num // action.rate_den
        units += held
        paid += amount
        moves += _pay(state, action, account, amount)
    done = in_range(cursor) is None
    if done:
        supply = snapshots.supply_at(state, action.asset, record, height)
        assert units == supply, f"holders at {record} hold {units}, supply was {supply}"
        due = supply * action.rate_num // action.rate_den
        assert 0 <= due - paid, "distribution paid more than floor(supply * rate)"
        moves += _pay(state, action, action.remainder_account, due - paid)
        paid = due
    return _plan(replace(action, cursor=cursor, units=units, paid=paid, done=done), moves)


def _maturity_batch(state: RuleState, action: Distribution, max_holders: int) -> ActionPlan:
    head = holders.head(state, action.asset)
    moves: list[PlannedMovement] = []
    cursor, units, paid = action.cursor, action.units, action.paid
    burned = held = 0
    for _ in range(max_holders):
        if cursor >= head.slots:
            break
        slot = holders.slot(state, action.asset, cursor)
        assert slot is not None
        cursor += 1
        bal = state.balance(action.asset, slot.account)
        if bal is None or bal.total == 0:
            continue
        held += bal.held
        for part, frozen in ((bal.available, False), (bal.frozen, True)):
            if part:
                burned += part
                cash = part * action.rate_num // action.rate_den
                paid += cash
                moves.append(PlannedMovement(MATURITY_REDEMPTION, action.asset, slot.account, None, part, frozen))
                moves += _pay(state, action, slot.account, cash, frozen)
    units += burned
    status = state.asset_status(action.asset)
    assert status is not None
    done = False
    if cursor >= head.slots:
        if status.outstanding == burned:
            done = True
            due = units * action.rate_num // action.rate_den
            assert 0 <= due - paid
            moves += _pay(state, action, action.remainder_account, due - paid)
            paid = due
        else:
            cursor = 0  # units held, or moved to visited accounts meanwhile: walk again
    progress = replace(action, cursor=cursor, units=units, paid=paid, done=done)
    return ActionPlan(action.asset, action.payer, tuple(moves), done, progress, held)


def commit(state: RuleState, action_id: str, plan: ActionPlan) -> None:
    """Record a batch's progress once the ledger has made all its movements."""
    current = get_action(state, action_id)
    assert current is not None and not current.done, "committing a batch of a missing or completed action"
    assert isinstance(plan.progress, Distribution)
    write(state, action_key(action_id), plan.progress)
