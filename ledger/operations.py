"""Operation types: the ordered, atomic steps of a transaction body (docs/protocol.md, "Operations").

Each operation is a frozen dataclass with a stable `KIND` number and encodes as [KIND, actor, fields...].
`actor` is always the first field: the account exercising its authority, which must be one of the transaction's
signers (its key threshold met by the transaction's signatures). Kind numbers never change meaning.

OPERATION_TYPES are the ledger's own kinds (1..63). Kinds 64..127 (EXTENSION_KINDS) are defined by other layers
(the contracts layer: identity claims, corporate actions). Which kinds a chain has is a value, not a registry: an
operation set (ledger.operation_set.OperationSet; CORE_OPERATIONS are the kinds here, `CORE_OPERATIONS.extend(...)`
adds extension kinds and returns a new set), passed to whatever encodes, decodes or executes transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger.codec import Bool, Optional, Seq, Variant, record_type, wire
from ledger.schema import (
    ACCOUNT_ID,
    ADDRESS,
    AGENTS,
    AMOUNT,
    APPROVAL_THRESHOLD,
    ASSET_ID,
    BLS_POP,
    BLS_PUBLIC_KEY,
    CHAIN_PARAM,
    DECIMALS,
    DOC_NAME,
    HASH32,
    HEIGHT,
    HOLD_ID,
    ISIN,
    KEY_SET,
    MAX_DOCUMENTS,
    MAX_PROPOSAL_ACTIONS,
    MAX_RULES,
    MAX_SETTLEMENT_LEGS,
    MAX_TRANSFER_LEGS,
    MEMBER_ID,
    NAME,
    NODE_ID,
    POWER,
    PROPOSAL_ID,
    PUBLIC_KEY,
    ROLE,
    RULE_NAME,
    RULE_PARAMS,
    TEXT,
    THRESHOLD,
    TIME,
)

# --------------------------------------------------------------------------------------------------------------
# Nested records


@dataclass(frozen=True, slots=True)
class Document:
    """A named document attached to an asset (prospectus, term sheet) by its SHA-256."""

    name: str = wire(DOC_NAME)
    sha256: bytes = wire(HASH32)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule of an asset, interpreted by the contracts layer: a rule name and its parameters."""

    name: str = wire(RULE_NAME)
    params: tuple[tuple[str, int | str | bytes], ...] = wire(RULE_PARAMS)


@dataclass(frozen=True, slots=True)
class TransferLeg:
    recipient: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)


@dataclass(frozen=True, slots=True)
class SettlementLeg:
    asset: str = wire(ASSET_ID)
    sender: str = wire(ACCOUNT_ID)
    recipient: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)


DOCUMENTS = Seq(record_type(Document), MAX_DOCUMENTS, sort_key=lambda d: d.name, sorted_unique=True)
RULES = Seq(record_type(RuleSpec), MAX_RULES)
OPT_ACCOUNT = Optional(ACCOUNT_ID)

# --------------------------------------------------------------------------------------------------------------
# Identity


@dataclass(frozen=True, slots=True)
class RegisterMember:
    """Admin registers a member institution."""

    KIND: ClassVar[int] = 1
    actor: str = wire(ACCOUNT_ID)
    member: str = wire(MEMBER_ID)
    name: str = wire(NAME)


@dataclass(frozen=True, slots=True)
class RegisterAccount:
    """Admin, or an account with the member role at the same member, opens an account `name@member`."""

    KIND: ClassVar[int] = 2
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    keys: tuple[bytes, ...] = wire(KEY_SET)
    threshold: int = wire(THRESHOLD)
    custodian: str | None = wire(OPT_ACCOUNT)


@dataclass(frozen=True, slots=True)
class RotateKeys:
    """An account replaces its own key set (signed under its current keys)."""

    KIND: ClassVar[int] = 3
    actor: str = wire(ACCOUNT_ID)
    keys: tuple[bytes, ...] = wire(KEY_SET)
    threshold: int = wire(THRESHOLD)


@dataclass(frozen=True, slots=True)
class GrantRole:
    KIND: ClassVar[int] = 4
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    role: str = wire(ROLE)


@dataclass(frozen=True, slots=True)
class RevokeRole:
    KIND: ClassVar[int] = 5
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    role: str = wire(ROLE)


