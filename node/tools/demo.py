"""`ledger demo`: scenarios 1-4 of the institutions' playbook, played as a story against a multi-node network, and
scenario 7 (member onboarding, `play_onboarding`) on a testnet of real node processes (end of this file).

    result = await play(DemoNetwork(api_urls, accounts, source), out=sys.stdout, lockup_seconds=12)

Every step goes through the HTTP API with the Python SDK (node.client): transactions are built, signed by the
acting institution's key, submitted and waited for; reads are signed by the auditor. Each step prints who does what,
the ledger's answer (reason code, name, message, detail) and whether it is the answer the scenario expects; balance
tables before and after; and each scenario ends with the supply check per asset
(issued - redeemed == sum of every holder's available + held + frozen, all read at one height).

The network: a running testnet (`ledger testnet up`) whose nodes serve the API, or, when there is none, a network
this module starts in the current process (`InProcessNetwork`: N validators with real consensus over loopback TCP,
each serving the API on its own port).

Time: the 180-day lock-up of scenario 1 cannot pass on a live chain, so the demo attaches the same rule with a
lock-up of `lockup_seconds` (block time) and says so; "day 10" is a transfer inside the lock-up, "day 181" one after it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

import contracts  # noqa: F401  (registers the contracts layer's operations: SetClaim, AnnounceAction, PayAction)
from contracts.operations import AnnounceAction, PayAction, SetClaim
from ledger import codes
from ledger.operations import (
    DefineAsset,
    ForcedTransfer,
    FreezeAmount,
    GrantRole,
    Issue,
    Operation,
    RegisterAccount,
    RuleSpec,
    Settle,
    SettlementLeg,
    Transfer,
    TransferLeg,
    UnfreezeAmount,
)
from node.client import AccountKey, ApiError, AsyncLedgerClient, ClientError, builder

BOND: Final = "BOND-A"
CASH: Final = "CASH-T"
ADMIN: Final = "admin@m0"
ISSUER: Final = "issuer@m0"
KYC: Final = "kyc@m1"
AGENT: Final = "agent@m2"
ESCROW: Final = "escrow@m0"
INVESTOR_A: Final = "investor-a@m1"
INVESTOR_B: Final = "investor-b@m2"
INVESTOR_C: Final = "investor-c@m3"
INVESTOR_D: Final = "investor-d@m1"
LABELS: Final = {ISSUER: "Issuer", KYC: "KYC provider", AGENT: "Agent", ESCROW: "Escrow", INVESTOR_A: "Investor A",
                 INVESTOR_B: "Investor B", INVESTOR_C: "Investor C", INVESTOR_D: "Investor D", ADMIN: "Admin"}
ONE_YEAR_S: Final = 365 * 86400


class DemoError(Exception):
    """The demo could not run (no network, the API unreachable): a code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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


AMOUNT_ATTRS: Final = frozenset({"amount", "units", "remainder"})


