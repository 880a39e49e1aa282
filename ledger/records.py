"""State record types: the values stored under the state keys of ledger.state_keys (docs/protocol.md, "State").

Every record is a frozen dataclass encoded with the canonical codec; the encoded bytes are what the state root
commits to.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.codec import Bool, Optional, Seq, UInt, record_type, wire
from ledger.operations import ACTIONS, DOCUMENTS, RULES, Document, GovernanceAction, RuleSpec
from ledger.schema import (
    ACCOUNT_ID,
    ADDRESS,
    AGENTS,
    AMOUNT,
    APPROVAL_THRESHOLD,
    ASSET_ID,
    BLS_POP,
    BLS_PUBLIC_KEY,
    CHAIN_ID,
    CHAIN_PARAM,
    DECIMALS,
    EPOCH,
    HASH32,
    HEIGHT,
    HOLD_ID,
    ISIN,
    KEY_SET,
    MAX_POSITIONS,
    MAX_VALIDATORS,
    MAX_VOTERS,
    MEMBER_ID,
    NAME,
    NODE_ID,
    POWER,
    PUBLIC_KEY,
    ROLES_MASK,
    THRESHOLD,
    TIME,
    U64,
)

__all__ = [
    "Account",
    "AssetDefinition",
    "AssetStatus",
    "Balance",
    "ChainMeta",
    "ChainParamsRecord",
    "EpochRecord",
    "GovernanceRecord",
    "Hold",
    "HoldStatus",
    "Member",
    "Positions",
    "ProposalRecord",
    "ProposalStatus",
    "ReplayBucket",
    "ReplayIndex",
    "TxSeen",
    "ValidatorInfo",
]


@dataclass(frozen=True, slots=True)
class ChainMeta:
    """The last applied block: its chain id, height and time."""

    chain_id: str = wire(CHAIN_ID)
    height: int = wire(HEIGHT)
    time: int = wire(TIME)


@dataclass(frozen=True, slots=True)
class Member:
    name: str = wire(NAME)
    registered_height: int = wire(HEIGHT)


@dataclass(frozen=True, slots=True)
class Account:
    member: str = wire(MEMBER_ID)
    keys: tuple[bytes, ...] = wire(KEY_SET)
    threshold: int = wire(THRESHOLD)
    roles: int = wire(ROLES_MASK)
    custodian: str | None = wire(Optional(ACCOUNT_ID))
    frozen: bool = wire(Bool())
    closed_to: str | None = wire(Optional(ACCOUNT_ID))


@dataclass(frozen=True, slots=True)
class AssetDefinition:
    issuer: str = wire(ACCOUNT_ID)
    decimals: int = wire(DECIMALS)
    supply_cap: int = wire(AMOUNT)
    name: str = wire(NAME)
    isin: str = wire(ISIN)
    documents: tuple[Document, ...] = wire(DOCUMENTS)
    agents: tuple[str, ...] = wire(AGENTS)
    rules: tuple[RuleSpec, ...] = wire(RULES)
    defined_height: int = wire(HEIGHT)


@dataclass(frozen=True, slots=True)
class AssetStatus:
    """Supply counters and the pause flag. Outstanding supply = issued - redeemed <= supply_cap."""

    issued: int = wire(U64)
    redeemed: int = wire(U64)
    paused: bool = wire(Bool())

    @property
    def outstanding(self) -> int:
        return self.issued - self.redeemed


@dataclass(frozen=True, slots=True)
class Balance:
    """One account's position in one asset: active (spendable), held (in holds), frozen (by an agent)."""

    available: int = wire(U64)
    held: int = wire(U64)
    frozen: int = wire(U64)

    @property
    def total(self) -> int:
        return self.available + self.held + self.frozen


ZERO_BALANCE = Balance(0, 0, 0)


class HoldStatus:
    """ERC-1996 hold states (Nonexistent is the absence of the record)."""

    ORDERED = 1
    EXECUTED = 2
    RELEASED_BY_NOTARY = 3
    RELEASED_BY_PAYEE = 4
    RELEASED_ON_EXPIRATION = 5


HOLD_STATUS_NAMES: dict[int, str] = {
    HoldStatus.ORDERED: "ordered",
    HoldStatus.EXECUTED: "executed",
    HoldStatus.RELEASED_BY_NOTARY: "released_by_notary",
    HoldStatus.RELEASED_BY_PAYEE: "released_by_payee",
    HoldStatus.RELEASED_ON_EXPIRATION: "released_on_expiration",
}


@dataclass(frozen=True, slots=True)
class Hold:
    asset: str = wire(ASSET_ID)
    sender: str = wire(ACCOUNT_ID)
    recipient: str = wire(ACCOUNT_ID)
    notary: str = wire(ACCOUNT_ID)
    amount: int = wire(AMOUNT)
    expires_at: int = wire(TIME)
    status: int = wire(UInt(8, minimum=1, maximum=5))
    created_height: int = wire(HEIGHT)


@dataclass(frozen=True, slots=True)
class HoldQueue:
    """The hold expiry queue's size: entries 0 .. size - 1 form a binary min-heap (ledger.hold_expiry)."""

    size: int = wire(UInt(64))


@dataclass(frozen=True, slots=True)
class HoldQueueEntry:
    """One hold waiting for its expiry, ordered by (expires_at, hold)."""

    expires_at: int = wire(TIME)
    hold: str = wire(HOLD_ID)


