"""`ledger query ...`: read the ledger through a node's API (private reads are signed with --key).

Readable text by default (amounts in the asset's units, times as dates); `--json` prints the node's JSON answer.

    ledger query status
    ledger query balances alice@bank-a --key alice.key [--asset BOND-A] [--height H]
    ledger query tx <tx id>
    ledger query block 12
    ledger query get accounts alice@bank-a holds --signed --key alice.key     (any GET endpoint)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from node.cli.passphrase import load_account_key
from node.cli.render import show
from node.cli.tls_flags import node_tls
from node.cli.tx import add_node_flags, node_url
from node.client.console import EXIT_OK, guarded
from node.client.errors import ClientError
from node.client.sync import LedgerClient

# name -> (help, positional arguments, optional flags (name, type), call)
_QUERIES: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, type], ...], Callable[..., Any]]] = {
    "status": ("node status and head", (), (), lambda c: c.status()),
    "health": ("liveness", (), (), lambda c: c.health()),
    "validators": ("the validator set", (), (), lambda c: c.validators()),
    "peers": ("peers of the node", (), (), lambda c: c.peers()),
    "tx": ("a transaction's status and receipt", ("tx_id",), (), lambda c, a: c.tx(a.tx_id)),
    "block": ("a committed block with its certificate", ("height",), (), lambda c, a: c.block(int(a.height))),
    "asset": ("an asset's definition and status", ("asset_id",), (), lambda c, a: c.asset(a.asset_id)),
    "account": ("an account (signed read)", ("account_id",), (("height", int),),
                lambda c, a: c.account(a.account_id, a.height)),
    "balances": ("an account's balances (signed read)", ("account_id",), (("asset", str), ("height", int)),
                 lambda c, a: c.balances(a.account_id, a.asset, a.height)),
    "holds": ("an account's holds (signed read)", ("account_id",), (),
              lambda c, a: c.holds(a.account_id)),
    "hold": ("one hold (signed read)", ("hold_id",), (), lambda c, a: c.hold(a.hold_id)),
    "history": ("an account's history, newest first (signed read)", ("account_id",),
                (("limit", int), ("after", str)), lambda c, a: c.history(a.account_id, a.limit, a.after)),
    "holders": ("an asset's holders (signed read)", ("asset_id",), (("limit", int), ("after", str)),
                lambda c, a: c.holders(a.asset_id, a.limit, a.after)),
    "proof": ("a state proof of a key (hex) at a height (signed read)", ("key_hex",), (("height", int),),
              lambda c, a: c.proof(a.key_hex, a.height)),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("query", help="read the ledger through a node",
                                   description="Read-only queries; private data needs --key (a signed read).")
    sub = parser.add_subparsers(dest="query_command", metavar="WHAT", required=True)
    for name, (help_text, positionals, flags, _call) in _QUERIES.items():
        p = sub.add_parser(name, help=help_text)
        for pos in positionals:
            p.add_argument(pos, help=_HELP[pos])
        for flag, kind in flags:
            p.add_argument("--" + flag, type=kind, help=_HELP[flag])
        _common(p)
        p.set_defaults(func=guarded(_run), query=name)
    g = sub.add_parser("get", help="GET any /v1 endpoint: path segments, then --param NAME=VALUE")
    g.add_argument("segments", nargs="+", help="path segments after /v1")
    g.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="query parameter")
    g.add_argument("--signed", action="store_true", help="sign the request (needs --key)")
    _common(g)
    g.set_defaults(func=guarded(_run_get))


_HELP: dict[str, str] = {
    "tx_id": "the transaction id (hex)",
    "height": "a block height (default: the latest)",
    "asset_id": "the asset id",
    "account_id": "the account id (name@member)",
    "hold_id": "the hold id",
    "key_hex": "the state key in hex",
    "asset": "only this asset",
    "limit": "at most this many items per page",
    "after": "the page after this cursor (the `next` of the previous page)",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", metavar="FILE", help="key file (or imported account) that signs private reads")
    p.add_argument("--json", action="store_true", help="print the node's JSON answer (default: readable text)")
    add_node_flags(p)


def _show(args: argparse.Namespace, client: LedgerClient, result: Any) -> None:
    show(result, args.json, client)


def _client(args: argparse.Namespace) -> LedgerClient:
    return LedgerClient(node_url(args), load_account_key(args.key, args.profile) if args.key else None,
                        timeout=args.timeout, tls=node_tls(args))


def _run(args: argparse.Namespace) -> int:
    _help, positionals, flags, call = _QUERIES[args.query]
    with _client(args) as client:
        result = call(client) if not positionals and not flags else call(client, args)
        _show(args, client, result)
    return EXIT_OK


def _run_get(args: argparse.Namespace) -> int:
    query: dict[str, str] = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            raise ClientError("bad_input", f"--param {item!r}: expected NAME=VALUE")
        query[name] = value
    with _client(args) as client:
        _show(args, client, client.get(*args.segments, signed=args.signed, **query))
    return EXIT_OK
