"""The reason-code table: one stable number per outcome, 0 = allowed (in the spirit of ERC-1404 / ERC-1594).

Every refusal anywhere in the system (decoding, transaction checks, authority, balances, holds, settlement, and the
contracts layer's rules) is reported as a number from this table plus a human message. A number never changes
meaning once published; retired codes stay reserved.

Ranges (each layer defines codes only inside its range; `define` enforces it):

    0            allowed
    1 – 99       wire format / decoding                      (ledger)
    100 – 199    transaction envelope: chain, expiry, replay, signatures, threshold   (ledger)
                 (codes 1 – 199 mean "rejected": the transaction was not executed and its id was not consumed)
    200 – 299    identities, accounts, members, roles, authority                     (ledger)
    300 – 399    assets, balances, freezes, pauses                                    (ledger)
    400 – 499    holds (ERC-1996)                                                     (ledger)
    500 – 599    settlement (DvP / DvD)                                               (ledger)
    600 – 699    governance: proposals, members, validators, epochs, chain params      (ledger)
    700 – 799    this node's store and state tree (LedgerError codes; never in a receipt)    (ledger)
    800 – 999    reserved for future ledger codes
    1000 – 1999  asset rule modules and custom rules                                  (contracts)
    2000 – 2999  corporate actions                                                    (contracts)
    3000 – 3999  node / API                                                           (node)

docs/reason-codes.md lists the table; a test checks that the document and this module agree. Errors carry these
codes: ledger.errors.LedgerError (and Refused, raised by operations to refuse a transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "LAYER_RANGES",
    "REASONS",
    "RETIRED",
    "ReasonCode",
    "define",
    "describe",
    "message_for",
]

LAYER_RANGES: dict[str, tuple[range, ...]] = {
    "ledger": (range(1000),),
    "contracts": (range(1000, 3000),),
    "node": (range(3000, 4000),),
}


@dataclass(frozen=True, slots=True)
class ReasonCode:
    code: int
    name: str
    message: str
    layer: str


REASONS: dict[int, ReasonCode] = {}
_BY_NAME: dict[str, ReasonCode] = {}

# Published codes that are no longer produced: number -> name. Both stay reserved (`define` refuses them), so a
# number never changes meaning. docs/reason-codes.md lists them as retired.
RETIRED: Mapping[int, str] = MappingProxyType({
    # The BLS proof-of-possession check is passed to apply_block with the protocol; it can no longer be missing.
    615: "POP_VERIFIER_MISSING",
})


def define(code: int, name: str, message: str, layer: str = "ledger") -> int:
    """Add a code to the table and return its number. Idempotent for an identical definition; a conflicting
    definition (same number or name, different meaning) or a number outside the layer's range raises ValueError."""
    if layer not in LAYER_RANGES or not any(code in r for r in LAYER_RANGES[layer]):
        raise ValueError(f"code {code} is outside the ranges of layer {layer!r}")
    if not name.isupper() or not name.replace("_", "").isalnum():
        raise ValueError(f"code name {name!r} must be UPPER_SNAKE_CASE")
    if code in RETIRED or name in RETIRED.values():
        raise ValueError(f"code {code} / name {name} is retired and stays reserved")
    entry = ReasonCode(code, name, message, layer)
    old = REASONS.get(code)
    if old is not None and old != entry:
        raise ValueError(f"code {code} is already defined as {old.name}")
    old_name = _BY_NAME.get(name)
    if old_name is not None and old_name != entry:
        raise ValueError(f"code name {name} is already used by code {old_name.code}")
    REASONS[code] = entry
    _BY_NAME[name] = entry
    return code


def message_for(code: int) -> str:
    entry = REASONS.get(code)
    return entry.message if entry is not None else f"unknown reason code {code}"


def describe(code: int) -> ReasonCode | None:
    return REASONS.get(code)


# --------------------------------------------------------------------------------------------------------------
# 0: allowed
OK = define(0, "OK", "allowed")