def describe_event(ev: dict[str, Any]) -> str:
    """'kind: attr=value, ...' with amounts as decimals (every asset of the demo has 2 decimals)."""
    attrs = ev.get("attrs", {}) if isinstance(ev.get("attrs"), dict) else {}
    parts = []
    for k, v in attrs.items():
        parts.append(f"{k}={fmt(v)}" if k in AMOUNT_ATTRS and isinstance(v, int) else f"{k}={v}")
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
        mark = "ok " if outcome.code == expect else "!! "
        detail = f" - {outcome.detail}" if outcome.detail else ""
        self.say(f"    {mark}ledger: {code_text(outcome.code)}{detail} [{where}]")
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
        mark = "ok " if code == expect else "!! "
        self.say(f"  ? dry-run: {what}\n    {mark}ledger would answer: {code_text(code)}")
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
            for _ in range(1000):
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

    # ------------------------------------------------------------------------------------------------ setup

    async def setup(self) -> None:
        self.say("Setup: the consortium admin opens the accounts of this story and grants their roles")
        ops: list[Operation] = []
        for account in (ISSUER, KYC, AGENT, ESCROW, INVESTOR_A, INVESTOR_B, INVESTOR_C, INVESTOR_D):
            ops.append(RegisterAccount(ADMIN, account, (self.keys[account].public_key,), 1, None))
        ops += [GrantRole(ADMIN, ISSUER, "issuer"), GrantRole(ADMIN, KYC, "kyc_provider"),
                GrantRole(ADMIN, AGENT, "agent")]
        await self.attempt(self.who(ADMIN), "register 8 accounts; grant issuer, kyc_provider, agent roles", ops,
                           [ADMIN], codes.OK)
        cash = [Issue(ADMIN, CASH, a, units(x)) for a, x in
                ((ISSUER, "50000.00"), (INVESTOR_A, "20000.00"), (INVESTOR_B, "20000.00"),
                 (INVESTOR_C, "20000.00"), (INVESTOR_D, "20000.00"))]
        await self.attempt(self.who(ADMIN), f"issue {CASH} cash tokens to the issuer and investors A-D", cash,
                           [ADMIN], codes.OK)

    # -------------------------------------------------------------------------------------------- scenario 1

    async def scenario_1(self) -> None:
        import contracts.codes as cc

        self.say("\nScenario 1 - Bond issuance to eligible investors with a lock-up")
        days = self.lockup_seconds
        rules = (
            RuleSpec("eligibility", (("providers", KYC),)),
            RuleSpec("countries", (("allow", "CN,HK,SG"),)),
            RuleSpec("lockup", (("seconds", days),)),
        )
        self.say(f"    (the 180-day lock-up is attached as a {days}-second lock-up so the story can pass it)")
        await self.attempt(self.who(ISSUER), f"define {BOND}: 2 decimals, cap 1,000,000.00, eligibility by {KYC}, "
                           f"countries CN/HK/SG, lock-up per issuance lot, agent {AGENT}",
                           [DefineAsset(ISSUER, BOND, 2, units("1000000.00"), "Bond A 2031", "", (), (AGENT,),
                                        rules)], [ISSUER], codes.OK)
        now = int(time.time())
        await self.attempt(self.who(KYC), f"verify {INVESTOR_A} (CN) and {INVESTOR_B} (SG) and {INVESTOR_D} (HK)",
                           [SetClaim(KYC, INVESTOR_A, "CN", 2, now + ONE_YEAR_S),
                            SetClaim(KYC, INVESTOR_B, "SG", 2, now + ONE_YEAR_S),
                            SetClaim(KYC, INVESTOR_D, "HK", 1, now + ONE_YEAR_S)], [KYC], codes.OK)
        before = await self.table("balances before", [INVESTOR_A, INVESTOR_B, INVESTOR_C], [BOND])
        del before
        await self.attempt(self.who(ISSUER), f"issue 10,000.00 {BOND} to A and 5,000.00 to B",
                           [Issue(ISSUER, BOND, INVESTOR_A, units("10000.00")),
                            Issue(ISSUER, BOND, INVESTOR_B, units("5000.00"))], [ISSUER], codes.OK)
        issued_at = time.monotonic()
        await self.attempt(self.who(ISSUER), f"issue 1,000.00 {BOND} to unverified {INVESTOR_C}",
                           [Issue(ISSUER, BOND, INVESTOR_C, units("1000.00"))], [ISSUER],
                           cc.RECIPIENT_NOT_ELIGIBLE)
        move = [Transfer(INVESTOR_A, BOND, (TransferLeg(INVESTOR_B, units("1000.00")),))]
        await self.dry_run("'day 10': can A transfer 1,000.00 to B?", move, [INVESTOR_A], cc.UNITS_LOCKED)
        await self.attempt(self.who(INVESTOR_A), "'day 10': transfer 1,000.00 to B (inside the lock-up)", move,
                           [INVESTOR_A], cc.UNITS_LOCKED)
        await self.attempt(self.who(ISSUER), f"issue 990,000.01 {BOND} to A (15,000.00 are out: above the cap)",
                           [Issue(ISSUER, BOND, INVESTOR_A, units("985000.01"))], [ISSUER],
                           codes.SUPPLY_CAP_EXCEEDED)
        wait = self.lockup_seconds + 2 - (time.monotonic() - issued_at)
        if wait > 0:
            self.say(f"    ... {wait:.0f}s pass: the lock-up is over ('day 181')")
            await asyncio.sleep(wait)
        await self.wait_height(await self.head() + 1)
        await self.dry_run("'day 181': can A transfer 1,000.00 to B?", move, [INVESTOR_A], codes.OK)
        await self.attempt(self.who(INVESTOR_A), "'day 181': transfer 1,000.00 to B", move, [INVESTOR_A], codes.OK)
        await self.table("balances after", [INVESTOR_A, INVESTOR_B, INVESTOR_C], [BOND])
        await self.supply_check([BOND, CASH])

    # -------------------------------------------------------------------------------------------- scenario 2

    async def scenario_2(self) -> None:
        import contracts.codes as cc

        self.say("\nScenario 2 - Coupon payment in CASH-T at a record height")
        record = await self.head() + 8  # room for the announcement to be included before it
        await self.table("holdings before", [INVESTOR_A, INVESTOR_B, INVESTOR_D, ISSUER, ESCROW], [BOND, CASH])
        await self.attempt(self.who(ISSUER), f"announce coupon C1 on {BOND}: 2/7 {CASH} per unit held at record "
                           f"height {record}, rounding remainder to {ESCROW}",
                           [AnnounceAction(ISSUER, "BOND-A-C1", 1, BOND, CASH, ISSUER, ESCROW, record, 2, 7)],
                           [ISSUER], codes.OK)
        await self.wait_height(record + 1)
        await self.attempt(self.who(INVESTOR_B), f"after the record height, sell 500.00 {BOND} to D (the buyer)",
                           [Transfer(INVESTOR_B, BOND, (TransferLeg(INVESTOR_D, units("500.00")),))],
                           [INVESTOR_B], codes.OK)
        paid = await self.attempt(self.who(ISSUER), "pay coupon C1 (one batch, up to 64 holders)",
                                  [PayAction(ISSUER, "BOND-A-C1", 64)], [ISSUER], codes.OK)
        for ev in paid.events:
            self.say(f"      event {describe_event(ev)}")
        await self.attempt(self.who(ISSUER), "pay coupon C1 again", [PayAction(ISSUER, "BOND-A-C1", 64)],
                           [ISSUER], cc.ACTION_COMPLETED)
        await self.table("holdings after (D bought after the record height: no coupon)",
                         [INVESTOR_A, INVESTOR_B, INVESTOR_D, ISSUER, ESCROW], [BOND, CASH])
        await self.supply_check([BOND, CASH])

    # -------------------------------------------------------------------------------------------- scenario 3

    async def scenario_3(self) -> None:
        import contracts.codes as cc

        self.say("\nScenario 3 - Delivery versus payment (one transaction, both legs or neither)")
        expiry = await self.head() + 50
        dvp = [Settle(INVESTOR_A, "DVP-1", expiry, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_D, units("2000.00")),
                                                    SettlementLeg(CASH, INVESTOR_D, INVESTOR_A,
                                                                  units("1960.00"))))]
        await self.table("before", [INVESTOR_A, INVESTOR_D, INVESTOR_C], [BOND, CASH])
        await self.attempt("A (seller) and D (buyer)", "settle DVP-1: 2,000.00 BOND-A A->D against 1,960.00 CASH-T "
                           "D->A, signed by both", dvp, [INVESTOR_A, INVESTOR_D], codes.OK)
        bad = [Settle(INVESTOR_A, "DVP-2", expiry, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_C, units("100.00")),
                                                    SettlementLeg(CASH, INVESTOR_C, INVESTOR_A, units("98.00"))))]
        await self.attempt("A and C (not eligible)", "settle DVP-2: BOND-A to unverified C against cash", bad,
                           [INVESTOR_A, INVESTOR_C], cc.RECIPIENT_NOT_ELIGIBLE)
        half = [Settle(INVESTOR_A, "DVP-3", expiry, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_D, units("100.00")),
                                                     SettlementLeg(CASH, INVESTOR_D, INVESTOR_A, units("98.00"))))]
        await self.attempt("A alone", "settle DVP-3 with the buyer's signature missing", half, [INVESTOR_A],
                           codes.THRESHOLD_NOT_MET, declared=[INVESTOR_A, INVESTOR_D])
        stale = await self.head()
        late = [Settle(INVESTOR_A, "DVP-4", stale, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_D, units("100.00")),
                                                    SettlementLeg(CASH, INVESTOR_D, INVESTOR_A, units("98.00"))))]
        await self.wait_height(stale + 1)
        await self.attempt("A and D", f"settle DVP-4 whose settlement expiry height {stale} has passed", late,
                           [INVESTOR_A, INVESTOR_D], codes.SETTLEMENT_EXPIRED)
        await self.table("after (only DVP-1 moved, both legs)", [INVESTOR_A, INVESTOR_D, INVESTOR_C], [BOND, CASH])
        await self.supply_check([BOND, CASH])

    # -------------------------------------------------------------------------------------------- scenario 4

    async def scenario_4(self) -> None:
        self.say("\nScenario 4 - Court-order freeze, forced transfer to escrow, unfreeze, audit trail")
        reason = "court order 2026/117: freeze pending judgment"
        await self.table("before", [INVESTOR_A, ESCROW], [BOND])
        await self.attempt(self.who(AGENT), f"freeze 300.00 of A's {BOND} ({reason})",
                           [FreezeAmount(AGENT, BOND, INVESTOR_A, units("300.00"), reason)], [AGENT], codes.OK)
        a = await self.balance(INVESTOR_A, BOND)
        self.say(f"    A now: available {fmt(a['available'])}, frozen {fmt(a['frozen'])}")
        too_much = a["available"] + units("1.00")
        await self.attempt(self.who(INVESTOR_A), f"transfer {fmt(too_much)} (more than the unfrozen amount) to B",
                           [Transfer(INVESTOR_A, BOND, (TransferLeg(INVESTOR_B, too_much),))], [INVESTOR_A],
                           codes.INSUFFICIENT_ACTIVE_BALANCE)
        forced = await self.attempt(self.who(AGENT), "force-transfer the 300.00 frozen units to escrow",
                                    [ForcedTransfer(AGENT, BOND, INVESTOR_A, ESCROW, units("300.00"), True,
                                                    "court order 2026/117: transfer to escrow")], [AGENT], codes.OK)
        for ev in forced.events:
            self.say(f"      event {describe_event(ev)}")
        await self.attempt(self.who(AGENT), "freeze 100.00 more of A's BOND-A (a second order)",
                           [FreezeAmount(AGENT, BOND, INVESTOR_A, units("100.00"), "court order 2026/118")], [AGENT],
                           codes.OK)
        await self.attempt(self.who(AGENT), "unfreeze those 100.00 (order lifted)",
                           [UnfreezeAmount(AGENT, BOND, INVESTOR_A, units("100.00"), "order 2026/118 lifted")],
                           [AGENT], codes.OK)
        await self.table("after", [INVESTOR_A, ESCROW], [BOND])
        self.say("    audit trail of A (who, when, why), as the auditor reads it:")
        history = await self.reader.history(INVESTOR_A, limit=50)
        items = history.get("items", []) if isinstance(history, dict) else list(history)
        shown = 0
        for item in sorted((i for i in items if isinstance(i, dict)), key=lambda i: (i.get("height", 0),
                                                                                   i.get("position", 0))):
            for ev in item.get("events", ()):
                attrs = ev.get("attrs", {}) if isinstance(ev, dict) and isinstance(ev.get("attrs"), dict) else {}
                if "reason" in attrs:
                    self.say(f"      height {item.get('height')}, tx {str(item.get('tx_id'))[:12]}: "
                             f"{describe_event(ev)}")
                    shown += 1
        if not shown:
            self.say(f"      (history answer: {str(history)[:400]})")
        await self.supply_check([BOND, CASH])


