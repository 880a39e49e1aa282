"""Typed reading of a rule's parameters (RuleSpec.params: sorted (name, int | str | bytes) pairs).

Every problem is a `RuleConfigError` with a stable code, raised when the rule is attached (validate_rules), so a
badly configured rule never reaches transfer time. Lists are comma-separated strings ("CN,HK,SG").
"""

from __future__ import annotations

import re

from contracts import codes as cc
from ledger.errors import LedgerError
from ledger.operations import RuleSpec
from ledger.schema import ACCOUNT_PATTERN, MAX_AMOUNT

__all__ = ["Params", "RuleConfigError"]

_ACCOUNT = re.compile(ACCOUNT_PATTERN)
_COUNTRY = re.compile(r"[A-Z]{2}")


class RuleConfigError(LedgerError):
    """A rule that cannot be attached: a contracts reason code (1000 – 2999) and a message naming the rule and
    parameter. The contracts layer's errors are the ledger's shape (ledger.errors.LedgerError)."""


class Params:
    """Reads each parameter at most once; `finish()` refuses parameters the module does not know."""

    __slots__ = ("_left", "_rule", "_values")

    def __init__(self, spec: RuleSpec) -> None:
        self._rule = spec.name
        self._values = dict(spec.params)
        self._left = set(self._values)

    def _bad(self, name: str, why: str) -> RuleConfigError:
        return RuleConfigError(cc.RULE_PARAM_INVALID, f"rule {self._rule}: parameter {name} {why}")

    def _take(self, name: str) -> int | str | bytes | None:
        self._left.discard(name)
        return self._values.get(name)

    def int(self, name: str, default: int | None = None, minimum: int = 0, maximum: int = MAX_AMOUNT) -> int:
        v = self._take(name)
        if v is None:
            if default is None:
                raise self._bad(name, "is required")
            return default
        if type(v) is not int:
            raise self._bad(name, "must be an integer")
        if not minimum <= v <= maximum:
            raise self._bad(name, f"must be in [{minimum}, {maximum}]")
        return v

    def opt_int(self, name: str, minimum: int = 0, maximum: int = MAX_AMOUNT) -> int | None:
        if name not in self._values:
            self._left.discard(name)
            return None
        return self.int(name, None, minimum, maximum)

    def str(self, name: str, default: str | None = None) -> str:
        v = self._take(name)
        if v is None:
            if default is None:
                raise self._bad(name, "is required")
            return default
        if type(v) is not str:
            raise self._bad(name, "must be a string")
        return v

    def list(self, name: str, pattern: re.Pattern[str], required: bool = False) -> tuple[str, ...]:
        """A comma-separated list of distinct items matching `pattern`, in the given order."""
        if name not in self._values:
            self._left.discard(name)
            if required:
                raise self._bad(name, "is required")
            return ()
        text = self.str(name)
        items = tuple(s.strip() for s in text.split(",")) if text else ()
        for item in items:
            if not pattern.fullmatch(item):
                raise self._bad(name, f"has an invalid item {item!r}")
        if len(set(items)) != len(items):
            raise self._bad(name, "lists an item twice")
        if required and not items:
            raise self._bad(name, "must not be empty")
        return items

    def accounts(self, name: str, required: bool = False) -> tuple[str, ...]:
        return self.list(name, _ACCOUNT, required)

    def countries(self, name: str, required: bool = False) -> tuple[str, ...]:
        return self.list(name, _COUNTRY, required)

    def country_limits(self, name: str) -> tuple[tuple[str, int], ...]:
        """ "CN=100,HK=50" -> (("CN", 100), ("HK", 50))."""
        if name not in self._values:
            self._left.discard(name)
            return ()
        text = self.str(name)
        out: dict[str, int] = {}
        for item in text.split(","):
            country, sep, number = item.strip().partition("=")
            if not sep or not _COUNTRY.fullmatch(country) or not number.isdigit() or len(number) > 19:
                raise self._bad(name, f"has an invalid item {item!r} (expected CC=N)")
            if country in out:
                raise self._bad(name, f"lists {country} twice")
            out[country] = int(number)
        return tuple(sorted(out.items()))

    def finish(self) -> None:
        if self._left:
            raise self._bad(",".join(sorted(self._left)), "is not a parameter of this rule")
