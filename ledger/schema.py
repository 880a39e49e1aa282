"""Field types and limits shared by every ledger record (docs/protocol.md, "Field types").

One place for every protocol limit: identifiers, texts, list lengths, amounts, blocks, receipts, proofs. Changing a
value here changes the protocol. docs/limits.md lists them with every other limit of the system.
"""

from __future__ import annotations

from ledger.codec import Bin, Scalar, Seq, Str, StrMap, UInt

# Limits -------------------------------------------------------------------------------------------------------
MAX_TX_BYTES = 64 * 1024  # a whole signed transaction
MAX_BODY_BYTES = 60 * 1024  # the body inside it
MAX_OPS_PER_TX = 32
MAX_SIGNERS = 8
MAX_SIGNATURES = 32
MAX_KEYS = 16
MAX_TRANSFER_LEGS = 64
MAX_SETTLEMENT_LEGS = 32
MAX_DOCUMENTS = 16
MAX_AGENTS = 16
MAX_RULES = 32
MAX_RULE_PARAMS = 32
MAX_PARAM_BYTES = 1024
MAX_TEXT_BYTES = 256
MAX_ACCOUNT_ID_BYTES = 81  # `name@member`: 48 + 1 + 32 bytes (ACCOUNT_PATTERN)
MAX_NAME_BYTES = 128
MAX_DECIMALS = 18
MAX_POSITIONS = 1024  # different assets one account may hold at once
MAX_TX_LIFETIME = 14_400  # blocks between the including block and a transaction's expiry height
MAX_STATE_KEY_BYTES = 1024  # a key of the authenticated state (the state tree refuses longer ones)
MAX_STATE_VALUE_BYTES = 1 << 20
MAX_AMOUNT = (1 << 64) - 1  # every amount, balance and supply counter is a uint64

# Receipts and events
MAX_EVENT_ATTRS = 24
MAX_EVENT_ATTR_BYTES = 4096  # e.g. the comma-joined rule names of an asset (32 x 64 bytes)
MAX_EVENTS_PER_TX = 4096  # a transaction that would emit more is refused (TX_TOO_COMPLEX)
MAX_HOLD_EXPIRIES_PER_BLOCK = 4096  # holds one block releases on expiry; the next blocks release the rest
MAX_RECEIPT_BYTES = 16 << 20
MAX_EVENT_KINDS = 1024  # event kinds of one operation set

# State proofs (docs/state-proofs.md)
# version, depth, bitmap (32), 256 siblings of 32 bytes, other leaf (2 x 32), msgpack framing: well below 9 KiB.
MAX_PROOF_BYTES = 9 * 1024
# The JSON form: 256 siblings of 66 characters plus the other fields are about 18,000 (pretty-printed: more).
MAX_PROOF_JSON_CHARS = 64 * 1024

# Governance limits
MAX_VALIDATORS = 128  # validators of one epoch (consensus admits up to 1024; a consortium needs far fewer)
MIN_VALIDATORS = 4  # a governance change never leaves fewer (one faulty validator must always be tolerated)
MAX_VALIDATOR_POWER = 1 << 32  # the consensus layer's limit per validator
MAX_VOTERS = 256  # governance voters (member institutions)
MAX_PROPOSAL_ACTIONS = 16
MAX_PROPOSAL_LIFETIME = 1_000_000  # blocks between a proposal's creation and its expiry height
MAX_ADDRESS_BYTES = 128

# Patterns -----------------------------------------------------------------------------------------------------
MEMBER_PATTERN = r"[a-z0-9][a-z0-9-]{0,31}"
ACCOUNT_PATTERN = r"[a-z0-9][a-z0-9._-]{0,47}@[a-z0-9][a-z0-9-]{0,31}"
ASSET_PATTERN = r"[A-Z0-9][A-Z0-9._-]{0,31}"
HOLD_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
CHAIN_PATTERN = r"[a-z0-9][a-z0-9._-]{0,31}"
RULE_PATTERN = r"[a-z][a-z0-9_.-]{0,63}"
PARAM_KEY_PATTERN = r"[a-z][a-z0-9_]{0,31}"
ISIN_PATTERN = r"([A-Z]{2}[A-Z0-9]{9}[0-9])?"
ROLE_PATTERN = r"admin|issuer|agent|custodian|kyc_provider|auditor|member|governor"
DOC_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}"
NODE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
PROPOSAL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
# "host:port" (host: a DNS name, an IPv4 address or a bracketed IPv6 address) or "" (no fixed address).
ADDRESS_PATTERN = r"((\[[0-9A-Fa-f:.]{2,45}\])|[A-Za-z0-9][A-Za-z0-9.-]{0,100}):[0-9]{1,5}|"

# Wire types ---------------------------------------------------------------------------------------------------
MEMBER_ID = Str(32, MEMBER_PATTERN, min_bytes=1)
ACCOUNT_ID = Str(MAX_ACCOUNT_ID_BYTES, ACCOUNT_PATTERN, min_bytes=3)
ASSET_ID = Str(32, ASSET_PATTERN, min_bytes=1)
HOLD_ID = Str(64, HOLD_PATTERN, min_bytes=1)
CHAIN_ID = Str(32, CHAIN_PATTERN, min_bytes=1)
RULE_NAME = Str(64, RULE_PATTERN, min_bytes=1)
PARAM_KEY = Str(32, PARAM_KEY_PATTERN, min_bytes=1)
ISIN = Str(12, ISIN_PATTERN)
ROLE = Str(12, ROLE_PATTERN, min_bytes=5)
DOC_NAME = Str(64, DOC_NAME_PATTERN, min_bytes=1)
NODE_ID = Str(64, NODE_ID_PATTERN, min_bytes=1)
PROPOSAL_ID = Str(64, PROPOSAL_PATTERN, min_bytes=1)
ADDRESS = Str(MAX_ADDRESS_BYTES, ADDRESS_PATTERN)
TEXT = Str(MAX_TEXT_BYTES)
NAME = Str(MAX_NAME_BYTES)

