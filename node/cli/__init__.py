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
    "profile",
    "tx",
    "query",
    "statement",
    "governance",
    "testnet",
    "hosts",
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
    try:
        args = parser.parse_args(argv)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        return int(func(args) or 0)
    except BrokenPipeError:
        return closed_pipe_exit()


def closed_pipe_exit() -> int:
    """The reader of our output went away (`ledger query status | head`): stop quietly, as Unix tools do. Point
    stdout at /dev/null so the interpreter's final flush does not raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a process a closed pipe stopped


if __name__ == "__main__":
    sys.exit(main())
