"""The contracts layer: asset rules (built-in modules and CEL), reason codes, dry-run, corporate actions.

It plugs into the ledger through one hook, ledger.rules.RuleEngine; `ContractsEngine` implements it. See
docs/contracts.md.
"""
