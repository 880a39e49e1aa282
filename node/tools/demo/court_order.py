"""Scenario 4 of `ledger demo`: a court-order freeze, a forced transfer to escrow, an unfreeze, the audit trail.

The agent freezes 300.00 of A's BOND-A; A cannot move more than the unfrozen amount (INSUFFICIENT_ACTIVE_BALANCE);
the agent force-transfers the frozen units to escrow (events printed), freezes 100.00 more on a second order and
unfreezes them when it is lifted. The auditor then reads A's history: every action with its reason, height and
transaction.
"""

from __future__ import annotations

from ledger import codes
from ledger.operations import ForcedTransfer, FreezeAmount, Transfer, TransferLeg, UnfreezeAmount
from node.tools.demo.cast import AGENT, BOND, CASH, ESCROW, INVESTOR_A, INVESTOR_B
from node.tools.demo.story import Story, describe_event, fmt, units

NUMBER = 4
TITLE = "Court-order freeze, forced transfer to escrow, unfreeze, audit trail"


async def play(story: Story) -> None:
    story.say(f"\nScenario {NUMBER} - {TITLE}")
    reason = "court order 2026/117: freeze pending judgment"
    await story.table("before", [INVESTOR_A, ESCROW], [BOND])
    await story.attempt(story.who(AGENT), f"freeze 300.00 of A's {BOND} ({reason})",
                        [FreezeAmount(AGENT, BOND, INVESTOR_A, units("300.00"), reason)], [AGENT], codes.OK)
    a = await story.balance(INVESTOR_A, BOND)
    story.say(f"    A now: available {fmt(a['available'])}, frozen {fmt(a['frozen'])}")
    too_much = a["available"] + units("1.00")
    await story.attempt(story.who(INVESTOR_A), f"transfer {fmt(too_much)} (more than the unfrozen amount) to B",
                        [Transfer(INVESTOR_A, BOND, (TransferLeg(INVESTOR_B, too_much),))], [INVESTOR_A],
                        codes.INSUFFICIENT_ACTIVE_BALANCE)
    forced = await story.attempt(story.who(AGENT), "force-transfer the 300.00 frozen units to escrow",
                                 [ForcedTransfer(AGENT, BOND, INVESTOR_A, ESCROW, units("300.00"), True,
                                                 "court order 2026/117: transfer to escrow")], [AGENT], codes.OK)
    for ev in forced.events:
        story.say(f"      event {describe_event(ev)}")
    await story.attempt(story.who(AGENT), "freeze 100.00 more of A's BOND-A (a second order)",
                        [FreezeAmount(AGENT, BOND, INVESTOR_A, units("100.00"), "court order 2026/118")], [AGENT],
                        codes.OK)
    await story.attempt(story.who(AGENT), "unfreeze those 100.00 (order lifted)",
                        [UnfreezeAmount(AGENT, BOND, INVESTOR_A, units("100.00"), "order 2026/118 lifted")],
                        [AGENT], codes.OK)
    await story.table("after", [INVESTOR_A, ESCROW], [BOND])
    story.say("    audit trail of A (who, when, why), as the auditor reads it:")
    history = await story.reader.history(INVESTOR_A, limit=50)
    items = history.get("items", []) if isinstance(history, dict) else list(history)
    shown = 0
    for item in sorted((i for i in items if isinstance(i, dict)), key=lambda i: (i.get("height", 0),
                                                                               i.get("position", 0))):
        for ev in item.get("events", ()):
            attrs = ev.get("attrs", {}) if isinstance(ev, dict) and isinstance(ev.get("attrs"), dict) else {}
            if "reason" in attrs:
                story.say(f"      height {item.get('height')}, tx {str(item.get('tx_id'))[:12]}: "
                          f"{describe_event(ev)}")
                shown += 1
    if not shown:
        story.say(f"      (history answer: {str(history)[:400]})")
    await story.supply_check([BOND, CASH])