async def play(urls: Sequence[str], admin_seed: bytes, out: IO[str] | None, lockup_seconds: int = 12) -> DemoResult:
    """Play scenarios 1-4 against nodes serving the API at `urls`; returns what happened."""
    keys = {ADMIN: AccountKey.from_seed(ADMIN, admin_seed)}
    for account in LABELS:
        if account != ADMIN:
            keys[account] = AccountKey.generate(account)
    story = Story(urls, keys, out, lockup_seconds)
    try:
        status = await story.reader.status()
        story.say(f"Network: chain {status.get('chain_id')} at height {status.get('height', '?')}, submitting "
                  f"through {len(urls)} nodes: {', '.join(urls)}\n")
        if await _exists(story, ISSUER):
            raise DemoError("already_played", "this network already has the demo's accounts: the demo runs once per "
                                              "network (start a fresh one: ledger testnet down --wipe; up)")
        await story.setup()
        await story.scenario_1()
        await story.scenario_2()
        await story.scenario_3()
        await story.scenario_4()
    except ClientError as exc:
        raise DemoError(str(exc.code), exc.message) from None
    finally:
        await story.close()
    r = story.result
    story.say(f"\nDemo finished: {r.as_expected}/{r.steps} steps answered as the scenarios expect; supply "
              f"{'conserved in every check' if r.supply_ok else 'NOT conserved'}.")
    for s in r.surprises:
        story.say(f"  unexpected: {s}")
    story.say("Not shown here: scenarios 5-6 (lost-key recovery, custody statements); scenario 7 (member "
              "onboarding) is `ledger demo --scenario 7`; "
              "the lock-up runs in seconds, not days.")
    r.not_shown.append("the 180-day lock-up is shown with a lock-up of a few seconds of block time")
    return r


