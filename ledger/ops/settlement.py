"""Atomic multi-leg settlement (DvP / DvD).

Every leg's sender must have signed the transaction; every leg runs under its asset's rules; the legs apply in
order on the transaction overlay, so if any leg is refused nothing moves. Refused after `expiry_height`.
"""

from __future__ import annotations

from ledger import codes, rules
from ledger.context import TxContext
from ledger.errors import Refused
from ledger.operations import Settle
from ledger.ops.assets import move_units


def settle(tx: TxContext, op: Settle) -> None:
    tx.actor(op.actor)
    if tx.block.height > op.expiry_height:
        raise Refused(codes.SETTLEMENT_EXPIRED, f"settlement {op.reference} expired at height {op.expiry_height}")
    for i, leg in enumerate(op.legs):
        if leg.sender not in tx.signers:
            raise Refused(codes.LEG_SENDER_NOT_SIGNER, f"leg {i}: {leg.sender} did not sign")
    for i, leg in enumerate(op.legs):
        asset = tx.asset(leg.asset)
        tx.account(leg.sender)
        tx.account(leg.recipient)
        if leg.sender == leg.recipient:
            raise Refused(codes.SELF_TRANSFER, f"leg {i} sends to its own sender")
        mv = tx.movement(rules.SETTLEMENT_LEG, leg.asset, asset, leg.sender, leg.recipient, leg.amount, op.actor)
        tx.check_rules(mv)
        move_units(tx, leg.asset, leg.sender, leg.recipient, leg.amount)
        tx.rules_succeeded(mv)
        tx.emit(
            "settlement_leg",
            reference=op.reference,
            leg=i,
            asset=leg.asset,
            sender=leg.sender,
            recipient=leg.recipient,
            amount=leg.amount,
        )
    tx.emit("settled", actor=op.actor, reference=op.reference, legs=len(op.legs))
