"""The `ledger` command line.

Each subcommand lives in its own module under node/cli/ and exposes
`register(subparsers)`, which adds its parser and sets `func` (a callable taking the parsed
arguments and returning an exit code). This file only dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules under node.cli, in the order their commands appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "init",
    "node",
    "bench",
    "simulate",
    "keys",
    "tx",
    "query",
    "statement",
    "governance",
    "testnet",
    "demo",
    "index",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description="Consortium asset ledger node and tools.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"node.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
