"""The node's composition: the one place that decides which operation set, rule engine, proof-of-possession check
and BLS backend a node, its API, its tools and the client SDK use. Nothing is registered at import; every node/
module that encodes, decodes or executes transactions takes these from here.

    OPERATIONS                  the operation set: the ledger's core kinds + the contracts layer's (contracts.OPERATIONS)
    default_engine()            a new rule engine: the contracts layer's ContractsEngine
    node_protocol(engine=None)  the ledger.protocol.Protocol blocks execute under: OPERATIONS, the engine (a new
                                default_engine() when None) and consensus.bls.pop_verify
    bls_backend(name=None)      the BLS backend of this process: `name` (the node config's `[bls] backend`), else
                                the environment variable LEDGER_BLS_BACKEND when set and not empty, else
                                consensus.bls's default (blspy when it can be imported, else py_ecc)

The operation set and the engine are part of the protocol: every node of a chain must run the same, or they compute
different state roots (so there is deliberately no fallback to the core set or the core engine). The BLS backend is
not: both backends produce identical bytes and accept exactly the same inputs (tests/consensus/test_bls.py), it
only changes speed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from consensus import bls
from contracts import OPERATIONS as _CONTRACTS_OPERATIONS
from contracts.engine import ContractsEngine
from ledger.operation_set import OperationSet
from ledger.protocol import Protocol
from ledger.rules import RuleEngine

__all__ = ["BLS_BACKEND_ENV_VAR", "OPERATIONS", "bls_backend", "default_engine", "node_protocol"]

OPERATIONS: Final[OperationSet] = _CONTRACTS_OPERATIONS
BLS_BACKEND_ENV_VAR: Final = "LEDGER_BLS_BACKEND"


def default_engine() -> RuleEngine:
    """The contracts layer's engine (a new one: it keeps a cache of compiled rules)."""
    return ContractsEngine()


def node_protocol(engine: RuleEngine | None = None) -> Protocol:
    """What a node executes blocks, dry-runs and genesis operations under."""
    return Protocol(OPERATIONS, default_engine() if engine is None else engine, bls.pop_verify)


def bls_backend(name: str | None = None, environ: Mapping[str, str] = os.environ) -> bls.BlsBackend:
    """The BLS backend named `name`, else by LEDGER_BLS_BACKEND in `environ`, else consensus.bls's default.
    Raises bls.BlsError (bls_unknown_backend, bls_backend_unavailable) for a name that cannot be used."""
    if not name:
        name = environ.get(BLS_BACKEND_ENV_VAR, "").strip() or None
    return bls.get_backend(name)