# 1 – 99: wire format / decoding (DecodeError.code)
MALFORMED = define(1, "MALFORMED", "bytes are not a valid msgpack value")
TRAILING_BYTES = define(2, "TRAILING_BYTES", "extra bytes after the encoded value")
NON_CANONICAL = define(3, "NON_CANONICAL", "encoding is not the canonical form of its value")
WRONG_TYPE = define(4, "WRONG_TYPE", "a field has the wrong msgpack type")
LIMIT_EXCEEDED = define(5, "LIMIT_EXCEEDED", "a size or length limit is exceeded")
UNKNOWN_FIELD = define(6, "UNKNOWN_FIELD", "a record has more fields than its type defines")
MISSING_FIELD = define(7, "MISSING_FIELD", "a record has fewer fields than its type defines")
FLOAT_FORBIDDEN = define(8, "FLOAT_FORBIDDEN", "floating-point numbers are not allowed anywhere")
INVALID_VALUE = define(9, "INVALID_VALUE", "a field value is outside its allowed range or pattern")
UNKNOWN_VARIANT = define(10, "UNKNOWN_VARIANT", "unknown operation or record kind")
UNSUPPORTED_VERSION = define(11, "UNSUPPORTED_VERSION", "unsupported format version")
NOT_SORTED = define(12, "NOT_SORTED", "a set-like list or map is not strictly sorted (or has duplicates)")

# 100 – 199: transaction envelope
WRONG_CHAIN = define(100, "WRONG_CHAIN", "transaction is for another chain")
TX_EXPIRED = define(101, "TX_EXPIRED", "transaction expiry height has passed")
TX_EXPIRY_TOO_FAR = define(102, "TX_EXPIRY_TOO_FAR", "transaction expiry height is beyond the allowed window")
TX_REPLAYED = define(103, "TX_REPLAYED", "transaction was already committed")
BAD_SIGNATURE = define(104, "BAD_SIGNATURE", "a signature does not verify")
SIGNATURE_NOT_FOR_SIGNER = define(
    105, "SIGNATURE_NOT_FOR_SIGNER", "a signature names an account that is not a declared signer"
)
UNKNOWN_SIGNING_KEY = define(106, "UNKNOWN_SIGNING_KEY", "a signature's public key is not in the account's key set")
THRESHOLD_NOT_MET = define(107, "THRESHOLD_NOT_MET", "a signer's key threshold (M of N) is not met")
SIGNER_NOT_FOUND = define(108, "SIGNER_NOT_FOUND", "a signing account does not exist")
TX_TOO_LARGE = define(109, "TX_TOO_LARGE", "transaction exceeds the size limit")
SIGNER_CLOSED = define(110, "SIGNER_CLOSED", "a signing account was closed by a migration")

# 200 – 299: identities, accounts, members, roles, authority
UNAUTHORIZED = define(200, "UNAUTHORIZED", "the acting account is not authorized for this operation")
ACCOUNT_NOT_FOUND = define(201, "ACCOUNT_NOT_FOUND", "account does not exist")
ACCOUNT_EXISTS = define(202, "ACCOUNT_EXISTS", "account already exists")
MEMBER_NOT_FOUND = define(203, "MEMBER_NOT_FOUND", "member institution does not exist")
MEMBER_EXISTS = define(204, "MEMBER_EXISTS", "member institution already exists")
INVALID_KEY_SET = define(205, "INVALID_KEY_SET", "key set threshold must be between 1 and the number of keys")
ROLE_ALREADY_GRANTED = define(206, "ROLE_ALREADY_GRANTED", "account already has this role")
ROLE_NOT_GRANTED = define(207, "ROLE_NOT_GRANTED", "account does not have this role")
ACCOUNT_CLOSED = define(208, "ACCOUNT_CLOSED", "account was closed by a migration to a new account")
NOT_A_CUSTODIAN = define(209, "NOT_A_CUSTODIAN", "the named custodian does not hold the custodian role")
SELF_ADMIN_REVOKE = define(210, "SELF_ADMIN_REVOKE", "an admin cannot revoke its own admin role")
ACTOR_NOT_SIGNER = define(211, "ACTOR_NOT_SIGNER", "the acting account did not sign the transaction")
TX_TOO_COMPLEX = define(212, "TX_TOO_COMPLEX", "the transaction would emit more events than a receipt may hold")
RULE_ENGINE_ERROR = define(213, "RULE_ENGINE_ERROR", "the asset's rule engine failed; the movement is denied")