HASH32 = Bin(32)
PUBLIC_KEY = Bin(32)
SIGNATURE = Bin(64)
BLS_PUBLIC_KEY = Bin(48)  # compressed BLS12-381 G1 point
BLS_POP = Bin(96)  # compressed G2 point: the proof of possession of the BLS key

U8 = UInt(8)
U16 = UInt(16)
U64 = UInt(64)
AMOUNT = UInt(64, minimum=1)  # every amount an operation moves is positive; zero is refused at decoding
HEIGHT = UInt(64)
TIME = UInt(64)  # seconds since the Unix epoch, from the block header
DECIMALS = UInt(8, maximum=MAX_DECIMALS)
THRESHOLD = UInt(8, minimum=1, maximum=MAX_KEYS)
EPOCH = UInt(64, maximum=(1 << 63) - 1)
POWER = UInt(64, minimum=1, maximum=MAX_VALIDATOR_POWER)
APPROVAL_THRESHOLD = UInt(16, minimum=1, maximum=MAX_VOTERS)

KEY_SET = Seq(PUBLIC_KEY, MAX_KEYS, min_len=1, sorted_unique=True)
AGENTS = Seq(ACCOUNT_ID, MAX_AGENTS, sorted_unique=True)
RULE_PARAMS = StrMap(PARAM_KEY, Scalar(MAX_PARAM_BYTES), MAX_RULE_PARAMS)

# Roles: bit positions in Account.roles (the wire carries the bitmask; the names are for people and JSON).
ROLE_BITS: dict[str, int] = {
    "admin": 1 << 0,
    "issuer": 1 << 1,
    "agent": 1 << 2,
    "custodian": 1 << 3,
    "kyc_provider": 1 << 4,
    "auditor": 1 << 5,
    "member": 1 << 6,
    "governor": 1 << 7,
}
ALL_ROLES_MASK = sum(ROLE_BITS.values())
ROLES_MASK = UInt(16, maximum=ALL_ROLES_MASK)


def role_names(mask: int) -> tuple[str, ...]:
    """The role names set in a bitmask, in bit order."""
    return tuple(name for name, bit in ROLE_BITS.items() if mask & bit)


def member_of(account_id: str) -> str:
    """The member part of an account id (`treasury@bank-a` -> `bank-a`)."""
    return account_id.rsplit("@", 1)[1]


# Chain parameters ---------------------------------------------------------------------------------------------
# Block limits and consensus timers: fixed at genesis (node.chain.genesis.ChainParams), changed by governance
# (SetChainParams). One table of bounds for both.
MIN_TIMEOUT_MS = 50
MAX_TIMEOUT_MS = 600_000
MAX_BLOCK_TXS = 100_000  # transactions of one block (apply_block and the store refuse more)
MAX_BLOCK_BYTES = 4 << 20

CHAIN_PARAM_NAMES: tuple[str, ...] = (
    "max_block_txs",
    "max_block_bytes",
    "base_timeout_ms",
    "max_backoff_exponent",
    "max_clock_drift_ms",
    "empty_block_interval_ms",
)
CHAIN_PARAM_BOUNDS: dict[str, tuple[int, int]] = {
    "max_block_txs": (1, MAX_BLOCK_TXS),
    "max_block_bytes": (1024, MAX_BLOCK_BYTES),
    "base_timeout_ms": (MIN_TIMEOUT_MS, MAX_TIMEOUT_MS),
    "max_backoff_exponent": (0, 20),
    "max_clock_drift_ms": (100, MAX_TIMEOUT_MS),
    "empty_block_interval_ms": (0, MAX_TIMEOUT_MS - 1),  # and below base_timeout_ms
}
DEFAULT_CHAIN_PARAMS: dict[str, int] = {
    "max_block_txs": 2000,
    "max_block_bytes": 2_000_000,
    "base_timeout_ms": 2000,
    "max_backoff_exponent": 6,
    "max_clock_drift_ms": 10_000,
    "empty_block_interval_ms": 500,
}
CHAIN_PARAM = UInt(32)  # every bound above fits


def chain_params_error(values: dict[str, int]) -> str | None:
    """Why these chain parameters are out of bounds (None: they are fine). `values` names all six."""
    assert set(values) == set(CHAIN_PARAM_NAMES), "chain params are exactly the six named ones"
    for name in CHAIN_PARAM_NAMES:
        lo, hi = CHAIN_PARAM_BOUNDS[name]
        v = values[name]
        if type(v) is not int or not lo <= v <= hi:
            return f"{name} must be in {lo}..{hi}"
    if values["empty_block_interval_ms"] >= values["base_timeout_ms"]:
        return "empty_block_interval_ms must be below base_timeout_ms"
    return None


def default_approval_threshold(voters: int) -> int:
    """floor(2N/3) + 1: the default M of N."""
    return 2 * voters // 3 + 1


def approval_threshold_error(threshold: int, voters: int) -> str | None:
    """A threshold must be a strict majority of the voters and reachable: voters < 2 * threshold, threshold <= voters."""
    if not 1 <= threshold <= voters:
        return f"threshold {threshold} is not in 1..{voters} (the number of voters)"
    if 2 * threshold <= voters:
        return f"threshold {threshold} is not a majority of {voters} voters"
    return None