@dataclass(frozen=True, slots=True)
class SetCustodian:
    """The account itself (or an admin) appoints or removes (nil) its custodian."""

    KIND: ClassVar[int] = 6
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    custodian: str | None = wire(OPT_ACCOUNT)


# --------------------------------------------------------------------------------------------------------------
# Assets


@dataclass(frozen=True, slots=True)
class DefineAsset:
    """An account with the issuer role defines an asset; it becomes the asset's issuer."""

    KIND: ClassVar[int] = 10
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    decimals: int = wire(DECIMALS)
    supply_cap: int = wire(AMOUNT)
    name: str = wire(NAME)
    isin: str = wire(ISIN)
    documents: tuple[Document, ...] = wire(DOCUMENTS)
    agents: tuple[str, ...] = wire(AGENTS)
    rules: tuple[RuleSpec, ...] = wire(RULES)


@dataclass(frozen=True, slots=True)
class SetAssetRules:
    """The issuer or an agent of the asset replaces its rule list."""

    KIND: ClassVar[int] = 11
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    rules: tuple[RuleSpec, ...] = wire(RULES)


@dataclass(frozen=True, slots=True)
class SetAssetAgents:
    """The issuer replaces the asset's agent list."""

    KIND: ClassVar[int] = 12
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    agents: tuple[str, ...] = wire(AGENTS)


@dataclass(frozen=True, slots=True)
class Issue:
    KIND: ClassVar[int] = 13
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    recipient: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)


@dataclass(frozen=True, slots=True)
class Transfer:
    """The actor sends units of one asset to one or more recipients."""

    KIND: ClassVar[int] = 14
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    legs: tuple[TransferLeg, ...] = wire(Seq(record_type(TransferLeg), MAX_TRANSFER_LEGS, min_len=1))


@dataclass(frozen=True, slots=True)
class Redeem:
    """The actor redeems (burns) units from its own active balance."""

    KIND: ClassVar[int] = 15
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    amount: int = wire(AMOUNT)


# --------------------------------------------------------------------------------------------------------------
# Holds (ERC-1996)


@dataclass(frozen=True, slots=True)
class CreateHold:
    """The sender (or its custodian) moves `amount` from active to held, for `notary` to execute to `recipient`
    before `expires_at` (block time, seconds)."""

    KIND: ClassVar[int] = 20
    actor: str = wire(ACCOUNT_ID)
    hold: str = wire(HOLD_ID)
    asset: str = wire(ASSET_ID)
    sender: str = wire(ACCOUNT_ID)
    recipient: str = wire(ACCOUNT_ID)
    notary: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)
    expires_at: int = wire(TIME)


@dataclass(frozen=True, slots=True)
class ExecuteHold:
    KIND: ClassVar[int] = 21
    actor: str = wire(ACCOUNT_ID)
    hold: str = wire(HOLD_ID)


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    KIND: ClassVar[int] = 22
    actor: str = wire(ACCOUNT_ID)
    hold: str = wire(HOLD_ID)


@dataclass(frozen=True, slots=True)
class ExpireHold:
    KIND: ClassVar[int] = 23
    actor: str = wire(ACCOUNT_ID)
    hold: str = wire(HOLD_ID)


# --------------------------------------------------------------------------------------------------------------
# Enforcement


@dataclass(frozen=True, slots=True)
class FreezeAccount:
    KIND: ClassVar[int] = 30
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class UnfreezeAccount:
    KIND: ClassVar[int] = 31
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class FreezeAmount:
    KIND: ClassVar[int] = 32
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    account: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class UnfreezeAmount:
    KIND: ClassVar[int] = 33
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    account: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class PauseAsset:
    KIND: ClassVar[int] = 34
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class UnpauseAsset:
    KIND: ClassVar[int] = 35
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class ForcedTransfer:
    """An agent of the asset moves units without the holder's signature; `from_frozen` takes them from the
    holder's frozen amount instead of its active balance. The event is flagged as forced."""

    KIND: ClassVar[int] = 36
    actor: str = wire(ACCOUNT_ID)
    asset: str = wire(ASSET_ID)
    sender: str = wire(ACCOUNT_ID)
    recipient: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)
    from_frozen: bool = wire(Bool())
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class RecoverKeys:
    """A recovery agent (agent role) replaces a lost key set of an account."""

    KIND: ClassVar[int] = 37
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    keys: tuple[bytes, ...] = wire(KEY_SET)
    threshold: int = wire(THRESHOLD)
    reason: str = wire(TEXT)