# 300 – 399: assets, balances, freezes, pauses
ASSET_NOT_FOUND = define(300, "ASSET_NOT_FOUND", "asset does not exist")
ASSET_EXISTS = define(301, "ASSET_EXISTS", "asset already exists")
ASSET_PAUSED = define(302, "ASSET_PAUSED", "asset is paused")
ASSET_NOT_PAUSED = define(303, "ASSET_NOT_PAUSED", "asset is not paused")
SUPPLY_CAP_EXCEEDED = define(304, "SUPPLY_CAP_EXCEEDED", "issuance would exceed the asset's supply cap")
INSUFFICIENT_ACTIVE_BALANCE = define(
    305, "INSUFFICIENT_ACTIVE_BALANCE", "insufficient active (unheld, unfrozen) balance"
)
INSUFFICIENT_FROZEN_BALANCE = define(306, "INSUFFICIENT_FROZEN_BALANCE", "insufficient frozen balance")
SENDER_FROZEN = define(307, "SENDER_FROZEN", "the sending account is frozen")
RECEIVER_FROZEN = define(308, "RECEIVER_FROZEN", "the receiving account is frozen")
ACCOUNT_ALREADY_FROZEN = define(309, "ACCOUNT_ALREADY_FROZEN", "account is already frozen")
ACCOUNT_NOT_FROZEN = define(310, "ACCOUNT_NOT_FROZEN", "account is not frozen")
SELF_TRANSFER = define(311, "SELF_TRANSFER", "sender and receiver are the same account")
POSITION_LIMIT = define(312, "POSITION_LIMIT", "account holds the maximum number of different assets")
AMOUNT_OVERFLOW = define(313, "AMOUNT_OVERFLOW", "amounts add up beyond the 64-bit limit")
ASSET_ALREADY_PAUSED = define(314, "ASSET_ALREADY_PAUSED", "asset is already paused")
NOT_ASSET_CONTROLLER = define(315, "NOT_ASSET_CONTROLLER", "the acting account is not the asset's issuer or agent")
INVALID_ASSET_DEFINITION = define(316, "INVALID_ASSET_DEFINITION", "asset definition is invalid")
POSITION_NOT_EMPTY = define(317, "POSITION_NOT_EMPTY", "the destination account already holds a position")

# 400 – 499: holds (ERC-1996)
HOLD_NOT_FOUND = define(400, "HOLD_NOT_FOUND", "hold does not exist")
HOLD_EXISTS = define(401, "HOLD_EXISTS", "a hold with this id already exists")
HOLD_NOT_ACTIVE = define(402, "HOLD_NOT_ACTIVE", "hold is no longer active (executed, released or expired)")
HOLD_EXPIRED = define(403, "HOLD_EXPIRED", "hold has expired and can no longer be executed")
HOLD_NOT_EXPIRED = define(404, "HOLD_NOT_EXPIRED", "hold has not expired yet")
INVALID_HOLD_EXPIRY = define(405, "INVALID_HOLD_EXPIRY", "hold expiry time must be after the block time")
NOT_HOLD_NOTARY = define(406, "NOT_HOLD_NOTARY", "only the hold's notary may do this")
HOLDS_PENDING = define(407, "HOLDS_PENDING", "account has units in active holds; execute or release them first")

# 500 – 599: settlement
SETTLEMENT_EXPIRED = define(500, "SETTLEMENT_EXPIRED", "settlement expiry height has passed")
LEG_SENDER_NOT_SIGNER = define(501, "LEG_SENDER_NOT_SIGNER", "a settlement leg's sender did not sign")

