"""The story `ledger demo` tells: how a step is played and printed, for every scenario module of this package.

    story = Story(urls, keys, out=sys.stdout, lockup_seconds=12)
    await story.attempt(actor, what, ops, signers, expect=codes.OK)    sign, submit, wait, print, compare
    await story.dry_run(what, ops, signers, expect)                    "can this happen?" without submitting
    await story.table(title, accounts, assets)                         a balance table
    await story.supply_check(assets)                                   issued - redeemed == sum over every holder

Every step goes through the HTTP API with the Python SDK (node.client): transactions are built, signed by the
acting institution's key, submitted through the nodes in turn and waited for; reads are signed by the auditor
(`admin@m0`). Each step prints who does what, the ledger's answer (reason code, name, message, detail, block) and
whether it is the answer the scenario expects ("ok", "refused as expected", or "!! UNEXPECTED"); `Story.result` counts them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from ledger import codes
from ledger.operations import Operation
from node.client import AccountKey, ApiError, AsyncLedgerClient, builder
from node.errors import NodeError
from node.tools.demo.cast import ADMIN, LABELS

MAX_HOLDER_PAGES: Final = 1000


class DemoError(NodeError):
    """The demo could not run (no network, the API unreachable): a code and a message."""


@dataclass(slots=True)
class DemoResult:
    steps: int = 0
    as_expected: int = 0
    surprises: list[str] = field(default_factory=list)
    supply_checks: list[str] = field(default_factory=list)
    supply_ok: bool = True
    not_shown: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.surprises and self.supply_ok


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    detail: str
    stage: str  # "committed" (a receipt) or "refused at admission"
    events: tuple[dict[str, Any], ...] = ()


def code_text(code: int) -> str:
    info = codes.describe(code)
    if info is None:
        return str(code)
    return f"{code} {info.name} ({info.message})"


def fmt(amount: int, decimals: int = 2) -> str:
    """Integer units as a decimal string: 30000 with 2 decimals -> '300.00'."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole:,}.{frac:0{decimals}d}" if decimals else f"{sign}{whole:,}"


def units(text: str, decimals: int = 2) -> int:
    """'300.00' -> 30000 (the asset's smallest unit; integers only)."""
    whole, _, frac = text.partition(".")
    assert len(frac) <= decimals
    return int(whole.replace(",", "")) * 10**decimals + int(frac.ljust(decimals, "0") or "0")


def verdict_mark(code: int, expect: int) -> str:
    """How a step's answer reads: 'ok' for an expected success, 'refused as expected' for an expected refusal,
    'UNEXPECTED' (the demo fails) otherwise."""
    if code != expect:
        return "!! UNEXPECTED - "
    return "ok - " if code == codes.OK else "refused as expected - "


# Amounts and times inside a ledger detail message (which speaks base units and Unix seconds), as people read them:
# every asset of the demo has 2 decimals.
_AMOUNT_AFTER = re.compile(r"\b(\d+)(?= (?:active |locked )?(?:[A-Z][A-Z0-9._-]*-[A-Z0-9]+\b|movable\b|requested\b))")
_AMOUNT_BEFORE = re.compile(r"(?<=, needs )(\d+)\b(?! signature)|(?<=\bholds )(\d+)(?= of )|(?<=\boutstanding )(\d+)|(?<= \+ )(\d+)|(?<=\bthe cap )(\d+)")
_UNIX_TIME = re.compile(r"(?<=\bat )(\d{10})\b")


def humanize_detail(detail: str) -> str:
    """'has 670000 active BOND-A' (or 'holds 670000 of BOND-A') -> 'has 6,700.00 active BOND-A'; 'unlock at
    1796223364' -> a UTC date."""
    detail = _UNIX_TIME.sub(lambda m: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(m.group(1)))), detail)
    detail = _AMOUNT_AFTER.sub(lambda m: fmt(int(m.group(1))), detail)
    return _AMOUNT_BEFORE.sub(lambda m: fmt(int(m.group(0))), detail)