async def _exists(story: Story, account: str) -> bool:
    try:
        await story.reader.account(account)
    except ApiError:
        return False
    return True


# ------------------------------------------------------------------------------------------- in-process network


class InProcessNetwork:
    """N validators in this process (real consensus over loopback TCP, one shared signature-verifier pool), each
    serving the HTTP API. For the demo when no running testnet serves the API."""

    def __init__(self, directory: str, nodes: int = 4) -> None:
        self.directory = directory
        self.nodes = nodes
        self.validators: list[Any] = []
        self.started: list[Any] = []
        self.servers: list[Any] = []
        self.verifier: Any = None
        self.urls: list[str] = []
        self.admin_seed = b""

    async def start(self) -> None:
        from node.api import ApiConfig
        from node.api.server import start_api
        from node.chain.genesis import ChainParams, load_genesis
        from node.chain.sigverify import Ed25519Verifier
        from node.tools.localnet import generate_network, load_accounts
        from node.tools.testnet import find_free_port_block
        from node.validator.keyfile import load_keys
        from node.validator.node import Validator

        p2p = find_free_port_block(self.nodes)
        api = find_free_port_block(self.nodes, start=p2p + self.nodes + 1)
        layout = generate_network(self.directory, self.nodes, chain_id="testnet-demo", base_port=p2p,
                                  api_base_port=api, users=2,
                                  params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=200))
        self.admin_seed = bytes(load_accounts(layout.accounts_path)[ADMIN])
        genesis = load_genesis(layout.genesis_path)
        self.verifier = Ed25519Verifier()
        for i in range(self.nodes):
            node_dir = os.path.join(self.directory, f"node-{i}")
            v = Validator(genesis, load_keys(os.path.join(node_dir, "node_keys.json")), os.path.join(node_dir, "data"),
                          listen=("127.0.0.1", layout.p2p_ports[i]), sig_verifier=self.verifier)
            self.validators.append(v)
        for v in self.validators:
            await v.start()
            self.started.append(v)
        for i, v in enumerate(self.validators):
            server = await start_api(v, "127.0.0.1", layout.api_ports[i], ApiConfig())
            self.servers.append(server)
            self.urls.append(server.url)

    async def stop(self) -> None:
        for s in self.servers:
            await s.stop()
        for v in self.started:
            await v.stop()
        self.started.clear()
        if self.verifier is not None:
            self.verifier.close()


# ============================================================================================================
# Scenario 7: member onboarding and validator-set changes on a running testnet of real node processes


GAP_ROUNDS_OK: Final = 4  # "no stall longer than a few rounds": the report's stall verdict (not a test assertion)
MONITOR_INTERVAL_S: Final = 0.1
STEP_TIMEOUT_S: Final = 60.0


