"""Dry-run: "can this transaction happen now?" with exactly the codes real execution would produce.

`check` runs the real state transition (ledger.transition.dry_run) under the caller's protocol (a node's: the
contracts operation set and engine) on a throw-away overlay of `state`: same envelope checks, same operation
processors, same rules, same order, so the answer is the
receipt execution would give in `block` — for any transaction, including multi-leg transfers and settlements —
and nothing is written.

`check_operations` answers the same question for operations that are not signed yet (ERC-1594 canTransfer
style): it runs them as if `signers` had signed (skipping only the envelope and signature checks), which gives the
code a correctly signed transaction with those signers would get.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger import codes
from ledger.context import BlockContext, TxContext
from ledger.errors import Refused
from ledger.protocol import Protocol
from ledger.state import Overlay, StateReader
from ledger.transaction import SignedTransaction
from ledger.transition import dry_run, start_block

__all__ = ["DryRun", "check", "check_operations"]

NO_TX_ID = bytes(32)


@dataclass(frozen=True, slots=True)
class DryRun:
    """code 0 = allowed; otherwise the reason code, its table name and message, the failing operation's index
    (None when the refusal is not tied to an operation) and the detail real execution would record."""

    code: int
    name: str
    message: str
    failed_op: int | None
    detail: str

    @property
    def allowed(self) -> bool:
        return self.code == codes.OK


def _result(code: int, failed_op: int | None, detail: str) -> DryRun:
    entry = codes.describe(code)
    name = entry.name if entry is not None else "UNKNOWN"
    return DryRun(code, name, codes.message_for(code), failed_op, detail)


def check(
    state: StateReader | Overlay,
    block: BlockContext,
    tx: SignedTransaction | bytes,
    protocol: Protocol,
    verify_signatures: bool = True,
) -> DryRun:
    """The outcome `tx` would have if executed in `block` on top of `state` under `protocol`. Writes nothing."""
    receipt = dry_run(state, block, tx, protocol=protocol, verify_signatures=verify_signatures)
    return _result(receipt.code, receipt.failed_op, receipt.detail)


def check_operations(
    state: StateReader | Overlay,
    block: BlockContext,
    signers: Iterable[str],
    operations: Sequence[Any],
    protocol: Protocol,
) -> DryRun:
    """The outcome of `operations`, applied atomically in order, as if signed by `signers`, under `protocol`.
    Writes nothing. An operation outside the protocol's operation set is refused with UNKNOWN_VARIANT."""
    block_state = Overlay(state)
    start_block(block_state, block, protocol)  # as a block would: holds due at its time are released first
    ctx = TxContext(Overlay(block_state), block, NO_TX_ID, tuple(sorted(set(signers))), protocol)
    dispatch = protocol.operations.dispatch
    try:
        for i, op in enumerate(operations):
            ctx.op_index = i
            processor = dispatch.get(type(op))
            if processor is None:
                raise Refused(codes.UNKNOWN_VARIANT, f"no processor for operation {type(op).__name__}")
            processor(ctx, op)
        ctx.check_transaction_rules()
    except Refused as refusal:
        return _result(refusal.code, ctx.op_index, refusal.message)
    return _result(codes.OK, None, "")
