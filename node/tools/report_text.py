"""Values in the human text of reports (bench, chaos, testnet status): never a Python repr.

per_node({"node-0": 25.7, "node-1": 30.1})  -> "node-0 25.7, node-1 30.1"
maybe(None)                                  -> "n/a"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["maybe", "per_node"]


def maybe(value: Any, missing: str = "n/a") -> str:
    """A value, or `missing` for None; booleans as yes/no; a tuple or list (load averages) space separated."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return " ".join(maybe(v, missing) for v in value)
    return str(value)


def per_node(values: Mapping[str, Any], unit: str = "", empty: str = "none") -> str:
    """'name value[unit], ...' in key order, or `empty`."""
    if not values:
        return empty
    return ", ".join(f"{k} {maybe(v)}{unit}" for k, v in sorted(values.items()))
