"""Scenario 2 of `ledger demo`: a coupon paid in CASH-T to the holders of BOND-A at a record height.

The issuer announces coupon C1 (2/7 CASH-T per unit held at the record height, the rounding remainder to escrow);
after the record height B sells 500.00 to D, who therefore gets no coupon; the issuer pays (one batch) and A and B
are paid pro rata to their holdings at the record height (events printed); paying again is refused
(ACTION_COMPLETED).
"""

from __future__ import annotations

import contracts.codes as cc
from contracts.operations import AnnounceAction, PayAction
from ledger import codes
from ledger.operations import Transfer, TransferLeg
from node.tools.demo.cast import BOND, CASH, ESCROW, INVESTOR_A, INVESTOR_B, INVESTOR_D, ISSUER
from node.tools.demo.story import Story, describe_event, units

NUMBER = 2
TITLE = "Coupon payment in CASH-T at a record height"


async def play(story: Story) -> None:
    story.say(f"\nScenario {NUMBER} - {TITLE}")
    record = await story.head() + 8  # room for the announcement to be included before it
    await story.table("holdings before", [INVESTOR_A, INVESTOR_B, INVESTOR_D, ISSUER, ESCROW], [BOND, CASH])
    await story.attempt(story.who(ISSUER), f"announce coupon C1 on {BOND}: 2/7 {CASH} per unit held at record "
                        f"height {record}, rounding remainder to {ESCROW}",
                        [AnnounceAction(ISSUER, "BOND-A-C1", 1, BOND, CASH, ISSUER, ESCROW, record, 2, 7)],
                        [ISSUER], codes.OK)
    await story.wait_height(record + 1)
    await story.attempt(story.who(INVESTOR_B), f"after the record height, sell 500.00 {BOND} to D (the buyer)",
                        [Transfer(INVESTOR_B, BOND, (TransferLeg(INVESTOR_D, units("500.00")),))],
                        [INVESTOR_B], codes.OK)
    paid = await story.attempt(story.who(ISSUER), "pay coupon C1 (one batch, up to 64 holders)",
                               [PayAction(ISSUER, "BOND-A-C1", 64)], [ISSUER], codes.OK)
    for ev in paid.events:
        story.say(f"      event {describe_event(ev)}")
    await story.attempt(story.who(ISSUER), "pay coupon C1 again", [PayAction(ISSUER, "BOND-A-C1", 64)],
                        [ISSUER], cc.ACTION_COMPLETED)
    await story.table("holdings after (D bought after the record height: no coupon)",
                      [INVESTOR_A, INVESTOR_B, INVESTOR_D, ISSUER, ESCROW], [BOND, CASH])
    await story.supply_check([BOND, CASH])
