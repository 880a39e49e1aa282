"""Human output of the client commands: a JSON answer as indented `key: value` lines people can read.

Amounts are shown in their asset's units with its decimals ("available: 1000000.00 CASH-T"), Unix times as UTC
dates, booleans as yes/no, null as "none", empty lists as "none". Everything else is printed as the JSON has it.
`--json` prints the answer itself (for scripts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from node.client.amounts import format_amount
from node.client.console import emit
from node.client.errors import LedgerClientError

__all__ = ["AMOUNT_KEYS", "TIME_KEYS", "render", "show"]

AMOUNT_KEYS: Final = frozenset(
    {
        "amount",
        "available",
        "held",
        "frozen",
        "total",
        "outstanding",
        "supply_cap",
        "issued",
        "redeemed",
        "balance",
        "remainder",
        "units",
    }
)
TIME_KEYS: Final = frozenset(
    {"time", "expires_at", "genesis_time", "timestamp", "unlock_at", "block_time", "valid_until", "created_at"}
)
# Unix seconds from 2001 to 2286: an integer in this range under a time key is shown as a date.
_TIME_RANGE: Final = (1_000_000_000, 9_999_999_999)

Decimals = Callable[[str], "int | None"]


def _date(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _scalar(key: str, value: Any, asset: str | None, decimals: Decimals) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key in TIME_KEYS and _TIME_RANGE[0] <= value <= _TIME_RANGE[1]:
        return f"{_date(value)} ({value})"
    if isinstance(value, int) and key in AMOUNT_KEYS and asset is not None:
        d = decimals(asset)
        if d is not None:
            return f"{format_amount(value, d)} {asset}"
        return f"{value} base units of {asset}"
    if isinstance(value, float):
        return f"{value:g}"
    if value == "":
        return "(empty)"
    return str(value)


def _lines(value: Any, indent: str, asset: str | None, decimals: Decimals, key: str = "") -> list[str]:
    if isinstance(value, dict):
        here = value.get("asset") if isinstance(value.get("asset"), str) else value.get("asset_id")
        asset = here if isinstance(here, str) else asset
        out: list[str] = []
        for k in sorted(value):
            v = value[k]
            if isinstance(v, (dict, list)) and v:
                out.append(f"{indent}{k}:")
                out += _lines(v, indent + "  ", asset, decimals, k)
            elif isinstance(v, (dict, list)):
                out.append(f"{indent}{k}: none")
            else:
                out.append(f"{indent}{k}: {_scalar(k, v, asset, decimals)}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict) and item:
                inner = _lines(item, indent + "  ", asset, decimals, key)
                out.append(f"{indent}- {inner[0].lstrip()}")
                out += inner[1:]
            elif isinstance(item, list):
                out.append(f"{indent}-")
                out += _lines(item, indent + "  ", asset, decimals, key)
            else:
                out.append(f"{indent}- {_scalar(key, item, asset, decimals)}")
        return out or [f"{indent}none"]
    return [f"{indent}{_scalar(key, value, asset, decimals)}"]


def render(value: Any, decimals: Decimals | None = None) -> str:
    """`value` (a decoded JSON answer) as readable lines; `decimals(asset)` gives an asset's decimals or None."""
    return "\n".join(_lines(value, "", None, decimals or (lambda _asset: None)))


def show(result: Any, as_json: bool, client: Any = None) -> None:
    """Print a command's answer: the JSON itself with --json, else `render` with the decimals of each asset it
    mentions (asked from `client`, a LedgerClient, once per asset; an asset document supplies its own)."""
    if as_json:
        emit(result)
        return
    known: dict[str, int | None] = {}
    if isinstance(result, dict) and isinstance(result.get("definition"), dict):
        d = result["definition"].get("decimals")
        if isinstance(result.get("asset_id"), str) and isinstance(d, int):
            known[result["asset_id"]] = d

    def decimals(asset: str) -> int | None:
        if asset not in known:
            known[asset] = None
            if client is not None:
                try:
                    known[asset] = int(client.asset(asset)["definition"]["decimals"])
                except (LedgerClientError, KeyError, TypeError, ValueError):
                    pass
        return known[asset]

    print(render(result, decimals), flush=True)
