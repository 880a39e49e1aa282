"""The contracts layer's reason codes, registered in the one shared table (ledger.codes, layer "contracts").

1000 – 1199  rule attachment and the built-in rule modules
1200 – 1299  identity claims (KYC providers)
1300 – 1399  custom rules in CEL
2000 – 2999  corporate actions (distributions, redemption at maturity, snapshots)

A number never changes meaning once published. docs/contracts.md lists every code with its message; a test checks
that the document and this module agree. The ledger's own codes that rules rely on (pause, freezes, supply cap,
balances) are listed there too, under "Codes enforced by the ledger".
"""

from __future__ import annotations

from ledger.codes import define


def _c(code: int, name: str, message: str) -> int:
    return define(code, name, message, layer="contracts")


# 1000 – 1099: attaching rules
RULE_UNKNOWN = _c(1000, "RULE_UNKNOWN", "unknown rule module name")
RULE_PARAM_INVALID = _c(1001, "RULE_PARAM_INVALID", "a rule parameter is missing, unknown or out of range")
RULE_DUPLICATE = _c(1002, "RULE_DUPLICATE", "this rule module may be attached to an asset only once")

# 1100 – 1199: built-in rule modules
RECIPIENT_NOT_ELIGIBLE = _c(
    1100, "RECIPIENT_NOT_ELIGIBLE", "the recipient has no identity claim from a trusted KYC provider"
)
RECIPIENT_CLAIM_EXPIRED = _c(1101, "RECIPIENT_CLAIM_EXPIRED", "the recipient's identity claim has expired")
SENDER_NOT_ELIGIBLE = _c(1102, "SENDER_NOT_ELIGIBLE", "the sender has no identity claim from a trusted KYC provider")
SENDER_CLAIM_EXPIRED = _c(1103, "SENDER_CLAIM_EXPIRED", "the sender's identity claim has expired")
COUNTRY_NOT_ALLOWED = _c(1110, "COUNTRY_NOT_ALLOWED", "the recipient's country is not on the asset's allow-list")
COUNTRY_BLOCKED = _c(1111, "COUNTRY_BLOCKED", "the recipient's country is on the asset's block-list")
COUNTRY_UNKNOWN = _c(1112, "COUNTRY_UNKNOWN", "the recipient has no valid identity claim stating a country")
MAX_HOLDERS_REACHED = _c(1120, "MAX_HOLDERS_REACHED", "the asset has reached its maximum number of holders")
MAX_HOLDERS_PER_COUNTRY_REACHED = _c(
    1121, "MAX_HOLDERS_PER_COUNTRY_REACHED", "the asset has reached its maximum number of holders in this country"
)
MAX_BALANCE_EXCEEDED = _c(1130, "MAX_BALANCE_EXCEEDED", "the recipient's balance would exceed the per-holder maximum")
AMOUNT_BELOW_MINIMUM = _c(1140, "AMOUNT_BELOW_MINIMUM", "the amount is below the asset's minimum transfer amount")
AMOUNT_ABOVE_MAXIMUM = _c(1141, "AMOUNT_ABOVE_MAXIMUM", "the amount is above the asset's maximum transfer amount")
UNITS_LOCKED = _c(1150, "UNITS_LOCKED", "the units are still in the lock-up period of their issuance lot")
LOCKUP_LOT_LIMIT = _c(1151, "LOCKUP_LOT_LIMIT", "the account has the maximum number of locked issuance lots")
WINDOW_VOLUME_EXCEEDED = _c(
    1160, "WINDOW_VOLUME_EXCEEDED", "the sender's transfer volume in the rolling window would exceed the limit"
)
WINDOW_COUNT_EXCEEDED = _c(
    1161, "WINDOW_COUNT_EXCEEDED", "the sender's number of transfers in the rolling window would exceed the limit"
)
COSIGNATURE_REQUIRED = _c(
    1170, "COSIGNATURE_REQUIRED", "a transfer above the threshold needs the co-signature of an agent of the asset"
)

# 1200 – 1299: identity claims
CLAIM_LIMIT = _c(1200, "CLAIM_LIMIT", "the account has the maximum number of identity claims")
CLAIM_NOT_FOUND = _c(1201, "CLAIM_NOT_FOUND", "the account has no identity claim from this provider")
CLAIM_INVALID = _c(1202, "CLAIM_INVALID", "the identity claim is invalid (country code or expiry)")

# 1300 – 1399: custom rules in CEL
CEL_DENIED = _c(1300, "CEL_DENIED", "a custom rule of the asset denied the movement")
CEL_EVAL_ERROR = _c(1301, "CEL_EVAL_ERROR", "a custom rule failed to evaluate; the movement is denied")
CEL_SYNTAX = _c(1302, "CEL_SYNTAX", "a custom rule expression does not parse")
CEL_TOO_LARGE = _c(1303, "CEL_TOO_LARGE", "a custom rule expression exceeds the size limit")
CEL_FORBIDDEN = _c(
    1304, "CEL_FORBIDDEN", "a custom rule uses a forbidden construct (doubles, time, regex, unknown name or function)"
)

# 2000 – 2999: corporate actions
ACTION_NOT_FOUND = _c(2000, "ACTION_NOT_FOUND", "corporate action does not exist")
ACTION_EXISTS = _c(2001, "ACTION_EXISTS", "a corporate action with this id already exists")
ACTION_COMPLETED = _c(2002, "ACTION_COMPLETED", "the corporate action has already been paid in full")
RECORD_HEIGHT_PASSED = _c(2003, "RECORD_HEIGHT_PASSED", "the record height is before the current height")
RECORD_HEIGHT_NOT_REACHED = _c(
    2004, "RECORD_HEIGHT_NOT_REACHED", "the record height is not final yet (payment starts after it)"
)
INVALID_RATE = _c(2005, "INVALID_RATE", "the rate must be a positive numerator over a positive denominator")
SNAPSHOT_LIMIT = _c(2006, "SNAPSHOT_LIMIT", "the asset has the maximum number of record-height snapshots")
SAME_ASSET = _c(2007, "SAME_ASSET", "the payment asset must differ from the entitled asset")
ACTION_LIMIT = _c(2008, "ACTION_LIMIT", "the corporate action's amounts exceed the 64-bit limit")
ASSET_MATURED = _c(
    2009, "ASSET_MATURED", "the asset has matured: only its redemption and agents' forced transfers move it"
)
