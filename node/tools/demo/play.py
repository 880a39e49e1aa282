"""`ledger demo` scenarios 1-4, played in order as one story against nodes serving the HTTP API.

    result = await play(api_urls, admin_seed, out=sys.stdout, lockup_seconds=12)

The opening: the consortium admin (`admin@m0`, whose seed the testnet's accounts.json holds) registers the
institutions of node.tools.demo.cast with fresh keys, grants the issuer, KYC-provider and agent roles, and issues
CASH-T to the issuer and investors A-D. Then every module of SCENARIOS plays its scenario, each ending with the
supply check per asset, and the summary line counts the steps answered as expected. A network plays the demo once:
its accounts exist afterwards (`already_played`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Final

from ledger import codes
from ledger.operations import GrantRole, Issue, Operation, RegisterAccount
from node.client import AccountKey, ApiError, ClientError
from node.tools.demo import bond_issuance, coupon, court_order, dvp
from node.tools.demo.cast import (
    ADMIN,
    AGENT,
    CASH,
    ESCROW,
    INVESTOR_A,
    INVESTOR_B,
    INVESTOR_C,
    INVESTOR_D,
    ISSUER,
    KYC,
    LABELS,
)
from node.tools.demo.story import DemoError, DemoResult, Story, units

SCENARIOS: Final = (bond_issuance, coupon, dvp, court_order)


async def open_accounts(story: Story) -> None:
    """The opening of the story: accounts, roles, and cash for the issuer and the investors."""
    story.say("Setup: the consortium admin opens the accounts of this story and grants their roles")
    ops: list[Operation] = []
    for account in (ISSUER, KYC, AGENT, ESCROW, INVESTOR_A, INVESTOR_B, INVESTOR_C, INVESTOR_D):
        ops.append(RegisterAccount(ADMIN, account, (story.keys[account].public_key,), 1, None))
    ops += [GrantRole(ADMIN, ISSUER, "issuer"), GrantRole(ADMIN, KYC, "kyc_provider"),
            GrantRole(ADMIN, AGENT, "agent")]
    await story.attempt(story.who(ADMIN), "register 8 accounts; grant issuer, kyc_provider, agent roles", ops,
                        [ADMIN], codes.OK)
    cash = [Issue(ADMIN, CASH, a, units(x)) for a, x in
            ((ISSUER, "50000.00"), (INVESTOR_A, "20000.00"), (INVESTOR_B, "20000.00"),
             (INVESTOR_C, "20000.00"), (INVESTOR_D, "20000.00"))]
    await story.attempt(story.who(ADMIN), f"issue {CASH} cash tokens to the issuer and investors A-D", cash,
                        [ADMIN], codes.OK)


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
        await open_accounts(story)
        for scenario in SCENARIOS:
            await scenario.play(story)
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
