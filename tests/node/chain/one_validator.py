"""A one-validator chain at its genesis, for Application tests: an Application over a fresh store, the genesis, the
validator's key file, six signed transfers among the test users (none admitted) and one that has expired."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from consensus.bls import get_backend
from consensus.certificates import SignatureVerifier
from ledger.operations import Transfer, TransferLeg
from ledger.store import LedgerStore
from ledger.transaction import TxBody, sign_transaction
from node.chain.application import Application
from node.chain.genesis import ChainParams, Genesis, load_genesis
from node.chain.mempool import MempoolLimits
from node.chain.protocol import OPERATIONS, node_protocol
from node.chain.sigverify import Ed25519Verifier
from node.tools.localnet import CASH_ASSET, generate_network, load_accounts
from node.validator.config import load_config


@dataclass(frozen=True)
class OneValidator:
    app: Application
    genesis: Genesis
    txs: list[bytes]
    keys_file: str  # the validator's (plaintext) key file
    expired: bytes  # a signed transfer that expires at height 1: rejected for good in every later block


@contextmanager
def one_validator(path: str, chain_id: str, seed: bytes, verifier: Ed25519Verifier,
                  genesis_time: int | None = None) -> Iterator[OneValidator]:
    """`genesis_time`: seconds (default: now); two nodes of one chain need the same."""
    layout = generate_network(os.path.join(path, "net"), 1, chain_id=chain_id, seed=seed, users=4,
                              genesis_time=genesis_time,
                              params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=50))
    config = load_config(layout.config_paths[0])
    genesis = load_genesis(config.genesis_file)
    accounts = load_accounts(layout.accounts_path)
    users = sorted(a for a in accounts if a.startswith("user-"))
    txs = []
    for k in range(6):
        sender, recipient = users[k % len(users)], users[(k + 1) % len(users)]
        body = TxBody(1, genesis.chain_id, (sender,), k, 5000, (Transfer(sender, CASH_ASSET, (TransferLeg(recipient, 3),)),))
        txs.append(sign_transaction(body, [(sender, accounts[sender])], operations=OPERATIONS).to_bytes())
    body = TxBody(1, genesis.chain_id, (users[0],), 99, 1, (Transfer(users[0], CASH_ASSET, (TransferLeg(users[1], 1),)),))
    expired = sign_transaction(body, [(users[0], accounts[users[0]])], operations=OPERATIONS).to_bytes()
    store = LedgerStore.open(os.path.join(path, "store"))
    try:
        app = Application(store, genesis, protocol=node_protocol(), tx_verifier=verifier,
                          bls=SignatureVerifier(get_backend()), mempool_limits=MempoolLimits(), clock=lambda: 0.0)
        yield OneValidator(app, genesis, txs, config.keys_file, expired)
    finally:
        store.close()
