"""The invariants of a simulated run, checked at every step (commits, outgoing messages) and at the end.

    agreement     every node commits the same block id and state root at every height (whatever path committed
                  it: consensus, a commit after a gap, block sync; across crashes, restarts and wipes)
    receipts      every transaction acknowledged as committed (some node committed it) is, on every node that
                  reaches its height, committed at that height with the same result code
    epochs        every node switches to the same epoch at the same height with the same validator set
    supply        at the end, every node's whole state passes ledger.invariants.audit_state (per asset: issued
                  - redeemed == balances + held + frozen, every hold and position consistent); every block's
                  execution already asserts its own supply delta (ledger.invariants.assert_block_supply)
    no double vote  no honest node signs two votes (or two proposals) in one round of one epoch, across restarts
    no halt       no honest node halts (its state contradicting the certified chain) or restarts its replica after
                  an unexpected error
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from consensus.codec import CodecError
from consensus.messages import Proposal, Timeout, Vote, decode_message
from ledger.invariants import InvariantViolation, audit_state
from node.chain.execution import CommittedBlock
from node.net.messages import CH_CONSENSUS

if TYPE_CHECKING:
    from node.tools.simulation.machine import Machine
    from node.tools.simulation.workload import Workload

__all__ = ["Checks"]

# Counters of the driver that only an unexpected exception increments.
FAILURE_COUNTERS = ("replica_restarts", "startup_failures", "resync_failures", "gap_fill_failures", "sync_failures",
                    "propose_failures", "timer_failures")


class Checks:
    def __init__(self, workload: Workload, now: collections.abc.Callable[[], int]) -> None:
        self._workload = workload
        self._now = now
        self.violations: list[str] = []
        self.blocks: dict[int, tuple[bytes, bytes]] = {}  # height -> (block id, state root), first commit seen
        self.acknowledged: dict[bytes, tuple[int, int]] = {}  # tx id -> (height, result code), first commit seen
        self.epochs: dict[int, tuple[int, tuple]] = {}  # epoch -> (start height, validator entries)
        self._signed: dict[tuple[str, int, int, str], bytes] = {}  # (node, epoch, round, kind) -> what it signed
        # Recovery (docs/consensus.md §13): the highest round each node signed anything in, by (node, epoch); the
        # floor a wiped node must stay above in an epoch it signed in before the wipe; wiped keys seen signing again.
        self._signed_max: dict[tuple[str, int], int] = {}
        self._wiped_floor: dict[tuple[str, int], int] = {}
        self._signed_again: set[tuple[str, int]] = set()
        self.counters: collections.Counter[str] = collections.Counter()

    def violation(self, text: str) -> None:
        self.violations.append(f"t={self._now()} {text}")

    # -- at every step ------------------------------------------------------------------------------------------

    def committed(self, machine: Machine, block: CommittedBlock) -> None:
        """A commit listener on every node."""
        self.counters["commits"] += 1
        # Copies of already committed transactions the block carries again (at every node's commit; a leader
        # proposing on a branch it had not executed made them: docs/benchmarks.md, "Copies ...: the cause").
        self.counters["replayed_copies"] += block.tx_count - block.newly_final_txs
        seen = self.blocks.setdefault(block.height, (block.block_id, block.state_root))
        if seen != (block.block_id, block.state_root):
            self.violation(f"AGREEMENT: {machine.node_id} committed another block or root at height {block.height}")
        store = machine.app.store if machine.app is not None else None
        for receipt in block.receipts:
            found = None if store is None else store.get_tx(receipt.tx_id)
            if found is None or found[0] != block.height:
                continue  # refused before execution (a replayed copy, a bad signature): not this block's
            first = self.acknowledged.setdefault(receipt.tx_id, (block.height, receipt.code))
            if first != (block.height, receipt.code):
                self.violation(f"{machine.node_id} committed tx {receipt.tx_id.hex()[:16]} at {block.height} "
                               f"with code {receipt.code}, first seen at {first[0]} with code {first[1]}")
            self._workload.committed(receipt.tx_id, receipt.code)
        if block.next_epoch is not None:
            rec = block.next_epoch
            entry = (rec.start_height, tuple((v.node_id, v.identity_key, v.bls_key, v.power) for v in rec.validators))
            if self.epochs.setdefault(rec.epoch, entry) != entry:
                self.violation(f"{machine.node_id} entered epoch {rec.epoch} differently (start or validators)")
            self.counters["epoch_switches"] += 1

    def outgoing(self, machine: Machine, data: bytes) -> None:
        """A consensus message an honest node sends: it never signs two different things in one round."""
        if not data or data[0] != CH_CONSENSUS:
            return
        try:
            message = decode_message(data[1:])
        except CodecError:
            self.violation(f"honest {machine.node_id} sent a consensus message that does not decode")
            return
        signed = (message.epoch, message.round) if isinstance(message, Vote | Timeout) else \
            (message.block.header.epoch, message.block.header.round) if isinstance(message, Proposal) else None
        if signed is not None:
            at = (machine.node_id, signed[0])
            floor = self._wiped_floor.get(at)
            if floor is not None:
                if signed[1] <= floor:
                    self.violation(f"RECOVERY: honest {machine.node_id}, wiped in epoch {signed[0]}, signed a "
                                   f"{type(message).__name__} in round {signed[1]} <= {floor}, signed in before")
                elif isinstance(message, Vote) and at not in self._signed_again:
                    self._signed_again.add(at)
                    self.counters["wiped_voted_again_in_epoch"] += 1
            self._signed_max[at] = max(self._signed_max.get(at, 0), signed[1])
        if isinstance(message, Vote):
            key = (machine.node_id, message.epoch, message.round, "vote")
            value = message.block_id + message.state_root
        elif isinstance(message, Proposal):
            h = message.block.header
            key, value = (machine.node_id, h.epoch, h.round, "proposal"), message.block.id
        else:
            return
        if self._signed.setdefault(key, value) != value:
            self.violation(f"DOUBLE SIGN: honest {machine.node_id} signed two {key[3]}s in epoch {key[1]} "
                           f"round {key[2]}")

    def wiped(self, machine: Machine) -> None:
        """The machine's data directory is gone: in every epoch it signed in, it must now stay above its rounds."""
        for (node, epoch), top in self._signed_max.items():
            if node == machine.node_id:
                self._wiped_floor[(node, epoch)] = max(self._wiped_floor.get((node, epoch), 0), top)
                self._signed_again.discard((node, epoch))

    def halted(self, machine: Machine, code: str, message: str) -> None:
        self.violation(f"{machine.node_id} halted: {code}: {message}")

    # -- at the end ---------------------------------------------------------------------------------------------

    def final(self, machines: list[Machine]) -> None:
        for machine in machines:
            if not machine.up or machine.app is None or machine.driver is None:
                continue
            for name in FAILURE_COUNTERS:
                if machine.driver.counters[name] and machine.honest:
                    self.violation(f"{machine.node_id}: {machine.driver.counters[name]} {name} (unexpected errors)")
            store = machine.app.store
            head = machine.app.head.height
            for height in range(1, head + 1):
                expected = self.blocks.get(height)
                raw = store.get_block(height)
                if expected is None or raw is None:
                    self.violation(f"{machine.node_id} holds height {height} that no commit reported")
                    continue
                if machine.app.certified(height) is None or machine.app.certified(height)[0].id != expected[0] \
                        or store.state_root_at(height) != expected[1]:
                    self.violation(f"AGREEMENT at rest: {machine.node_id} stores another block or root at {height}")
                self.counters["heights_checked"] += 1
            for tx_id, (height, code) in self.acknowledged.items():
                if height > head:
                    continue
                found = store.get_tx(tx_id)
                if found is None or found[0] != height:
                    self.violation(f"{machine.node_id} lacks acknowledged tx {tx_id.hex()[:16]} at height {height}")
                self.counters["acknowledged_checked"] += 1
            try:
                audit_state(store.iter_state())
            except InvariantViolation as exc:
                self.violation(f"SUPPLY: {machine.node_id} state at {head}: {exc}")
            self.counters["supply_audits"] += 1
