"""`ledger keys new|show`: create and inspect account key files (node/client/keys.py)."""

from __future__ import annotations

import argparse

from node.client.console import EXIT_OK, emit, guarded
from node.client.keys import AccountKey, load_key, save_key


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create and show account key files",
                                   description="Ed25519 account keys in JSON key files (mode 0600).")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = sub.add_parser("new", help="generate a key for an account and write it to a file")
    new.add_argument("--account", required=True, help="the account id the key signs for (name@member)")
    new.add_argument("--out", required=True, help="key file to create (refuses to overwrite)")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(func=guarded(_new))
    show = sub.add_parser("show", help="print the account and public key of a key file (never the seed)")
    show.add_argument("file")
    show.set_defaults(func=guarded(_show))


def _new(args: argparse.Namespace) -> int:
    key = AccountKey.generate(args.account)
    save_key(key, args.out, overwrite=args.force)
    emit({"account": key.account, "public_key": key.public_key.hex(), "file": args.out})
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    key = load_key(args.file)
    emit({"account": key.account, "public_key": key.public_key.hex()})
    return EXIT_OK
