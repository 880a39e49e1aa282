"""The node: the only layer with I/O (transport, mempool, runtime, sync, HTTP API, CLI, testnet).

Importing it registers the contracts layer's operations (identity claims, corporate actions) with the ledger's
operation table, so every node process, tool and client decodes, encodes and executes exactly the same operation
set — whichever module of node/ is imported first. A node that decoded fewer operation kinds than its peers would
refuse blocks they accept.
"""

import contracts as _contracts  # noqa: F401  (registers the contracts layer's operations)

# Governance checks BLS proofs of possession when it adds or rotates a validator key; the ledger does not import the
# consensus layer, so the node hands it consensus.bls's check (the same on every node).
from consensus import bls as _bls
from ledger.governance import register_pop_verifier as _register_pop_verifier

_register_pop_verifier(_bls.pop_verify)
