"""The protocol a block is executed under: everything besides the bytes that nodes must share to compute the same
state roots, as one value given to apply_block, apply_transaction and dry_run.

    Protocol(operations, engine, pop_verifier)

    operations     the operation set (ledger.operation_set.OperationSet): kinds, processors, event kinds
    engine         the rule engine (ledger.rules.RuleEngine; the contracts layer's ContractsEngine on a node)
    pop_verifier   the BLS proof-of-possession check governance uses when it adds or rotates a validator's BLS key
                   (ledger.governance_state.PopVerifier; consensus.bls.pop_verify on a node — the ledger does not import
                   the consensus layer, so the caller passes it)

A node composes its protocol in one place (node/chain/protocol.py). Tests and tools build their own, e.g.
`Protocol(CORE_OPERATIONS, CoreRuleEngine(), consensus.bls.pop_verify)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.governance_state import PopVerifier
from ledger.operation_set import OperationSet
from ledger.rules import RuleEngine

__all__ = ["PROTOCOL_VERSION", "Protocol"]

# The protocol version this code implements (docs/protocol.md §10: what each version changed, and the rules).
PROTOCOL_VERSION = 3


@dataclass(frozen=True, slots=True)
class Protocol:
    operations: OperationSet
    engine: RuleEngine
    pop_verifier: PopVerifier

    def __post_init__(self) -> None:
        assert isinstance(self.operations, OperationSet), "operations is an OperationSet"
        assert callable(self.pop_verifier), "a pop verifier is a function (public_key, proof) -> bool"
