"""The contracts layer: asset rules (built-in modules and CEL), reason codes, dry-run, corporate actions.

It plugs into the ledger through the RuleEngine hook (`contracts.engine.ContractsEngine`) and adds its own
operations (identity claims, corporate actions) as ledger extension operations: `contracts.OPERATIONS` is the
operation set of a chain with this layer (the ledger's core kinds plus these), a plain value built with
`ledger.ops.CORE_OPERATIONS.extend(...)`. Importing the package registers nothing; whoever encodes, decodes
or executes transactions passes the set (a node: node/chain/protocol.py). See docs/contracts.md.
"""

from contracts.processors import OPERATIONS

__all__ = ["OPERATIONS"]
