"""BlockOutcome.balance_changes: every balance write of a block, per transaction, as bucket deltas — what indexers
record as balance movements (docs/indexer.md). Summed per (asset, account) they are exactly the block's change of
each Balance record, whatever the operations (issue, transfer, holds executed / released / expired by block time,
freezes, forced transfers, redemptions); a refused transaction contributes nothing."""

from __future__ import annotations

from collections import defaultdict

from ledger import operations as o
from ledger.records import ZERO_BALANCE
from ledger.state import decode_value
from ledger.state_keys import parse_balance_key
from ledger.transition import BLOCK_EVENTS_TX_ID
from tests.ledger.world import standard_world

ISSUER, AGENT, ALICE, BOB = "treasury@issuer-co", "agent@issuer-co", "alice@bank-a", "bob@bank-b"


def _check_block(w, txs, time_step: int = 1):  # type: ignore[no-untyped-def]
    before = {k: v for k, v in w.ledger.state.items() if k[:1] == b"B"}  # the bytes before the block
    w.time += time_step
    outcome = w.ledger.apply(list(txs), time=w.time)
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for tx_id, asset, account, da, dh, df in outcome.balance_changes:
        assert (da, dh, df) != (0, 0, 0)
        assert tx_id == BLOCK_EVENTS_TX_ID or any(r.tx_id == tx_id and r.code == 0 for r in outcome.receipts)
        s = sums[(asset, account)]
        s[0] += da
        s[1] += dh
        s[2] += df
    changed = {}
    for key in outcome.changes:
        if key[:1] == b"B":
            old = decode_value(key, before[key]) if key in before else ZERO_BALANCE
            new = w.ledger.get(key) or ZERO_BALANCE
            delta = [new.available - old.available, new.held - old.held, new.frozen - old.frozen]
            if delta != [0, 0, 0]:
                changed[parse_balance_key(key)] = delta
    assert {k: v for k, v in sums.items() if v != [0, 0, 0]} == changed
    return outcome


def test_balance_changes_sum_to_the_state_change_of_every_block() -> None:
    w = standard_world()
    tx = w.tx
    _check_block(
        w, [tx([ISSUER], o.Issue(ISSUER, "CASH-T", ALICE, 10_000)), tx([ISSUER], o.Issue(ISSUER, "CASH-T", BOB, 5_000))]
    )
    out = _check_block(
        w,
        [
            tx([ALICE], o.Transfer(ALICE, "CASH-T", (o.TransferLeg(BOB, 100), o.TransferLeg(BOB, 50)))),
            tx([ALICE], o.CreateHold(ALICE, "h1", "CASH-T", ALICE, BOB, AGENT, 700, w.time + 5)),
            tx([ALICE], o.CreateHold(ALICE, "h2", "CASH-T", ALICE, BOB, AGENT, 300, w.time + 100)),
            tx([BOB], o.Transfer(BOB, "CASH-T", (o.TransferLeg(ALICE, 10**9),))),  # refused: moves nothing
        ],
    )
    assert out.receipts[3].code != 0
    assert not any(c[0] == out.receipts[3].tx_id for c in out.balance_changes)
    out = _check_block(
        w,
        [
            tx([AGENT], o.ExecuteHold(AGENT, "h2")),
            tx([AGENT], o.FreezeAmount(AGENT, "CASH-T", BOB, 400, "inquiry")),
            tx([AGENT], o.ForcedTransfer(AGENT, "CASH-T", BOB, ALICE, 100, True, "court order")),
            tx([BOB], o.Redeem(BOB, "CASH-T", 20)),
        ],
    )
    assert [r.code for r in out.receipts] == [0, 0, 0, 0]
    expired = _check_block(w, [], time_step=10)  # h1's expiry passed: the block's own step releases it
    assert [c[0] for c in expired.balance_changes] == [BLOCK_EVENTS_TX_ID]
    assert expired.balance_changes[0][1:] == ("CASH-T", ALICE, 700, -700, 0)
