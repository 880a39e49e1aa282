"""The ledger core: canonical wire format, signed transactions, the asset state machine, authenticated state.

Public API (docs/protocol.md specifies the bytes; docs/reason-codes.md the codes):

    ledger.codec        decode / encode / DecodeError / EncodeError, the schema types (wire, UInt, Str, Bin, Seq, ...)
    ledger.codes        the reason-code table (REASONS, define, message_for)
    ledger.errors       LedgerError(code, message): the ledger's one error shape; Refused refuses a transaction
    ledger.schema       limits and field types
    ledger.operations   operation types (the core kinds; EXTENSION_KINDS 64..127 are other layers')
    ledger.operation_set OperationSet, CORE_OPERATIONS: kinds + processors + event kinds as one immutable value;
                        .extend(...) returns a new set with extension kinds (nothing is registered anywhere)
    ledger.protocol     Protocol(operations, engine, pop_verifier): what apply_block executes under
    ledger.transaction  TxBody, SignedTransaction, sign_transaction, decode_transaction, signing_message, tx_id_of
                        (encoding and decoding take the operation set: `operations=`)
    ledger.jsonform     to_json / from_json / body_to_json / body_from_json (the API's `encode`)
    ledger.state_keys   the state key layout; ledger.records the state record types
    ledger.governance_state  epochs, governance and proposals as read from state (current_epoch, ...)
    ledger.state        StateReader, MemoryState, Overlay, PendingNodes
    ledger.rules        RuleEngine, Movement, RuleState, CoreRuleEngine (the contracts hook)
    ledger.transition   apply_block, apply_transaction, dry_run (each given a Protocol), BlockOutcome
    ledger.genesis      GenesisSpec, GenesisAccount, genesis_changes
    ledger.memory       InMemoryLedger (tests, simulations, benchmarks)
    ledger.invariants   assert_block_supply, audit_state
    ledger.smt          the sparse Merkle tree and proofs; ledger.store the LevelDB store

Nothing in this package reads a clock, a random source, the environment, the network or (outside ledger.store) the
disk, and nothing in it is changed by importing another package: the operation set, rule engine and BLS
proof-of-possession check are passed in by the caller (a node composes them in node/chain/protocol.py).
"""
