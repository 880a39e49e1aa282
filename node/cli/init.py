"""`ledger init`: create node keys and config, assemble a genesis file, or generate a whole local network.

    ledger init node    --node-id ID --dir DIR [--listen HOST:PORT] [--api HOST:PORT] [--genesis FILE]
                        (--passphrase-file FILE | --passphrase-env VAR | --passphrase-prompt | --plaintext-keys)
    ledger init genesis --chain-id ID --validator DIR/validator.json ... (--admin-key HEX | --admin-key-file F)
                        --out genesis.json
    ledger init network --nodes N --dir DIR [--chain-id testnet-local] [--base-port 7100] [--api-base-port 8100]

None of them ever overwrites a key, config, genesis or accounts file: an existing one stops the command before it
writes anything (`init_file_exists`, naming the file; exit 1). docs/operations.md walks through each, and its
"Key ceremony" runbook is what tests/node/tools/test_runbook.py runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from node.chain.genesis import GenesisError, load_genesis, make_document, parse_address, parse_genesis, write_genesis
from node.cli.passphrase import add_passphrase_options, kdf_cost, passphrase_from_args
from node.client.errors import ClientError
from node.client.keys import key_file_info
from node.errors import NodeError
from node.tools.localnet import generate_network, refuse_existing
from node.validator.config import NodeConfig, write_config
from node.validator.keyfile import KeyFileError, NodeKeys, never_signed_path, write_new_node_keys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("init", help="create node keys, config, genesis, or a local network")
    sub = parser.add_subparsers(dest="init_command", metavar="WHAT")
    node = sub.add_parser("node", help="create a node's keys (0600) and config.toml in a directory")
    node.add_argument("--node-id", required=True, help="the node id (e.g. node-0)")
    node.add_argument("--dir", required=True, help="directory for its keys and config")
    node.add_argument("--listen", default="127.0.0.1:7100", help="p2p listen address (default 127.0.0.1:7100)")
    node.add_argument("--api", default="127.0.0.1:8100", help="API listen address (default 127.0.0.1:8100)")
    node.add_argument("--member", default=None, help="member id for validator.json (default: the node id)")
    node.add_argument("--genesis", default="genesis.json", help="genesis path written into the config")
    add_passphrase_options(node, creating=True)
    node.set_defaults(func=run_node)
    gen = sub.add_parser("genesis", help="assemble a genesis file from validators' validator.json files")
    gen.add_argument("--chain-id", required=True, help="the chain id")
    gen.add_argument("--validator", action="append", required=True, help="a validator.json (repeat per validator)")
    admin = gen.add_mutually_exclusive_group(required=True)
    admin.add_argument("--admin-key", help="hex Ed25519 public key of the admin@<first member> account")
    admin.add_argument("--admin-key-file", help="an account key file (`ledger keys new`) of admin@<a member>: "
                                                "its account and public key (no passphrase needed)")
    gen.add_argument("--out", required=True, help="the genesis file to write")
    gen.set_defaults(func=run_genesis)
    net = sub.add_parser("network", help="generate keys, genesis and configs for a local N-validator network")
    net.add_argument("--nodes", type=int, default=4, help="validators (default 4)")
    net.add_argument("--dir", required=True, help="directory for the network's files")
    net.add_argument("--chain-id", default="testnet-local", help="chain id (default testnet-local)")
    net.add_argument("--base-port", type=int, default=7100, help="p2p port of node 0 (default 7100)")
    net.add_argument("--api-base-port", type=int, default=8100, help="API port of node 0 (default 8100)")
    net.add_argument("--users", type=int, default=8, help="test accounts (default 8)")
    net.set_defaults(func=run_network)
    check = sub.add_parser("check-genesis", help="validate a genesis file and print its hash")
    check.add_argument("genesis", help="the genesis file")
    check.add_argument("--validator", metavar="VALIDATOR_JSON",
                       help="also check that this node's validator.json is in the genesis exactly as written")
    check.set_defaults(func=run_check)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_node(args: argparse.Namespace) -> int:
    keys_path = os.path.join(args.dir, "node_keys.json")
    config_path = os.path.join(args.dir, "config.toml")
    validator_path = os.path.join(args.dir, "validator.json")
    try:
        listen, api = parse_address(args.listen, "--listen"), parse_address(args.api, "--api")
        refuse_existing([keys_path, never_signed_path(keys_path), config_path, validator_path])
        passphrase = passphrase_from_args(args, f"the node keys of {args.node_id}", creating=True)
        os.makedirs(args.dir, exist_ok=True)
        keys = NodeKeys.generate(args.node_id)
        write_new_node_keys(keys_path, keys, passphrase=passphrase, cost=kdf_cost(args))
        config = NodeConfig(node_id=args.node_id, data_dir=os.path.join(args.dir, "data"), keys_file=keys_path,
                            genesis_file=os.path.join(args.dir, args.genesis), p2p_listen=listen, api_listen=api)
        write_config(config_path, config, exclusive=True)
        from node.chain.genesis import validator_entry

        entry = validator_entry(args.node_id, args.member or args.node_id, keys.identity_key, keys.bls_public_key,
                                keys.bls_pop(), listen)
        with open(validator_path, "x", encoding="utf-8") as f:
            json.dump(entry, f, indent=2)
    except FileExistsError as exc:
        print(f"error: init_file_exists: {exc.filename2 or exc.filename} already exists; ledger init never "
              "overwrites", file=sys.stderr)
        return 1
    except (KeyFileError, GenesisError, NodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ClientError as exc:  # the passphrase: keystore_* and passphrase_* codes
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    protection = "plaintext (testnets only)" if passphrase is None else "encrypted under the passphrase"
    print(f"node keys:  {keys_path} (mode 0600, {protection})")
    print(f"config:     {config_path}")
    print(f"validator:  {validator_path} (public; send it to whoever assembles genesis)")
    return 0


def run_genesis(args: argparse.Namespace) -> int:
    try:
        refuse_existing([args.out])
        validators = []
        for path in args.validator:
            with open(path, encoding="utf-8") as f:
                validators.append(json.load(f))
        members = []
        for v in validators:
            if v["member"] not in [m for m, _ in members]:
                members.append((v["member"], v["member"]))
        admin, admin_key = f"admin@{members[0][0]}", args.admin_key
        if args.admin_key_file is not None:
            info = key_file_info(args.admin_key_file)
            admin, admin_key = info.account, info.public_key.hex()
        accounts = [{"id": admin, "keys": [admin_key], "threshold": 1,
                     "roles": ["admin", "issuer", "agent", "kyc_provider", "custodian", "auditor", "member"]}]
        document = make_document(args.chain_id, int(time.time()), members, validators, accounts)
        genesis = parse_genesis(document)
        write_genesis(args.out, document, exclusive=True)
    except FileExistsError as exc:
        print(f"error: init_file_exists: {exc.filename2 or args.out} already exists; ledger init never overwrites",
              file=sys.stderr)
        return 1
    except NodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ClientError as exc:  # the admin key file
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"genesis: {args.out}\nhash:    {genesis.hash.hex()}")
    return 0


def run_network(args: argparse.Namespace) -> int:
    try:
        layout = generate_network(args.dir, args.nodes, chain_id=args.chain_id, base_port=args.base_port,
                                  api_base_port=args.api_base_port, users=args.users)
    except NodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"genesis:  {layout.genesis_path}")
    print(f"accounts: {layout.accounts_path} (test account keys, mode 0600)")
    for path in layout.config_paths:
        print(f"node:     ledger node run --config {path}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    try:
        genesis = load_genesis(args.genesis)
        if args.validator is not None:
            with open(args.validator, encoding="utf-8") as f:
                mine = json.load(f)
            listed = [v for v in genesis.document["validators"] if isinstance(mine, dict) and v.get("id") == mine.get("id")]
            if not listed:
                raise GenesisError("genesis_validator_missing", f"{args.validator}: validator {mine.get('id')!r} is not "
                                                                f"in {args.genesis}")
            if listed[0] != mine:
                raise GenesisError("genesis_validator_differs", f"{args.validator}: the genesis entry of "
                                                                f"{mine['id']!r} differs from this node's validator.json "
                                                                "(keys, address or member): do not start")
    except GenesisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    mine_note = "" if args.validator is None else "; this node's validator entry is in it unchanged"
    print(f"ok: chain {genesis.chain_id}, {len(genesis.validators)} validators, hash {genesis.hash.hex()}{mine_note}")
    return 0