@dataclass(frozen=True, slots=True)
class MigrateAccount:
    """A recovery agent moves all positions (active, held, frozen), roles, custodian and freeze status of `account`
    to the registered, empty `new_account` and closes `account`."""

    KIND: ClassVar[int] = 38
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    new_account: str = wire(ACCOUNT_ID)
    reason: str = wire(TEXT)


# --------------------------------------------------------------------------------------------------------------
# Settlement


@dataclass(frozen=True, slots=True)
class Settle:
    """Atomic multi-leg settlement (DvP / DvD): every leg moves or none does. Every leg's sender must sign the
    transaction; every leg runs under its asset's rules; refused after `expiry_height`."""

    KIND: ClassVar[int] = 40
    actor: str = wire(ACCOUNT_ID)
    reference: str = wire(HOLD_ID)
    expiry_height: int = wire(HEIGHT)
    legs: tuple[SettlementLeg, ...] = wire(Seq(record_type(SettlementLeg), MAX_SETTLEMENT_LEGS, min_len=1))


# --------------------------------------------------------------------------------------------------------------
# Governance actions: the steps of a proposal (docs/protocol.md, "Governance and epochs"). A nested variant
# [kind, fields...] with its own kind numbers; they run in order, atomically, when the proposal is approved.


@dataclass(frozen=True, slots=True)
class AddMember:
    """Admit a member institution; with `voter` it also joins the governance voters."""

    KIND: ClassVar[int] = 1
    member: str = wire(MEMBER_ID)
    name: str = wire(NAME)
    voter: bool = wire(Bool())


@dataclass(frozen=True, slots=True)
class RemoveMember:
    """Remove a member institution (and its vote). Refused while it still runs a validator."""

    KIND: ClassVar[int] = 2
    member: str = wire(MEMBER_ID)


@dataclass(frozen=True, slots=True)
class AddValidator:
    """Append a validator to the next epoch's set. `bls_pop` proves possession of `bls_key`."""

    KIND: ClassVar[int] = 3
    node_id: str = wire(NODE_ID)
    member: str = wire(MEMBER_ID)
    identity_key: bytes = wire(PUBLIC_KEY)
    bls_key: bytes = wire(BLS_PUBLIC_KEY)
    bls_pop: bytes = wire(BLS_POP)
    address: str = wire(ADDRESS)
    power: int = wire(POWER)


@dataclass(frozen=True, slots=True)
class RemoveValidator:
    KIND: ClassVar[int] = 4
    node_id: str = wire(NODE_ID)


@dataclass(frozen=True, slots=True)
class RotateValidatorKeys:
    """Replace a validator's transport identity key and BLS key (with its proof of possession)."""

    KIND: ClassVar[int] = 5
    node_id: str = wire(NODE_ID)
    identity_key: bytes = wire(PUBLIC_KEY)
    bls_key: bytes = wire(BLS_PUBLIC_KEY)
    bls_pop: bytes = wire(BLS_POP)


@dataclass(frozen=True, slots=True)
class SetValidatorAddress:
    KIND: ClassVar[int] = 6
    node_id: str = wire(NODE_ID)
    address: str = wire(ADDRESS)


@dataclass(frozen=True, slots=True)
class SetRole:
    """Grant (`granted`) or revoke a role of an account; the only way to grant or revoke the governor role."""

    KIND: ClassVar[int] = 7
    account: str = wire(ACCOUNT_ID)
    role: str = wire(ROLE)
    granted: bool = wire(Bool())


@dataclass(frozen=True, slots=True)
class SetApprovalThreshold:
    KIND: ClassVar[int] = 8
    threshold: int = wire(APPROVAL_THRESHOLD)