@dataclass(slots=True)
class OnboardingReport:
    """What scenario 7 did and measured. `ok`: every step answered as expected, the new validator and the rotated
    one signed in their epochs, transactions committed in every phase, state roots agree, and the custody
    statement verified offline from the genesis file. The commit gap is reported (`stall_ok`) separately."""

    steps: list[str] = field(default_factory=list)
    surprises: list[str] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    committed_by_phase: dict[str, int] = field(default_factory=dict)
    submitted: int = 0
    accepted: int = 0
    duration_s: float = 0.0
    max_commit_gap_s: float = 0.0
    max_gap_after_height: int = 0
    base_timeout_ms: int = 1000
    fork_checks: list[dict[str, Any]] = field(default_factory=list)
    joined_signed_at: int | None = None
    rotated_signed_at: int | None = None
    statement: dict[str, Any] = field(default_factory=dict)

    @property
    def roots_agree(self) -> bool:
        return bool(self.fork_checks) and all(c["agree"] for c in self.fork_checks)

    @property
    def max_gap_rounds(self) -> float:
        return self.max_commit_gap_s * 1000 / self.base_timeout_ms

    @property
    def stall_ok(self) -> bool:
        return self.max_gap_rounds <= GAP_ROUNDS_OK

    @property
    def ok(self) -> bool:
        return (not self.surprises and self.roots_agree and bool(self.statement.get("verified"))
                and self.joined_signed_at is not None and self.rotated_signed_at is not None
                and bool(self.committed_by_phase) and all(v > 0 for v in self.committed_by_phase.values()))

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "stall_ok": self.stall_ok, "steps": self.steps, "surprises": self.surprises,
                "epochs": self.epochs, "committed_by_phase": self.committed_by_phase, "submitted": self.submitted,
                "accepted": self.accepted, "duration_s": round(self.duration_s, 1),
                "max_commit_gap_s": round(self.max_commit_gap_s, 2), "max_gap_rounds": round(self.max_gap_rounds, 2),
                "max_gap_after_height": self.max_gap_after_height, "base_timeout_ms": self.base_timeout_ms,
                "fork_checks": self.fork_checks, "joined_signed_at": self.joined_signed_at,
                "rotated_signed_at": self.rotated_signed_at, "statement": self.statement}


class _CommitMonitor:
    """Samples the nodes' heights every MONITOR_INTERVAL_S; the network head is the highest height any node
    reports. Records the longest time the head did not move (the commit gap)."""

    def __init__(self, net: Any) -> None:
        import threading

        self.net = net
        self.stop = threading.Event()
        self.head = -1
        self.last_move = time.monotonic()
        self.max_gap = 0.0
        self.max_gap_after = 0
        self.thread = threading.Thread(target=self._run, name="scenario7-monitor", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            heights = [self.net.height(i) for i in range(self.net.n)]
            now = time.monotonic()
            top = max(heights) if heights else -1
            if top > self.head:
                if self.head >= 0 and now - self.last_move > self.max_gap:
                    self.max_gap, self.max_gap_after = now - self.last_move, self.head
                self.head, self.last_move = top, now
            self.stop.wait(MONITOR_INTERVAL_S)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        gap = time.monotonic() - self.last_move
        if gap > self.max_gap:
            self.max_gap, self.max_gap_after = gap, self.head


class _TransferLoad:
    """Signed CASH-T transfers between the test accounts at `rate` per second, each to a random running node's
    admin socket (the way `ledger testnet chaos` loads a network)."""

    def __init__(self, net: Any, rate: int) -> None:
        import random
        import threading

        from node.tools.localnet import load_accounts

        self.net = net
        self.rate = max(1, rate)
        self.rng = random.Random(7)
        self.accounts = load_accounts(net.accounts_path)
        self.users = sorted(a for a in self.accounts if a.startswith("user-"))
        if len(self.users) < 2:
            raise DemoError("no_test_accounts", "the testnet has fewer than two test accounts (user-*) for the load")
        self.nonce = self.rng.randrange(1 << 40) << 20
        self.expiry = 0
        self.submitted = 0
        self.accepted = 0
        self.excluded: set[int] = set()  # nodes no longer in the validator set: they stop relaying to it
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scenario7-load", daemon=True)

    def _make(self) -> bytes:
        from ledger.transaction import TxBody, sign_transaction
        from node.chain.protocol import OPERATIONS
        from node.tools.localnet import CASH_ASSET

        sender, recipient = self.rng.sample(self.users, 2)
        self.nonce += 1
        body = TxBody(1, self.net.chain_id, (sender,), self.nonce, self.expiry,
                      (Transfer(sender, CASH_ASSET, (TransferLeg(recipient, 1),)),))
        return sign_transaction(body, [(sender, self.accounts[sender])], operations=OPERATIONS).to_bytes()

    def _run(self) -> None:
        self.expiry = max(self.net.height(i) for i in range(self.net.n)) + 10_000
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            live = [i for i in range(self.net.n) if i not in self.excluded and self.net.running(i)]
            if live:
                answer = self.net.admin(self.rng.choice(live), {"op": "submit", "tx": self._make().hex()},
                                        timeout=3.0)
                self.submitted += 1
                if answer is not None and answer.get("code") == 0:
                    self.accepted += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)


