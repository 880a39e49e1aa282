"""`ledger demo`: the institutions' playbook played as a story against a multi-node network through the HTTP API.

    result = await play(api_urls, admin_seed, out=sys.stdout, lockup_seconds=12)     scenarios 1-4
    report = play_onboarding(net, out=sys.stdout, rate=20)                           scenario 7, on node processes

The package, one idea a module:
    story.py          how a step is played and printed: who does what, the ledger's answer (code, name, message)
                      against the expected one, balance tables, the supply check (Story, DemoResult, DemoError)
    cast.py           the accounts and assets of scenarios 1-4
    bond_issuance.py  scenario 1: bond issuance to eligible investors with a lock-up
    coupon.py         scenario 2: a coupon in CASH-T at a record height
    dvp.py            scenario 3: delivery versus payment
    court_order.py    scenario 4: court-order freeze, forced transfer to escrow, unfreeze, audit trail
    play.py           the entry of scenarios 1-4: the opening (accounts, roles, cash), then each scenario in order
    onboarding.py     scenario 7: governance adds a validator, removes one, rotates keys, under load

The network is node.tools.testnet.Testnet: a running testnet of node processes (`ledger testnet up`) whose nodes
serve the API, or, when there is none, the same network started with its nodes inside the demo's process
(`Testnet.create(..., in_process=True)`); scenario 7 needs node processes. node/cli/demo.py chooses.

Time: the 180-day lock-up of scenario 1 cannot pass on a live chain, so the demo attaches the same rule with a
lock-up of `lockup_seconds` (block time) and says so; "day 10" is a transfer inside the lock-up, "day 181" one after it.
"""

from node.tools.demo.onboarding import OnboardingReport, play_onboarding
from node.tools.demo.play import play
from node.tools.demo.story import DemoError, DemoResult

__all__ = ["DemoError", "DemoResult", "OnboardingReport", "play", "play_onboarding"]
