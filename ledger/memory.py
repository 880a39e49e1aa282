"""An in-memory ledger: genesis, apply blocks, commit to a dict and a MemoryNodes tree.

Used by tests, the property test, simulations and the benchmark; the node layer does the same over LedgerStore.
Blocks run under the `protocol` it is given (ledger.protocol.Protocol: operation set, rule engine, PoP check).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.context import BlockContext
from ledger.events import Receipt
from ledger.genesis import GenesisSpec, genesis_changes
from ledger.invariants import audit_state
from ledger.protocol import Protocol
from ledger.smt import MemoryNodes, SparseMerkleTree
from ledger.state import MemoryState, Overlay
from ledger.state_keys import tree_changes
from ledger.transaction import SignedTransaction
from ledger.transition import BlockOutcome, apply_block, dry_run


class InMemoryLedger:
    __slots__ = ("chain_id", "height", "nodes", "protocol", "root", "state", "time")

    def __init__(self, spec: GenesisSpec, protocol: Protocol) -> None:
        self.chain_id = spec.chain_id
        self.protocol = protocol
        self.state = MemoryState()
        self.nodes = MemoryNodes()
        changes = genesis_changes(spec)
        self.state.apply(changes)
        update = SparseMerkleTree(self.nodes).update(tree_changes(changes))
        self.nodes.put_nodes(update.nodes)
        self.root = update.root
        self.height = 0
        self.time = spec.time

    @property
    def tree(self) -> SparseMerkleTree:
        return SparseMerkleTree(self.nodes, self.root)

    def next_block(self, time: int | None = None) -> BlockContext:
        return BlockContext(self.chain_id, self.height + 1, self.time if time is None else time)

    def execute(self, transactions: Sequence[SignedTransaction | bytes], time: int | None = None) -> BlockOutcome:
        """Apply the next block without committing it."""
        return apply_block(self.state, self.next_block(time), transactions, tree=self.tree, protocol=self.protocol)

    def commit(self, outcome: BlockOutcome) -> None:
        assert outcome.height == self.height + 1
        self.state.apply(outcome.changes)
        self.nodes.put_nodes(outcome.smt_nodes)
        self.root = outcome.state_root
        self.height = outcome.height
        meta = outcome.overlay.get(b"M")
        self.time = meta.time

    def apply(self, transactions: Sequence[SignedTransaction | bytes], time: int | None = None) -> BlockOutcome:
        outcome = self.execute(transactions, time)
        self.commit(outcome)
        return outcome

    def dry_run(
        self, tx: SignedTransaction | bytes, time: int | None = None, verify_signatures: bool = True
    ) -> Receipt:
        return dry_run(self.state, self.next_block(time), tx, protocol=self.protocol, verify_signatures=verify_signatures)

    def get(self, key: bytes) -> Any:
        """The committed record under `key` (None when absent)."""
        return Overlay(self.state).get(key)

    def audit(self) -> dict[str, int]:
        return audit_state(self.state.items())
