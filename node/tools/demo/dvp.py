"""Scenario 3 of `ledger demo`: delivery versus payment, one transaction that moves both legs or neither.

A (seller) and D (buyer) settle 2,000.00 BOND-A against 1,960.00 CASH-T, signed by both. Refused, with no leg
moved: a settlement delivering to unverified C (RECIPIENT_NOT_ELIGIBLE), one missing the buyer's signature
(THRESHOLD_NOT_MET), one whose settlement expiry height has passed (SETTLEMENT_EXPIRED).
"""

from __future__ import annotations

import contracts.codes as cc
from ledger import codes
from ledger.operations import Settle, SettlementLeg
from node.tools.demo.cast import BOND, CASH, INVESTOR_A, INVESTOR_C, INVESTOR_D
from node.tools.demo.story import Story, units

NUMBER = 3
TITLE = "Delivery versus payment (one transaction, both legs or neither)"


async def play(story: Story) -> None:
    story.say(f"\nScenario {NUMBER} - {TITLE}")
    expiry = await story.head() + 50
    dvp = [Settle(INVESTOR_A, "DVP-1", expiry, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_D, units("2000.00")),
                                                SettlementLeg(CASH, INVESTOR_D, INVESTOR_A,
                                                              units("1960.00"))))]
    await story.table("before", [INVESTOR_A, INVESTOR_D, INVESTOR_C], [BOND, CASH])
    await story.attempt("A (seller) and D (buyer)", "settle DVP-1: 2,000.00 BOND-A A->D against 1,960.00 CASH-T "
                        "D->A, signed by both", dvp, [INVESTOR_A, INVESTOR_D], codes.OK)
    bad = [Settle(INVESTOR_A, "DVP-2", expiry, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_C, units("100.00")),
                                                SettlementLeg(CASH, INVESTOR_C, INVESTOR_A, units("98.00"))))]
    await story.attempt("A and C (not eligible)", "settle DVP-2: BOND-A to unverified C against cash", bad,
                        [INVESTOR_A, INVESTOR_C], cc.RECIPIENT_NOT_ELIGIBLE)
    half = [Settle(INVESTOR_A, "DVP-3", expiry, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_D, units("100.00")),
                                                 SettlementLeg(CASH, INVESTOR_D, INVESTOR_A, units("98.00"))))]
    await story.attempt("A alone", "settle DVP-3 with the buyer's signature missing", half, [INVESTOR_A],
                        codes.THRESHOLD_NOT_MET, declared=[INVESTOR_A, INVESTOR_D])
    stale = await story.head()
    late = [Settle(INVESTOR_A, "DVP-4", stale, (SettlementLeg(BOND, INVESTOR_A, INVESTOR_D, units("100.00")),
                                                SettlementLeg(CASH, INVESTOR_D, INVESTOR_A, units("98.00"))))]
    await story.wait_height(stale + 1)
    await story.attempt("A and D", f"settle DVP-4 whose settlement expiry height {stale} has passed", late,
                        [INVESTOR_A, INVESTOR_D], codes.SETTLEMENT_EXPIRED)
    await story.table("after (only DVP-1 moved, both legs)", [INVESTOR_A, INVESTOR_D, INVESTOR_C], [BOND, CASH])
    await story.supply_check([BOND, CASH])
