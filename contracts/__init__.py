"""The contracts layer: asset rules (built-in modules and CEL), reason codes, dry-run, corporate actions.

It plugs into the ledger through the RuleEngine hook (`contracts.engine.ContractsEngine`) and adds its own
operations (identity claims, corporate actions) as ledger extension operations. Importing the package registers
them with the ledger, so every node that imports `contracts` decodes and executes the same operation set. See
docs/contracts.md.
"""

from contracts import processors as _processors  # noqa: F401  (registers the operations and their processors)