class Onboarding:
    """Scenario 7, step by step, on a running testnet (node.tools.testnet.Testnet). Governance goes through the HTTP API
    with the SDK (proposals signed by the founding members' governors gov@m<i>); load through admin sockets."""

    def __init__(self, net: Any, out: IO[str] | None, rate: int, rotate_identity: bool = True) -> None:
        from node.tools.localnet import load_accounts
        from node.tools.testnet import governor_account

        self.net = net
        self.out = out
        self.rate = rate
        self.rotate_identity = rotate_identity
        self.report = OnboardingReport()
        seeds = load_accounts(net.accounts_path)
        self.governors: dict[str, AccountKey] = {}
        for m in (f"m{i}" for i in range(net.n)):
            name = governor_account(m)
            if name in seeds:
                self.governors[m] = AccountKey.from_seed(name, bytes(seeds[name]))
        if len(self.governors) < 3:
            raise DemoError("no_governors", "this testnet's genesis has no governor accounts (gov@m<i>): it was "
                                            "created before governance; start a fresh one (ledger testnet down "
                                            "--wipe; up)")
        self.reference = 2  # a founding validator that is never removed, rotated or restarted here

    def say(self, text: str = "") -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    def client(self, i: int | None = None) -> Any:
        from node.client import LedgerClient

        return LedgerClient(self.net.api_url(self.reference if i is None else i), timeout=STEP_TIMEOUT_S)

    def committed(self) -> int:
        s = self.net.node_status(self.reference)
        return 0 if s is None else int(s.get("committed_txs") or 0)

    def surprise(self, text: str) -> None:
        self.report.surprises.append(text)
        self.say(f"    !! {text}")

    # ------------------------------------------------------------------------------------------- governance

    def govern(self, proposal_id: str, proposer: str, approvers: Sequence[str], actions: Sequence[Any],
               what: str, after_propose: Callable[[], bool] | None = None) -> int | None:
        """Propose `actions` as `proposer`'s governor, approve with the others; the height the proposal executed
        at (None when it did not). `after_propose` runs once the proposal is open (False stops here)."""
        from node.client import governance

        self.say(f"  > governor of {proposer} proposes {proposal_id!r}: {what}")
        executed_at: int | None = None
        with self.client() as client:
            expiry = client.head_height() + 20_000  # blocks come every ~50 ms under load: leave the approvers time
            steps: list[tuple[str, Any]] = [(proposer, governance.propose(
                self.governors[proposer].account, proposal_id, list(actions), expiry))]
            steps += [(m, governance.approve(self.governors[m].account, proposal_id)) for m in approvers]
            for member, op in steps:
                result = client.execute(op, keys=[self.governors[member]], check=False, timeout=STEP_TIMEOUT_S)
                receipt = result.receipt or {}
                code = int(receipt.get("code", -1))
                p = client.proposal(proposal_id)
                self.report.steps.append(f"{proposal_id}: {type(op).__name__.lower()} by {member} -> "
                                         f"{code_text(code)}, proposal {p['status']}")
                mark = "ok " if code == codes.OK else "!! "
                self.say(f"    {mark}{type(op).__name__.lower()} by {member}: {code_text(code)} in block "
                         f"{receipt.get('height')}; proposal {p['status']}, approvals {', '.join(p['approvals'])}"
                         + (f", {p['approvals_missing']} more needed" if p["status"] == "open" else ""))
                if code != codes.OK:
                    self.surprise(f"{proposal_id}: {type(op).__name__} by {member} answered {code_text(code)}")
                    return None
                if p["status"] == "executed":
                    executed_at = int(p["closed_height"])
                if op is steps[0][1] and after_propose is not None and not after_propose():
                    return None
        if executed_at is None:
            self.surprise(f"{proposal_id} did not execute after {len(steps)} approvals")
        return executed_at

    def start_joiner(self, joiner: int, node_id: str) -> bool:
        """Start the joining node while its proposal is open: the validators admit a node that an open proposal
        would add (as a peer without voting power), so it syncs from genesis now and is caught up when its epoch
        begins."""
        self.say(f"  > start {node_id} while the proposal is open: it syncs from genesis as a non-voting peer")
        self.net.start(joiner)
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self.client() as client:
            while time.monotonic() < deadline:
                target = client.head_height()
                # Within a block-sync lag (node.validator.node.SYNC_LAG) of the head: the rest is fetched in one round trip.
                if self.net.height(joiner) >= target - 12:
                    self.say(f"    {node_id} caught up: height {self.net.height(joiner)} of {target}")
                    return True
                time.sleep(0.2)
        self.surprise(f"{node_id} did not catch up while its proposal was open")
        return False

    def wait_epoch(self, epoch: int, executed_at: int, proposal_id: str) -> None:
        """Wait until the reference node's ledger names `epoch` (its first block is executed_at + 1) and the
        network committed into it."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self.client() as client:
            while time.monotonic() < deadline:
                v = client.validators()
                if v["epoch"] >= epoch and client.head_height() >= executed_at + 2:
                    self.report.epochs.append({"epoch": epoch, "start_height": v["start_height"],
                                               "proposal": proposal_id, "executed_height": executed_at,
                                               "validators": [x["name"] for x in v["validators"]]})
                    self.say(f"    epoch {epoch} from height {v['start_height']}: validators "
                             f"{', '.join(x['name'] for x in v['validators'])}")
                    return
                time.sleep(0.2)
        self.surprise(f"epoch {epoch} did not start within {STEP_TIMEOUT_S:.0f}s")

    def wait_signing(self, node_id: str, epoch: int, from_height: int) -> int | None:
        """The first committed block of `epoch` (from `from_height` on) whose QC carries `node_id`'s signature or
        that `node_id` proposed: proof that the node votes in that epoch."""
        from consensus.validators import bitmap_indexes

        deadline = time.monotonic() + STEP_TIMEOUT_S
        h = from_height
        with self.client() as client:
            names = [x["name"] for x in client.validators()["validators"]]
            if node_id not in names:
                self.surprise(f"{node_id} is not in the validator set of epoch {epoch}")
                return None
            index = names.index(node_id)
            while time.monotonic() < deadline:
                if client.head_height() < h + 1:
                    time.sleep(0.2)
                    continue
                header = client.block(h + 1)["header"]  # its QC certifies block h
                qc = header.get("qc") or {}
                signed = qc.get("epoch") == epoch and index in bitmap_indexes(bytes.fromhex(qc.get("signers", "")))
                proposed = header.get("epoch") == epoch and header.get("proposer") == index
                if signed or proposed:
                    how = "its vote is in the quorum certificate of" if signed else "it proposed"
                    self.say(f"    {node_id} signs in epoch {epoch}: {how} block {h if signed else h + 1}")
                    return h if signed else h + 1
                h += 1
        self.surprise(f"{node_id} did not sign in epoch {epoch} within {STEP_TIMEOUT_S:.0f}s")
        return None

    def wait_blocks(self, n: int) -> None:
        """Let the reference node commit `n` more blocks (bounded)."""
        target = self.net.height(self.reference) + n
        self.net.wait_height([self.reference], target, STEP_TIMEOUT_S)

    def phase_done(self, name: str, start_count: int) -> int:
        now = self.committed()
        self.report.committed_by_phase[name] = now - start_count
        self.say(f"    transfers committed during '{name}': {now - start_count}")
        return now

    # --------------------------------------------------------------------------------------------- checks

    def fork_check(self, label: str, nodes: Sequence[int]) -> None:
        live = [i for i in nodes if self.net.running(i)]
        heights = {i: self.net.height(i) for i in live}
        heights = {i: h for i, h in heights.items() if h >= 0}
        if len(heights) < 2:
            self.surprise(f"fork check '{label}': fewer than two nodes answer")
            return
        common = min(heights.values())
        roots = {f"node-{i}": self.net.roots(i, common, common).get(common) for i in heights}
        agree = None not in roots.values() and len(set(roots.values())) == 1
        self.report.fork_checks.append({"label": label, "height": common, "agree": agree, "roots": roots})
        self.say(f"    state roots at height {common} on {', '.join(roots)}: {'agree' if agree else 'DIFFER'}")
        if not agree:
            self.surprise(f"state roots differ at height {common}: {roots}")

    def custody_statement(self) -> None:
        from node.chain.statement import load_trust_anchor, statement_bytes, verify_statement_bytes
        from node.tools.localnet import CASH_ASSET

        with self.client() as client:
            height = client.head_height()
            user = "user-0@m0"
            doc = client.statement(user, height)
        data = statement_bytes(doc)
        anchor = load_trust_anchor(self.net.genesis_path)  # the genesis file alone
        verdict = verify_statement_bytes(data, anchor)
        vs = doc["validator_set"]
        cash = next((x for x in doc["holdings"] if x["asset"] == CASH_ASSET), None)
        self.report.statement = {"account": user, "height": height, "epoch": vs["epoch"],
                                 "epoch_changes": len(vs["epoch_changes"]), "bytes": len(data),
                                 "verified": verdict.ok, "code": verdict.code,
                                 "available": None if cash is None else cash["available"]}
        self.say(f"    custody statement of {user} at height {height} (epoch {vs['epoch']}, "
                 f"{len(vs['epoch_changes'])} epoch-change proofs, {len(data):,} bytes): verified offline from "
                 f"the genesis file alone: {verdict.code}")
        if not verdict.ok:
            self.surprise(f"the custody statement does not verify: {verdict.code} {verdict.reason}")

    # ---------------------------------------------------------------------------------------------- story

    def play(self) -> OnboardingReport:
        from node.validator.keyfile import NodeKeys, load_keys, next_keys_path, rotate_keys, write_keys

        net = self.net
        r = self.report
        founders = [i for i in range(net.n) if i not in net.joined]
        if len(founders) < 4 or not all(net.running(i) for i in founders[:4]):
            raise DemoError("testnet_not_running", "scenario 7 needs the 4 founding validators of a running testnet "
                                                   "(ledger testnet up)")
        with self.client() as client:
            start = client.validators()
        if start["epoch"] != 0 or len(start["validators"]) != 4:
            raise DemoError("already_played", "scenario 7 starts from the genesis validator set (epoch 0, 4 "
                                              "validators); this testnet was reconfigured already: start a fresh one")
        from node.chain.genesis import load_genesis

        r.base_timeout_ms = load_genesis(net.genesis_path).params.base_timeout_ms
        self.say(f"Scenario 7 - member onboarding on {net.n} running validators ({net.directory}); "
                 f"load: {self.rate} transfers/s throughout")
        t0 = time.monotonic()
        monitor = _CommitMonitor(net)
        load = _TransferLoad(net, self.rate)
        monitor.thread.start()
        load.thread.start()
        try:
            count = self.committed()
            time.sleep(2.0)
            count = self.phase_done("before", count)

            self.say("\n1. A new institution m4 joins: its node's keys, then M of N members approve it")
            info = net.add_node()
            joiner = int(info["index"])
            self.say(f"    created {info['node']} (not in the genesis): p2p {info['p2p']}, api {info['api']}")
            h1 = self.govern("onboard-m4", "m0", ["m1", "m2"], info["actions"],
                             "add member m4 (voting) and its validator node-4",
                             after_propose=lambda: self.start_joiner(joiner, info["node"]))
            if h1 is None:
                return r
            self.wait_epoch(1, h1, "onboard-m4")
            r.joined_signed_at = self.wait_signing(info["node"], 1, h1 + 1)
            count = self.phase_done("4 -> 5 validators", count)
            self.fork_check("after onboarding", range(net.n))

            self.say("\n2. An original validator leaves: node-0 (member m0) is removed")
            h2 = self.govern("remove-node-0", "m1", ["m2", "m3"],
                             [{"kind": "remove_validator", "node_id": "node-0"}], "remove validator node-0")
            if h2 is None:
                return r
            self.wait_epoch(2, h2, "remove-node-0")
            load.excluded.add(0)
            count = self.phase_done("5 -> 4 validators", count)
            self.fork_check("after the removal", range(net.n))

            which = "identity and BLS keys" if self.rotate_identity else "BLS consensus key"
            self.say(f"\n3. node-1 rotates its {which} while it runs: next keys beside its key file, then the "
                     "proposal")
            keys_file = os.path.join(net.node_dir(1), "node_keys.json")
            current = load_keys(keys_file)
            fresh = rotate_keys(current)
            if not self.rotate_identity:
                fresh = NodeKeys(current.node_id, current.identity_seed, fresh.bls_secret)
            write_keys(next_keys_path(keys_file), fresh, overwrite=True)
            self.say("    next keys written beside node-1's key file (no restart: the node loads them at the epoch "
                     "that names them)")
            rotate = {"kind": "rotate_validator_keys", "node_id": "node-1", "identity_key": fresh.identity_key.hex(),
                      "bls_key": fresh.bls_public_key.hex(), "bls_pop": fresh.bls_pop().hex()}
            h3 = self.govern("rotate-node-1", "m2", ["m3", "m0"],
                             [rotate], f"rotate node-1's {which}")
            if h3 is None:
                return r
            self.wait_epoch(3, h3, "rotate-node-1")
            r.rotated_signed_at = self.wait_signing("node-1", 3, h3 + 1)
            count = self.phase_done("key rotation", count)
            self.wait_blocks(3)
            self.phase_done("after", count)
        finally:
            load.finish()
            monitor.finish()
            r.submitted, r.accepted = load.submitted, load.accepted
            r.max_commit_gap_s, r.max_gap_after_height = monitor.max_gap, monitor.max_gap_after
            r.duration_s = time.monotonic() - t0

        self.say("\nChecks")
        active = [i for i in range(net.n) if i != 0]
        self.fork_check("all running nodes", range(net.n))
        self.fork_check("the current validators", active)
        self.custody_statement()
        self.say(f"    longest time without a commit: {r.max_commit_gap_s:.2f}s after height {r.max_gap_after_height} "
                 f"({r.max_gap_rounds:.1f} base rounds of {r.base_timeout_ms} ms; sampled every "
                 f"{MONITOR_INTERVAL_S * 1000:.0f} ms) -> {'no stall' if r.stall_ok else 'STALL'}")
        self.say(f"    load: {r.submitted} transfers submitted, {r.accepted} admitted, in {r.duration_s:.1f}s")
        self.say(f"\nScenario 7 {'passed' if r.ok else 'FAILED'}"
                 + ("" if not r.surprises else f": {len(r.surprises)} unexpected answers"))
        return r


def play_onboarding(net: Any, out: IO[str] | None = None, *, rate: int = 20,
                    rotate_identity: bool = True) -> OnboardingReport:
    """Scenario 7 on a running testnet (node.tools.testnet.Testnet with its 4 founding validators up): onboard member m4
    and its validator node-4 (M of N approvals; node-4 starts from genesis, syncs, votes from epoch 1), remove
    node-0, rotate node-1's BLS key (and its transport identity key with `rotate_identity`), all under a load of
    `rate` transfers/s; then check that state roots agree, measure the longest commit gap, and verify a custody
    statement offline against the genesis file."""
    from node.client import ClientError

    story = Onboarding(net, out, rate, rotate_identity)
    try:
        return story.play()
    except ClientError as exc:
        raise DemoError(str(exc.code), exc.message) from None