@dataclass(frozen=True, slots=True)
class SetChainParams:
    """Replace all six chain parameters (bounds: ledger.schema.CHAIN_PARAM_BOUNDS)."""

    KIND: ClassVar[int] = 9
    max_block_txs: int = wire(CHAIN_PARAM)
    max_block_bytes: int = wire(CHAIN_PARAM)
    base_timeout_ms: int = wire(CHAIN_PARAM)
    max_backoff_exponent: int = wire(CHAIN_PARAM)
    max_clock_drift_ms: int = wire(CHAIN_PARAM)
    empty_block_interval_ms: int = wire(CHAIN_PARAM)


@dataclass(frozen=True, slots=True)
class SetVoter:
    """Give an existing member a vote (`voter`) or take it away."""

    KIND: ClassVar[int] = 10
    member: str = wire(MEMBER_ID)
    voter: bool = wire(Bool())


ACTION_TYPES: tuple[type, ...] = (
    AddMember,
    RemoveMember,
    AddValidator,
    RemoveValidator,
    RotateValidatorKeys,
    SetValidatorAddress,
    SetRole,
    SetApprovalThreshold,
    SetChainParams,
    SetVoter,
)
GovernanceAction = (
    AddMember
    | RemoveMember
    | AddValidator
    | RemoveValidator
    | RotateValidatorKeys
    | SetValidatorAddress
    | SetRole
    | SetApprovalThreshold
    | SetChainParams
    | SetVoter
)
ACTION = Variant("governance action", list(ACTION_TYPES))
ACTIONS = Seq(ACTION, MAX_PROPOSAL_ACTIONS, min_len=1)


@dataclass(frozen=True, slots=True)
class Propose:
    """A governor (an account with the governor role whose member votes) proposes actions; its member's approval
    is counted at once. Executes as soon as the approvals reach the threshold, before `expiry_height`."""

    KIND: ClassVar[int] = 50
    actor: str = wire(ACCOUNT_ID)
    proposal_id: str = wire(PROPOSAL_ID)
    actions: tuple[GovernanceAction, ...] = wire(ACTIONS)
    expiry_height: int = wire(HEIGHT)


@dataclass(frozen=True, slots=True)
class Approve:
    """A governor approves an open proposal on behalf of its member; the approval that reaches the threshold
    executes the proposal's actions in the same transaction."""

    KIND: ClassVar[int] = 51
    actor: str = wire(ACCOUNT_ID)
    proposal_id: str = wire(PROPOSAL_ID)


@dataclass(frozen=True, slots=True)
class CancelProposal:
    """A governor of the proposing member withdraws an open proposal."""

    KIND: ClassVar[int] = 52
    actor: str = wire(ACCOUNT_ID)
    proposal_id: str = wire(PROPOSAL_ID)


OPERATION_TYPES: tuple[type, ...] = (
    RegisterMember,
    RegisterAccount,
    RotateKeys,
    GrantRole,
    RevokeRole,
    SetCustodian,
    DefineAsset,
    SetAssetRules,
    SetAssetAgents,
    Issue,
    Transfer,
    Redeem,
    CreateHold,
    ExecuteHold,
    ReleaseHold,
    ExpireHold,
    FreezeAccount,
    UnfreezeAccount,
    FreezeAmount,
    UnfreezeAmount,
    PauseAsset,
    UnpauseAsset,
    ForcedTransfer,
    RecoverKeys,
    MigrateAccount,
    Settle,
    Propose,
    Approve,
    CancelProposal,
)

Operation = (
    RegisterMember
    | RegisterAccount
    | RotateKeys
    | GrantRole
    | RevokeRole
    | SetCustodian
    | DefineAsset
    | SetAssetRules
    | SetAssetAgents
    | Issue
    | Transfer
    | Redeem
    | CreateHold
    | ExecuteHold
    | ReleaseHold
    | ExpireHold
    | FreezeAccount
    | UnfreezeAccount
    | FreezeAmount
    | UnfreezeAmount
    | PauseAsset
    | UnpauseAsset
    | ForcedTransfer
    | RecoverKeys
    | MigrateAccount
    | Settle
    | Propose
    | Approve
    | CancelProposal
)

# Kinds 64..127 are for operations defined outside the ledger core (the contracts layer: KYC claims, corporate
# actions, ...): ledger.operation_set.OperationSet.extend adds them to a set.
EXTENSION_KINDS = range(64, 128)
