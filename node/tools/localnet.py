"""Generate a whole local network into a directory: keys, genesis, configs and test accounts.

    generate_network(directory, nodes=4, chain_id="testnet-local", base_port=7100, ...) -> NetworkLayout

Layout:
    DIR/genesis.json                 the shared genesis
    DIR/accounts.json                (0600) the test accounts' Ed25519 seeds: {"admin@m0": hex, "user-0@m0": hex, ...}
    DIR/node-<i>/config.toml         the node's config (p2p on base_port + i, API on api_base_port + i)
    DIR/node-<i>/node_keys.json      (0600) its identity and BLS keys
    DIR/node-<i>/data/               its stores (created when the node first runs)

The genesis has one member per validator (m0, m1, ...), an admin account `admin@m0` (admin, issuer, agent,
kyc_provider, custodian, auditor roles), `users` accounts `user-<k>@m<k mod n>`, and the asset CASH-T (2 decimals)
with `initial_balance` units issued to every user. The testnet launcher (node.tools.testnet), `ledger init`,
`ledger node dev` and the tests use it.

Governance (issue 8): with `governors=True` every member m<i> gets a governor account `gov@m<i>` (keys in
accounts.json), so proposals can gather the default M of N approvals. `spare_nodes=k` also writes k nodes that are
in no genesis record (DIR/node-<n>.., ports after the validators'): keys and configs of validators a proposal can
add later (`ledger keys show DIR/node-<n>/node_keys.json --member M` prints the add_validator action); they start
from genesis, follow, and vote from the epoch that adds them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import nacl.signing

from ledger.jsonform import to_json
from ledger.operations import DefineAsset, Issue
from node.chain.genesis import ChainParams, make_document, validator_entry, write_genesis
from node.chain.protocol import OPERATIONS
from node.errors import NodeError
from node.validator.config import NodeConfig, write_config
from node.validator.keyfile import NodeKeys, write_new_node_keys

CASH_ASSET = "CASH-T"
ADMIN_ACCOUNT = "admin@m0"


@dataclass(frozen=True, slots=True)
class NetworkLayout:
    directory: str
    genesis_path: str
    accounts_path: str
    config_paths: tuple[str, ...]
    p2p_ports: tuple[int, ...]
    api_ports: tuple[int, ...]
    # Nodes in no genesis record (validators to add by governance): their configs, in node order after the others.
    spare_config_paths: tuple[str, ...] = ()


def account_key(name: str, seed: bytes | None) -> nacl.signing.SigningKey:
    if seed is None:
        return nacl.signing.SigningKey.generate()
    import hashlib

    return nacl.signing.SigningKey(hashlib.sha256(b"account|" + seed + b"|" + name.encode()).digest())


def refuse_existing(paths: Iterable[str]) -> None:
    """`init_file_exists` naming the first of `paths` that exists: `ledger init` (and everything that generates a
    network) never overwrites a key, config, genesis or accounts file (docs/operations.md)."""
    for path in paths:
        if os.path.lexists(path):
            raise NodeError("init_file_exists", f"{path} already exists; ledger init never overwrites keys, configs, "
                                                "genesis or accounts files (move it away or use another directory)")


def load_accounts(path: str) -> dict[str, nacl.signing.SigningKey]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return {name: nacl.signing.SigningKey(bytes.fromhex(seed)) for name, seed in doc.items()}


def generate_network(directory: str, nodes: int = 4, *, chain_id: str = "testnet-local", base_port: int = 7100,
                     api_base_port: int = 8100, host: str = "127.0.0.1", users: int = 8,
                     initial_balance: int = 1_000_000_00, params: ChainParams | None = None,
                     seed: bytes | None = None, fault_injection: bool | None = None,
                     genesis_time: int | None = None, governors: bool = False,
                     spare_nodes: int = 0, open_reads: bool | None = None) -> NetworkLayout:
    """Write keys, genesis and configs for `nodes` validators (and `spare_nodes` nodes outside the genesis set).
    `seed` makes every key deterministic (tests). `open_reads`: whether the nodes' APIs answer reads without a
    signature (default: on testnet-... chains with fault injection and on dev-... chains). Refuses, before writing
    anything, when any file it would write exists (NodeError `init_file_exists`). Node keys are plaintext (a local
    testnet; the key files say `"protection": "plaintext"`)."""
    assert 1 <= nodes and nodes + spare_nodes <= 100 and users >= 0 and spare_nodes >= 0
    genesis_path = os.path.join(directory, "genesis.json")
    accounts_path = os.path.join(directory, "accounts.json")
    node_files = [os.path.join(directory, f"node-{i}", name) for i in range(nodes + spare_nodes)
                  for name in ("node_keys.json", "config.toml")]
    refuse_existing([genesis_path, accounts_path, *node_files])
    os.makedirs(directory, exist_ok=True)
    members = [(f"m{i}", f"Member {i}") for i in range(nodes)]
    validators: list[dict[str, Any]] = []
    configs: list[NodeConfig] = []
    node_keys: list[NodeKeys] = []
    for i in range(nodes):
        node_id = f"node-{i}"
        keys = NodeKeys.generate(node_id, None if seed is None else seed + b"|" + node_id.encode())
        node_keys.append(keys)
        validators.append(validator_entry(node_id, f"m{i}", keys.identity_key, keys.bls_public_key, keys.bls_pop(),
                                          (host, base_port + i)))
    account_keys = {ADMIN_ACCOUNT: account_key(ADMIN_ACCOUNT, seed)}
    for k in range(users):
        name = f"user-{k}@m{k % nodes}"
        account_keys[name] = account_key(name, seed)
    governor_names = [f"gov@m{i}" for i in range(nodes)] if governors else []
    for name in governor_names:
        account_keys[name] = account_key(name, seed)
    accounts = [{"id": ADMIN_ACCOUNT, "keys": [bytes(account_keys[ADMIN_ACCOUNT].verify_key).hex()], "threshold": 1,
                 "roles": ["admin", "issuer", "agent", "kyc_provider", "custodian", "auditor", "member"]}]
    for name, key in account_keys.items():
        if name != ADMIN_ACCOUNT:
            roles = ["governor"] if name in governor_names else []
            accounts.append({"id": name, "keys": [bytes(key.verify_key).hex()], "threshold": 1, "roles": roles})
    operations = [to_json(OPERATIONS.variant, DefineAsset(ADMIN_ACCOUNT, CASH_ASSET, 2, 10**15, "Cash token", "", (), (), ()))]
    if initial_balance > 0:
        for name in account_keys:
            if name != ADMIN_ACCOUNT and name not in governor_names:
                operations.append(to_json(OPERATIONS.variant, Issue(ADMIN_ACCOUNT, CASH_ASSET, name, initial_balance)))
    document = make_document(chain_id, int(time.time()) if genesis_time is None else genesis_time, members,
                             validators, accounts, operations, params)
    write_genesis(genesis_path, document, exclusive=True)
    fd = os.open(accounts_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({name: bytes(key).hex() for name, key in account_keys.items()}, f, indent=2)
    inject = chain_id.startswith("testnet-") if fault_injection is None else fault_injection
    reads_open = (inject or chain_id.startswith("dev-")) if open_reads is None else open_reads
    for j in range(spare_nodes):
        node_id = f"node-{nodes + j}"
        node_keys.append(NodeKeys.generate(node_id, None if seed is None else seed + b"|" + node_id.encode()))
    config_paths = []
    for i, keys in enumerate(node_keys):
        node_dir = os.path.join(directory, keys.node_id)
        os.makedirs(node_dir, exist_ok=True)
        keys_path = os.path.join(node_dir, "node_keys.json")
        write_new_node_keys(keys_path, keys)
        config = NodeConfig(node_id=keys.node_id, data_dir=os.path.join(node_dir, "data"), keys_file=keys_path,
                            genesis_file=genesis_path, p2p_listen=(host, base_port + i), fault_injection=inject,
                            api_listen=(host, api_base_port + i), api_open_reads=reads_open)
        configs.append(config)
        path = os.path.join(node_dir, "config.toml")
        write_config(path, config, exclusive=True)
        config_paths.append(path)
    return NetworkLayout(directory, genesis_path, accounts_path, tuple(config_paths[:nodes]),
                         tuple(base_port + i for i in range(nodes)), tuple(api_base_port + i for i in range(nodes)),
                         tuple(config_paths[nodes:]))
