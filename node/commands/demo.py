"""`ledger demo`: scenarios 1-4 (bond issuance with KYC and lock-up, coupon, delivery versus payment, court-order
freeze) played as a story through the HTTP API of a multi-node network.

    ledger demo [--dir D] [--nodes 4] [--lockup-seconds 12]

With a running testnet in D (`ledger testnet up --dir D`) whose nodes serve the API, the demo plays against it.
Otherwise it starts its own N-validator network inside this process (real consensus over loopback, the API on each
node), plays, and removes it. Exit code 0 when every step got the answer the scenario expects and supply was
conserved in every check; 3 otherwise; 1 when the demo could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile

from node.commands.testnet import DEFAULT_DIR, api_answers


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="play scenarios 1-4 as a story against a local network",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=DEFAULT_DIR, help="a running testnet to use (default: %(default)s)")
    parser.add_argument("--nodes", type=int, default=4, help="validators of the network the demo starts")
    parser.add_argument("--lockup-seconds", type=int, default=12,
                        help="the lock-up of scenario 1 in seconds of block time (stands for 180 days)")
    parser.set_defaults(func=demo_command)


def running_testnet_urls(directory: str) -> tuple[list[str], bytes] | None:
    """API URLs and the admin seed of a running testnet in `directory` whose nodes all answer, else None."""
    from node.localnet import ADMIN_ACCOUNT, load_accounts
    from node.testnet import Testnet, TestnetError

    if not os.path.exists(os.path.join(directory, "testnet.json")):
        return None
    try:
        net = Testnet.open(directory)
    except TestnetError:
        return None
    urls = [net.api_url(i) for i in range(net.n) if net.running(i)]
    if not urls or not all(api_answers(u) for u in urls):
        return None
    return urls, bytes(load_accounts(net.accounts_path)[ADMIN_ACCOUNT])


def demo_command(args: argparse.Namespace) -> int:
    from node.demo import DemoError

    if args.lockup_seconds < 1 or not 1 <= args.nodes <= 16:
        print("error: need --lockup-seconds >= 1 and 1 <= --nodes <= 16", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_main(args))
    except DemoError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    return 0 if result.ok else 3


async def _main(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from node.demo import InProcessNetwork, play

    found = running_testnet_urls(args.dir)
    if found is not None:
        urls, seed = found
        print(f"Using the running testnet in {os.path.abspath(args.dir)}")
        return await play(urls, seed, sys.stdout, args.lockup_seconds)
    print(f"No running testnet serving the API in {args.dir}: starting a {args.nodes}-validator network in this "
          "process ...", flush=True)
    directory = tempfile.mkdtemp(prefix="ledger-demo-")
    net = InProcessNetwork(directory, args.nodes)
    try:
        await net.start()
        return await play(net.urls, net.admin_seed, sys.stdout, args.lockup_seconds)
    finally:
        await net.stop()
        shutil.rmtree(directory, ignore_errors=True)
