"""`ledger keys new|show|rotate`: account key files (node/client/keys.py) and node key files (node/validator/keyfile.py).

    ledger keys new --account ID --out FILE      a fresh account key
    ledger keys show FILE [--pop] [--member M --address HOST:PORT --power N]
                                                 an account key's public key; for a node key file its node id and
                                                 public keys, with --pop the BLS proof of possession, and with
                                                 --member the add_validator governance action for it
    ledger keys rotate --keys NODE_KEYS [--force]
                                                 fresh keys for the same node, written beside the key file
                                                 (node_keys.next.json); prints the rotate_validator_keys action

A rotated node keeps running on its current keys; from the epoch whose validator record names the new ones (after
the proposal executes) it signs and connects with them, reading the next-keys file then (no restart needed). Keep
both files: the node picks, in every epoch, the keys its record names.
"""

from __future__ import annotations

import argparse
import json

from node.client.console import EXIT_OK, emit, guarded
from node.client.errors import ClientError
from node.client.keys import AccountKey, load_key, save_key
from node.validator.keyfile import (
    KEYS_FORMAT,
    KeyFileError,
    NodeKeys,
    load_keys,
    next_keys_path,
    rotate_keys,
    write_keys,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create, show and rotate key files",
                                   description="Ed25519 account keys and node keys in JSON key files (mode 0600).")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = sub.add_parser("new", help="generate a key for an account and write it to a file")
    new.add_argument("--account", required=True, help="the account id the key signs for (name@member)")
    new.add_argument("--out", required=True, help="key file to create (refuses to overwrite)")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(func=guarded(_new))
    show = sub.add_parser("show", help="print the public parts of an account or node key file (never a secret)")
    show.add_argument("file")
    show.add_argument("--pop", action="store_true", help="node keys: also the BLS proof of possession")
    show.add_argument("--member", help="node keys: print the add_validator action for this member")
    show.add_argument("--address", default="", help="with --member: the validator's host:port (default none)")
    show.add_argument("--power", type=int, default=1, help="with --member: its voting power (default 1)")
    show.set_defaults(func=guarded(_show))
    rotate = sub.add_parser("rotate", help="write fresh keys for a node beside its key file")
    rotate.add_argument("--keys", required=True, help="the node's key file (node_keys.json)")
    rotate.add_argument("--force", action="store_true", help="replace next keys written earlier")
    rotate.set_defaults(func=guarded(_rotate))


def _new(args: argparse.Namespace) -> int:
    key = AccountKey.generate(args.account)
    save_key(key, args.out, overwrite=args.force)
    emit({"account": key.account, "public_key": key.public_key.hex(), "file": args.out})
    return EXIT_OK


def _is_node_keys(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == KEYS_FORMAT


def _public(keys: NodeKeys, pop: bool) -> dict[str, object]:
    out: dict[str, object] = {"node_id": keys.node_id, "identity_key": keys.identity_key.hex(),
                              "bls_key": keys.bls_public_key.hex()}
    if pop:
        out["bls_pop"] = keys.bls_pop().hex()
    return out


def _node_keys_errors(run):  # type: ignore[no-untyped-def]
    """Node key file problems are user errors: report them with their code (never a traceback)."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except KeyFileError as exc:
            raise ClientError(exc.code, exc.message) from None

    wrapper.__doc__ = run.__doc__
    return wrapper


@_node_keys_errors
def _show(args: argparse.Namespace) -> int:
    if not _is_node_keys(args.file):
        key = load_key(args.file)
        emit({"account": key.account, "public_key": key.public_key.hex()})
        return EXIT_OK
    keys = load_keys(args.file)
    out = _public(keys, args.pop or args.member is not None)
    if args.member is not None:
        out["action"] = {"kind": "add_validator", "node_id": keys.node_id, "member": args.member,
                         "identity_key": out["identity_key"], "bls_key": out["bls_key"], "bls_pop": out["bls_pop"],
                         "address": args.address, "power": args.power}
    emit(out)
    return EXIT_OK


@_node_keys_errors
def _rotate(args: argparse.Namespace) -> int:
    current = load_keys(args.keys)
    fresh = rotate_keys(current)
    path = next_keys_path(args.keys)
    write_keys(path, fresh, overwrite=args.force)
    out = _public(fresh, True)
    out["next_keys_file"] = path
    out["action"] = {"kind": "rotate_validator_keys", "node_id": fresh.node_id, "identity_key": out["identity_key"],
                     "bls_key": out["bls_key"], "bls_pop": out["bls_pop"]}
    emit(out)
    return EXIT_OK