# 600 – 699: governance
NOT_GOVERNOR = define(600, "NOT_GOVERNOR", "the acting account lacks the governor role")
NOT_VOTER = define(601, "NOT_VOTER", "the acting account's member is not a governance voter")
PROPOSAL_EXISTS = define(602, "PROPOSAL_EXISTS", "a proposal with this id already exists")
PROPOSAL_NOT_FOUND = define(603, "PROPOSAL_NOT_FOUND", "proposal does not exist")
PROPOSAL_EXPIRED = define(604, "PROPOSAL_EXPIRED", "proposal expiry height has passed")
PROPOSAL_NOT_OPEN = define(605, "PROPOSAL_NOT_OPEN", "proposal was already executed or cancelled")
ALREADY_APPROVED = define(606, "ALREADY_APPROVED", "this member already approved the proposal")
INVALID_PROPOSAL_EXPIRY = define(
    607, "INVALID_PROPOSAL_EXPIRY", "proposal expiry height is in the past or beyond the maximum proposal lifetime"
)
NOT_PROPOSER = define(608, "NOT_PROPOSER", "only a governor of the proposing member may cancel the proposal")
GOVERNOR_ROLE_BY_PROPOSAL = define(
    609, "GOVERNOR_ROLE_BY_PROPOSAL", "the governor role is granted and revoked only by a governance proposal"
)
VALIDATOR_NOT_FOUND = define(610, "VALIDATOR_NOT_FOUND", "validator does not exist")
VALIDATOR_EXISTS = define(611, "VALIDATOR_EXISTS", "a validator with this node id already exists")
DUPLICATE_IDENTITY_KEY = define(612, "DUPLICATE_IDENTITY_KEY", "another validator already uses this identity key")
DUPLICATE_BLS_KEY = define(613, "DUPLICATE_BLS_KEY", "another validator already uses this BLS key")
BAD_BLS_POP = define(614, "BAD_BLS_POP", "the BLS proof of possession does not verify")
# 615 is retired (RETIRED).
TOO_FEW_VALIDATORS = define(616, "TOO_FEW_VALIDATORS", "the change would leave fewer than 4 validators")
VALIDATOR_POWER_TOO_HIGH = define(
    617, "VALIDATOR_POWER_TOO_HIGH", "a validator would hold more than (total - 1) / 3 of the voting power"
)
TOO_MANY_VALIDATORS = define(618, "TOO_MANY_VALIDATORS", "the change would exceed the maximum number of validators")
MEMBER_RUNS_VALIDATOR = define(619, "MEMBER_RUNS_VALIDATOR", "the member still runs a validator; remove it first")
INVALID_APPROVAL_THRESHOLD = define(
    620, "INVALID_APPROVAL_THRESHOLD", "approval threshold must be a majority of the voters and at most their number"
)
THRESHOLD_UNREACHABLE = define(
    621, "THRESHOLD_UNREACHABLE", "the change would leave fewer voters than the approval threshold"
)
INVALID_CHAIN_PARAMS = define(622, "INVALID_CHAIN_PARAMS", "chain parameters are outside their bounds")
INVALID_VALIDATOR_ADDRESS = define(
    623, "INVALID_VALIDATOR_ADDRESS", "validator address has a bad port or is used by another validator"
)
VOTER_UNCHANGED = define(624, "VOTER_UNCHANGED", "the member already has (or already lacks) a vote")

# 700 – 799: this node's store and state tree (errors of ledger.store and ledger.smt; never in a receipt)
STORE_INVALID_ARGUMENT = define(700, "STORE_INVALID_ARGUMENT", "a store call with an invalid argument")
STORE_FORMAT_VERSION = define(701, "STORE_FORMAT_VERSION", "the store was written in another format version")
STORE_OPEN_FAILED = define(702, "STORE_OPEN_FAILED", "the store cannot be opened")
STORE_CORRUPT = define(703, "STORE_CORRUPT", "the stored data contradicts itself")
UNKNOWN_HEIGHT = define(704, "UNKNOWN_HEIGHT", "no block is stored at this height")
HEIGHT_PRUNED = define(705, "HEIGHT_PRUNED", "the state tree of this height was pruned")
INVALID_BLOCK_COMMIT = define(706, "INVALID_BLOCK_COMMIT", "a block commit breaks the store's invariants")
INVALID_STATE_PROOF = define(720, "INVALID_STATE_PROOF", "a state proof is malformed or not in canonical form")
MISSING_SMT_NODE = define(721, "MISSING_SMT_NODE", "the state tree lacks a node its root refers to")
INVALID_STATE_CHANGE = define(722, "INVALID_STATE_CHANGE", "a state change breaks the state tree's limits")
SNAPSHOT_INVALID_MANIFEST = define(723, "SNAPSHOT_INVALID_MANIFEST", "a snapshot manifest is malformed or does not combine to the certified state root")
SNAPSHOT_CHUNK_INVALID = define(724, "SNAPSHOT_CHUNK_INVALID", "a snapshot chunk is malformed or does not verify against its manifest")
SNAPSHOT_CHUNK_TOO_LARGE = define(725, "SNAPSHOT_CHUNK_TOO_LARGE", "a snapshot chunk is larger than the limit")
