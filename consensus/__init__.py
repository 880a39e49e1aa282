"""BFT consensus: a sans-IO Jolteon (DiemBFT v4) replica with BLS quorum certificates.

Entry points: consensus.replica.Replica (the state machine), consensus.actions (what it asks the node to do),
consensus.validators.ValidatorSet, consensus.certificates.verify_commit_certificate (light clients),
consensus.simulator (deterministic cluster simulation), consensus.errors.ConsensusError (every error: a code and
a message). Protocol and byte formats: docs/consensus.md.
This package imports nothing from ledger/, contracts/ or node/ and performs no I/O.
"""