@dataclass(frozen=True, slots=True)
class Positions:
    """The assets in which an account has a non-zero position, sorted (statements and migration enumerate it)."""

    assets: tuple[str, ...] = wire(Seq(ASSET_ID, MAX_POSITIONS, sorted_unique=True))


@dataclass(frozen=True, slots=True)
class TxSeen:
    """A committed transaction id, kept until its expiry height has passed (replay protection)."""

    expiry_height: int = wire(HEIGHT)


# Tx ids per ReplayBucket chunk (8 KiB of ids). A block appends to the last chunk of each expiry height its
# transactions name, so per such height it rewrites at most REPLAY_CHUNK - 1 ids it did not add, i.e. at most that
# many per transaction of its own: the replay set costs a block in proportion to its own transactions, not to how
# many others chose the same expiry height (protocol 2 had 16,384: a value of up to ~550 KB rewritten per height).
REPLAY_CHUNK = 256


@dataclass(frozen=True, slots=True)
class ReplayIndex:
    """How many committed transactions expire at this height; their ids are in ceil(count / REPLAY_CHUNK) chunks."""

    count: int = wire(U64)


@dataclass(frozen=True, slots=True)
class ReplayBucket:
    """One chunk of the ids of committed transactions expiring at a height (all pruned one block later)."""

    tx_ids: tuple[bytes, ...] = wire(Seq(HASH32, REPLAY_CHUNK, min_len=1))


# --------------------------------------------------------------------------------------------------------------
# Governance and epochs


@dataclass(frozen=True, slots=True)
class ValidatorInfo:
    """One validator: its node id, operating member, Ed25519 transport identity, BLS consensus key with its proof
    of possession, network address ("host:port" or "" when it has none fixed) and voting power."""

    node_id: str = wire(NODE_ID)
    member: str = wire(MEMBER_ID)
    identity_key: bytes = wire(PUBLIC_KEY)
    bls_key: bytes = wire(BLS_PUBLIC_KEY)
    bls_pop: bytes = wire(BLS_POP)
    address: str = wire(ADDRESS)
    power: int = wire(POWER)


@dataclass(frozen=True, slots=True)
class ChainParamsRecord:
    """Block limits and consensus timers (names and bounds: ledger.schema.CHAIN_PARAM_BOUNDS)."""

    max_block_txs: int = wire(CHAIN_PARAM)
    max_block_bytes: int = wire(CHAIN_PARAM)
    base_timeout_ms: int = wire(CHAIN_PARAM)
    max_backoff_exponent: int = wire(CHAIN_PARAM)
    max_clock_drift_ms: int = wire(CHAIN_PARAM)
    empty_block_interval_ms: int = wire(CHAIN_PARAM)


CHAIN_PARAMS = record_type(ChainParamsRecord)
VALIDATORS = Seq(record_type(ValidatorInfo), MAX_VALIDATORS)


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """The validator set and chain params that certify blocks at heights >= start_height. Validators are in
    signer-bitmap order: genesis order, an added validator appended, a removal keeps the others' order."""

    epoch: int = wire(EPOCH)
    start_height: int = wire(HEIGHT)
    validators: tuple[ValidatorInfo, ...] = wire(VALIDATORS)
    params: ChainParamsRecord = wire(CHAIN_PARAMS)  # noqa: RUF009 - wire() returns field metadata, no shared value


@dataclass(frozen=True, slots=True)
class GovernanceRecord:
    """Who votes on proposals (member ids, sorted) and how many distinct voters must approve one."""

    voters: tuple[str, ...] = wire(Seq(MEMBER_ID, MAX_VOTERS, sorted_unique=True))
    threshold: int = wire(APPROVAL_THRESHOLD)


class ProposalStatus:
    """Proposal states. An open proposal past its expiry height is expired (derived from the height, not stored)."""

    OPEN = 1
    EXECUTED = 2
    CANCELLED = 3


PROPOSAL_STATUS_NAMES: dict[int, str] = {
    ProposalStatus.OPEN: "open",
    ProposalStatus.EXECUTED: "executed",
    ProposalStatus.CANCELLED: "cancelled",
}


@dataclass(frozen=True, slots=True)
class ProposalRecord:
    """A governance proposal. `approvals` are the distinct voter members that approved (sorted); `closed_height`
    is the height it was executed or cancelled (0 while open). Kept after closing: a proposal id is used once."""

    proposer: str = wire(ACCOUNT_ID)
    actions: tuple[GovernanceAction, ...] = wire(ACTIONS)
    expiry_height: int = wire(HEIGHT)
    created_height: int = wire(HEIGHT)
    approvals: tuple[str, ...] = wire(Seq(MEMBER_ID, MAX_VOTERS, sorted_unique=True))
    status: int = wire(UInt(8, minimum=1, maximum=3))
    closed_height: int = wire(HEIGHT)


RECORD_TYPES = (
    ChainMeta,
    Member,
    Account,
    AssetDefinition,
    AssetStatus,
    Balance,
    Hold,
    HoldQueue,
    HoldQueueEntry,
    Positions,
    TxSeen,
    ReplayIndex,
    ReplayBucket,
    ValidatorInfo,
    ChainParamsRecord,
    EpochRecord,
    GovernanceRecord,
    ProposalRecord,
)
for _cls in RECORD_TYPES:
    record_type(_cls)
