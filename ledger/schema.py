"""Field types and limits shared by every ledger record (docs/protocol.md, "Field types").

One place for every limit: identifiers, texts, list lengths, amounts. Changing a value here changes the protocol.
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
MAX_NAME_BYTES = 128
MAX_DECIMALS = 18
MAX_POSITIONS = 1024  # different assets one account may hold at once
MAX_TX_LIFETIME = 14_400  # blocks between the including block and a transaction's expiry height
MAX_STATE_VALUE_BYTES = 1 << 20
MAX_AMOUNT = (1 << 64) - 1  # every amount, balance and supply counter is a uint64

# Patterns -----------------------------------------------------------------------------------------------------
MEMBER_PATTERN = r"[a-z0-9][a-z0-9-]{0,31}"
ACCOUNT_PATTERN = r"[a-z0-9][a-z0-9._-]{0,47}@[a-z0-9][a-z0-9-]{0,31}"
ASSET_PATTERN = r"[A-Z0-9][A-Z0-9._-]{0,31}"
HOLD_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
CHAIN_PATTERN = r"[a-z0-9][a-z0-9._-]{0,31}"
RULE_PATTERN = r"[a-z][a-z0-9_.-]{0,63}"
PARAM_KEY_PATTERN = r"[a-z][a-z0-9_]{0,31}"
ISIN_PATTERN = r"([A-Z]{2}[A-Z0-9]{9}[0-9])?"
ROLE_PATTERN = r"admin|issuer|agent|custodian|kyc_provider|auditor|member"
DOC_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}"

# Wire types ---------------------------------------------------------------------------------------------------
MEMBER_ID = Str(32, MEMBER_PATTERN, min_bytes=1)
ACCOUNT_ID = Str(81, ACCOUNT_PATTERN, min_bytes=3)
ASSET_ID = Str(32, ASSET_PATTERN, min_bytes=1)
HOLD_ID = Str(64, HOLD_PATTERN, min_bytes=1)
CHAIN_ID = Str(32, CHAIN_PATTERN, min_bytes=1)
RULE_NAME = Str(64, RULE_PATTERN, min_bytes=1)
PARAM_KEY = Str(32, PARAM_KEY_PATTERN, min_bytes=1)
ISIN = Str(12, ISIN_PATTERN)
ROLE = Str(12, ROLE_PATTERN, min_bytes=5)
DOC_NAME = Str(64, DOC_NAME_PATTERN, min_bytes=1)
TEXT = Str(MAX_TEXT_BYTES)
NAME = Str(MAX_NAME_BYTES)

HASH32 = Bin(32)
PUBLIC_KEY = Bin(32)
SIGNATURE = Bin(64)

U8 = UInt(8)
U16 = UInt(16)
U64 = UInt(64)
AMOUNT = UInt(64, minimum=1)  # every amount an operation moves is positive; zero is refused at decoding
HEIGHT = UInt(64)
TIME = UInt(64)  # seconds since the Unix epoch, from the block header
DECIMALS = UInt(8, maximum=MAX_DECIMALS)
THRESHOLD = UInt(8, minimum=1, maximum=MAX_KEYS)

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
}
ALL_ROLES_MASK = sum(ROLE_BITS.values())
ROLES_MASK = UInt(16, maximum=ALL_ROLES_MASK)


def role_names(mask: int) -> tuple[str, ...]:
    """The role names set in a bitmask, in bit order."""
    return tuple(name for name, bit in ROLE_BITS.items() if mask & bit)


def member_of(account_id: str) -> str:
    """The member part of an account id (`treasury@bank-a` -> `bank-a`)."""
    return account_id.rsplit("@", 1)[1]
