"""`ledger index`: a verified indexer from the chain into PostgreSQL (node/indexer, docs/indexer.md).

    ledger index --node http://127.0.0.1:8700 --genesis genesis.json --dsn "host=db user=ledger dbname=ledger"
                 [--key auditor.key] [--audit-every 100] [--audit-sample 16] [--until-height H] [--max-attempts N]

The DSN comes from --dsn or $LEDGER_INDEX_DSN (prefer the environment, or a ~/.pgpass file, for a password: it never
appears in logs or errors). Exit codes: 0 stopped at --until-height (or Ctrl-C), 3 a fatal indexer error (a block
that does not verify, an audit mismatch, a schema newer than this indexer, another chain), 4 gave up after
--max-attempts reconnections, 2 bad usage."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from node.cli.tx import add_node_flags, node_url

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FATAL = 3
EXIT_GAVE_UP = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("index", help="index a node's certified chain into PostgreSQL (verified)")
    add_node_flags(p)
    p.add_argument("--genesis", required=True, help="the chain's genesis file: the trust anchor")
    p.add_argument("--dsn", help="PostgreSQL connection string (default $LEDGER_INDEX_DSN)")
    p.add_argument("--key", metavar="FILE", help="key file of an auditor account: signs the private reads")
    p.add_argument("--audit-every", type=int, default=100, metavar="N", help="blocks between audits (0: none)")
    p.add_argument("--audit-sample", type=int, default=16, metavar="K", help="balances checked per audit")
    p.add_argument("--until-height", type=int, metavar="H", help="stop once height H is indexed")
    p.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="give up after N failed reconnections in a row (default: retry forever)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from node.chain.genesis import GenesisError, load_genesis
    from node.client.errors import LedgerClientError
    from node.client.keys import load_key
    from node.indexer.errors import IndexerError
    from node.indexer.run import Indexer, IndexerConfig

    bad = [
        flag
        for flag, ok in (
            ("--audit-every", args.audit_every >= 0),
            ("--audit-sample", args.audit_sample >= 0),
            ("--until-height", args.until_height is None or args.until_height >= 0),
            ("--max-attempts", args.max_attempts is None or args.max_attempts >= 1),
            ("--timeout", args.timeout > 0),
        )
        if not ok
    ]
    if bad:
        print(f"ledger index: out of range: {', '.join(bad)}", file=sys.stderr)
        return EXIT_USAGE
    dsn = args.dsn or os.environ.get("LEDGER_INDEX_DSN")
    if not dsn:
        print("ledger index: no database: pass --dsn or set LEDGER_INDEX_DSN", file=sys.stderr)
        return EXIT_USAGE
    try:
        genesis = load_genesis(args.genesis)
    except (GenesisError, OSError) as exc:
        print(f"ledger index: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    def status(line: str) -> None:
        print(f"index: {line}", file=sys.stderr, flush=True)

    try:
        key = load_key(args.key) if args.key else None
    except LedgerClientError as exc:
        print(f"ledger index: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = IndexerConfig(
        node_url(args),
        dsn,
        genesis,
        key,
        audit_every=args.audit_every,
        audit_sample=args.audit_sample,
        until_height=args.until_height,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        status=status,
    )
    indexer = Indexer(config)
    try:
        height = asyncio.run(indexer.run())
    except IndexerError as exc:
        print(f"ledger index: {exc}", file=sys.stderr)
        return EXIT_FATAL if exc.fatal else EXIT_GAVE_UP
    except KeyboardInterrupt:
        return EXIT_OK
    print(f"indexed up to height {height}", flush=True)
    return EXIT_OK
