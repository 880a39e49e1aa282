"""Scenario 1 of `ledger demo`: bond issuance to eligible investors with a lock-up.

The issuer defines BOND-A (cap 1,000,000.00; eligibility by the KYC provider's claims; countries CN/HK/SG; a
lock-up per issuance lot; the agent named), the KYC provider verifies investors A, B and D, and the issuer issues to
A and B. Refused as the rules say: issuing to unverified C (RECIPIENT_NOT_ELIGIBLE), A's transfer inside the lock-up
("day 10": UNITS_LOCKED, the dry-run answering the same first), issuing above the cap (SUPPLY_CAP_EXCEEDED). Once the
lock-up passed ("day 181") the same transfer goes through. The 180-day lock-up is attached as a lock-up of
`story.lockup_seconds` of block time, and the story says so.
"""

from __future__ import annotations

import asyncio
import time

import contracts.codes as cc
from contracts.operations import SetClaim
from ledger import codes
from ledger.operations import DefineAsset, Issue, RuleSpec, Transfer, TransferLeg
from node.tools.demo.cast import (
    AGENT,
    BOND,
    CASH,
    INVESTOR_A,
    INVESTOR_B,
    INVESTOR_C,
    INVESTOR_D,
    ISSUER,
    KYC,
    ONE_YEAR_S,
)
from node.tools.demo.story import Story, units

NUMBER = 1
TITLE = "Bond issuance to eligible investors with a lock-up"


async def play(story: Story) -> None:
    story.say(f"\nScenario {NUMBER} - {TITLE}")
    days = story.lockup_seconds
    rules = (
        RuleSpec("eligibility", (("providers", KYC),)),
        RuleSpec("countries", (("allow", "CN,HK,SG"),)),
        RuleSpec("lockup", (("seconds", days),)),
    )
    story.say(f"    (the 180-day lock-up is attached as a {days}-second lock-up so the story can pass it)")
    await story.attempt(story.who(ISSUER), f"define {BOND}: 2 decimals, cap 1,000,000.00, eligibility by {KYC}, "
                        f"countries CN/HK/SG, lock-up per issuance lot, agent {AGENT}",
                        [DefineAsset(ISSUER, BOND, 2, units("1000000.00"), "Bond A 2031", "", (), (AGENT,),
                                     rules)], [ISSUER], codes.OK)
    now = int(time.time())
    await story.attempt(story.who(KYC), f"verify {INVESTOR_A} (CN) and {INVESTOR_B} (SG) and {INVESTOR_D} (HK)",
                        [SetClaim(KYC, INVESTOR_A, "CN", 2, now + ONE_YEAR_S),
                         SetClaim(KYC, INVESTOR_B, "SG", 2, now + ONE_YEAR_S),
                         SetClaim(KYC, INVESTOR_D, "HK", 1, now + ONE_YEAR_S)], [KYC], codes.OK)
    await story.table("balances before", [INVESTOR_A, INVESTOR_B, INVESTOR_C], [BOND])
    await story.attempt(story.who(ISSUER), f"issue 10,000.00 {BOND} to A and 5,000.00 to B",
                        [Issue(ISSUER, BOND, INVESTOR_A, units("10000.00")),
                         Issue(ISSUER, BOND, INVESTOR_B, units("5000.00"))], [ISSUER], codes.OK)
    issued_at = time.monotonic()
    await story.attempt(story.who(ISSUER), f"issue 1,000.00 {BOND} to unverified {INVESTOR_C}",
                        [Issue(ISSUER, BOND, INVESTOR_C, units("1000.00"))], [ISSUER],
                        cc.RECIPIENT_NOT_ELIGIBLE)
    move = [Transfer(INVESTOR_A, BOND, (TransferLeg(INVESTOR_B, units("1000.00")),))]
    await story.dry_run("'day 10': can A transfer 1,000.00 to B?", move, [INVESTOR_A], cc.UNITS_LOCKED)
    await story.attempt(story.who(INVESTOR_A), "'day 10': transfer 1,000.00 to B (inside the lock-up)", move,
                        [INVESTOR_A], cc.UNITS_LOCKED)
    await story.attempt(story.who(ISSUER), f"issue 990,000.01 {BOND} to A (15,000.00 are out: above the cap)",
                        [Issue(ISSUER, BOND, INVESTOR_A, units("985000.01"))], [ISSUER],
                        codes.SUPPLY_CAP_EXCEEDED)
    wait = story.lockup_seconds + 2 - (time.monotonic() - issued_at)
    if wait > 0:
        story.say(f"    ... {wait:.0f}s pass: the lock-up is over ('day 181')")
        await asyncio.sleep(wait)
    await story.wait_height(await story.head() + 1)
    await story.dry_run("'day 181': can A transfer 1,000.00 to B?", move, [INVESTOR_A], codes.OK)
    await story.attempt(story.who(INVESTOR_A), "'day 181': transfer 1,000.00 to B", move, [INVESTOR_A], codes.OK)
    await story.table("balances after", [INVESTOR_A, INVESTOR_B, INVESTOR_C], [BOND])
    await story.supply_check([BOND, CASH])
