"""Amounts as people write them: decimal text in an asset's units <-> integer base units, exactly.

An asset with `decimals = 2` counts in hundredths: "12.50" is 1250 base units, "12" is 1200, "0.01" is 1. The
conversion is done on the digits (never through a float), and refuses what it cannot represent exactly: more
fraction digits than the asset defines ("12.505" for 2 decimals), signs, exponents, spaces, empty parts.
"""

from __future__ import annotations

import re
from typing import Final

from ledger.schema import MAX_DECIMALS
from node.client.errors import ClientError

__all__ = ["format_amount", "parse_amount"]

# Longest amount text accepted (a u64 has 20 digits; with a point and 18 fraction digits this is ample).
MAX_AMOUNT_CHARS: Final = 64
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def parse_amount(text: str, decimals: int, *, what: str = "amount") -> int:
    """Base units of `text` (a decimal in the asset's units) for an asset with `decimals`. Exact, or ClientError
    `amount_precision` (too many fraction digits) / `bad_input` (not a plain decimal number)."""
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ClientError("bad_input", f"decimals {decimals} out of range 0..{MAX_DECIMALS}")
    match = _AMOUNT.fullmatch(text) if len(text) <= MAX_AMOUNT_CHARS else None
    if match is None:
        raise ClientError("bad_input", f"{what} {text!r} is not a decimal number like 12 or 12.50")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > decimals:
        significant = fraction[decimals:].rstrip("0")
        if significant:
            raise ClientError(
                "amount_precision",
                f"{what} {text!r} has {len(fraction.rstrip('0'))} decimals; the "
                f"asset has {decimals} (smallest unit {format_amount(1, decimals)})",
                {"decimals": decimals},
            )
        fraction = fraction[:decimals]
    return int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")


def format_amount(units: int, decimals: int) -> str:
    """`units` base units as a decimal with exactly `decimals` fraction digits: 1250, 2 -> "12.50"."""
    if decimals <= 0:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{fraction:0{decimals}d}"