def show_time(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


AMOUNT_ATTRS: Final = frozenset({"amount", "units", "remainder"})
TIME_ATTRS: Final = frozenset({"expires_at", "time", "unlock_at", "valid_until"})
BOOL_ATTRS: Final = frozenset({"forced", "from_frozen"})


def describe_event(ev: dict[str, Any]) -> str:
    """'kind: attr=value, ...' with amounts as decimals (every asset of the demo has 2 decimals)."""
    attrs = ev.get("attrs", {}) if isinstance(ev.get("attrs"), dict) else {}
    parts = []
    for k, v in attrs.items():
        if k in AMOUNT_ATTRS and isinstance(v, int):
            parts.append(f"{k}={fmt(v)}")
        elif k in TIME_ATTRS and isinstance(v, int):
            parts.append(f"{k}={show_time(v)}")
        elif isinstance(v, bool) or (k in BOOL_ATTRS and v in (0, 1)):
            parts.append(f"{k}={'yes' if v else 'no'}")
        else:
            parts.append(f"{k}={v}")
    return f"{ev.get('kind', '?')}: " + ", ".join(parts)


class Story:
    """Plays the scenarios; `client` talks to one node (reads signed by the auditor), submissions rotate nodes."""

    def __init__(self, urls: Sequence[str], keys: dict[str, AccountKey], out: IO[str] | None,
                 lockup_seconds: int) -> None:
        assert urls
        self.urls = list(urls)
        self.keys = keys
        self.out = out
        self.lockup_seconds = lockup_seconds
        self.result = DemoResult()
        self.reader = AsyncLedgerClient(urls[0], keys[ADMIN])
        self.writers = [AsyncLedgerClient(u) for u in urls]
        self._turn = 0

    async def close(self) -> None:
        await self.reader.close()
        for w in self.writers:
            await w.close()

    # -------------------------------------------------------------------------------------------- printing

    def say(self, text: str = "") -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    def who(self, account: str) -> str:
        label = LABELS.get(account)
        return f"{label} ({account})" if label else account

    # ----------------------------------------------------------------------------------------- the ledger

    async def attempt(self, actor_text: str, what: str, ops: Sequence[Operation], signers: Sequence[str],
                      expect: int, *, declared: Sequence[str] | None = None) -> Outcome:
        """Sign `ops` with the keys of `signers` (declared signers default to the operations' required ones), submit
        through the next node, wait for the receipt, print the answer and compare it with `expect`."""
        writer = self.writers[self._turn % len(self.writers)]
        self._turn += 1
        self.say(f"  > {actor_text}: {what}")
        try:
            body = await writer.body(list(ops), signers=declared)
            tx = builder.sign(body, [self.keys[s] for s in signers])
            result = await writer.submit(tx, wait="commit", timeout=30, check=False)
            receipt = result.receipt or {}
            outcome = Outcome(int(receipt.get("code", -1)), str(receipt.get("detail", "")), "committed",
                              tuple(receipt.get("events", ())))
            where = f"in block {receipt.get('height')} via {writer.base_url}"
        except ApiError as exc:
            outcome = Outcome(int(exc.code), exc.message, "refused at admission")
            where = f"refused at admission by {writer.base_url}"
        self.result.steps += 1
        detail = f" - {humanize_detail(outcome.detail)}" if outcome.detail else ""
        self.say(f"    {verdict_mark(outcome.code, expect)}ledger: {code_text(outcome.code)}{detail} [{where}]")
        if outcome.code == expect:
            self.result.as_expected += 1
        else:
            self.result.surprises.append(f"{what}: expected {code_text(expect)}, got {code_text(outcome.code)}"
                                         f"{detail}")
        return outcome

    async def dry_run(self, what: str, ops: Sequence[Operation], signers: Sequence[str], expect: int) -> int:
        """"Can this happen?" without submitting: the dry-run endpoint with the same signed transaction."""
        body = await self.reader.body(list(ops))
        tx = builder.sign(body, [self.keys[s] for s in signers])
        answer = await self.reader.dry_run(tx)
        code = int(answer.get("code", -1))
        self.result.steps += 1
        self.say(f"  ? dry-run: {what}\n    {verdict_mark(code, expect)}ledger would answer: {code_text(code)}")
        if code == expect:
            self.result.as_expected += 1
        else:
            self.result.surprises.append(f"dry-run {what}: expected {code_text(expect)}, got {code_text(code)}")
        return code

    async def head(self) -> int:
        return await self.reader.head_height()

    async def wait_height(self, height: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.head() < height:
            if time.monotonic() > deadline:
                raise DemoError("timeout", f"the network did not reach height {height} within {timeout:.0f}s")
            await asyncio.sleep(0.2)

    async def balance(self, account: str, asset: str, height: int | None = None) -> dict[str, int]:
        doc = await self.reader.balances(account, asset, height)
        items = doc.get("balances", [])
        if not items:
            return {"available": 0, "held": 0, "frozen": 0, "total": 0}
        b = items[0]
        return {k: int(b[k]) for k in ("available", "held", "frozen", "total")}

    async def table(self, title: str, accounts: Sequence[str], assets: Sequence[str]) -> dict[tuple[str, str], int]:
        self.say(f"    {title}:")
        totals: dict[tuple[str, str], int] = {}
        for account in accounts:
            parts = []
            for asset in assets:
                b = await self.balance(account, asset)
                totals[(account, asset)] = b["total"]
                extra = []
                if b["held"]:
                    extra.append(f"held {fmt(b['held'])}")
                if b["frozen"]:
                    extra.append(f"frozen {fmt(b['frozen'])}")
                more = f" ({', '.join(extra)})" if extra else ""
                parts.append(f"{asset} {fmt(b['available']):>12}{more}")
            self.say(f"      {self.who(account):32} " + "   ".join(parts))
        return totals

    async def supply_check(self, assets: Sequence[str]) -> None:
        """issued - redeemed == sum of available + held + frozen over every holder, all at one height."""
        height = await self.head()
        for asset in assets:
            doc = await self.reader.asset(asset, height)
            outstanding = int(doc["outstanding"])
            holders: list[str] = []
            after = None
            for _ in range(MAX_HOLDER_PAGES):
                page = await self.reader.holders(asset, limit=100, after=after)
                holders += [item["account"] for item in page["items"]]
                after = page.get("next")
                if not after:
                    break
            total = 0
            for account in holders:
                b = await self.balance(account, asset, height)
                total += b["available"] + b["held"] + b["frozen"]
            ok = total == outstanding
            line = (f"{asset} at height {height}: issued - redeemed = {fmt(outstanding)}; sum over {len(holders)} "
                    f"holders of available + held + frozen = {fmt(total)} -> {'conserved' if ok else 'MISMATCH'}")
            self.say(f"    supply check: {line}")
            self.result.supply_checks.append(line)
            self.result.supply_ok &= ok
