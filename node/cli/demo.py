"""`ledger demo`: scenarios 1-4 (bond issuance with KYC and lock-up, coupon, delivery versus payment, court-order
freeze) played as a story through the HTTP API of a multi-node network; `--scenario 7` plays member onboarding.

    ledger demo [--dir D] [--nodes 4] [--lockup-seconds 12]
    ledger demo --scenario 7 [--dir D] [--rate 20]

Scenario 7 (member onboarding, node/tools/demo/onboarding.py `play_onboarding`) needs real node processes: it uses the running
testnet in D when its 4 founding validators are up (and the network is still in its genesis epoch), else it creates
a fresh 4-node testnet in a temporary directory, plays, and removes it. It onboards member m4 and its validator
node-4 (M of N approvals; node-4 starts from genesis and votes from its epoch), removes node-0, rotates node-1's key,
under load; then checks state roots, the longest commit gap, and a custody statement verified offline from the
genesis file alone.

With a running testnet in D (`ledger testnet up --dir D`) whose nodes serve the API, the demo plays against it.
Otherwise it starts its own N-validator testnet with its nodes inside this process (node/tools/testnet.py with
`in_process=True`: real consensus over loopback, the API on each node, private reads signed), plays, and removes
it. Exit code 0 when every step got the answer the scenario expects and supply was
conserved in every check; 3 otherwise; 1 when the demo could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile

from node.cli.testnet import DEFAULT_DIR
from node.tools.testnet import api_answers

DEMO_CHAIN_ID = "testnet-demo"
START_TIMEOUT_S = 90.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="play scenarios 1-4 as a story against a local network",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=DEFAULT_DIR, help="a running testnet to use (default: %(default)s)")
    parser.add_argument("--nodes", type=int, default=4, help="validators of the network the demo starts")
    parser.add_argument("--lockup-seconds", type=int, default=12,
                        help="the lock-up of scenario 1 in seconds of block time (stands for 180 days)")
    parser.add_argument("--scenario", type=int, choices=(7,), default=None,
                        help="play scenario 7 (member onboarding) on real node processes instead of scenarios 1-4")
    parser.add_argument("--rate", type=int, default=20, help="scenario 7: load in transfers per second")
    parser.set_defaults(func=demo_command)


def running_testnet_urls(directory: str) -> tuple[list[str], bytes] | None:
    """API URLs and the admin seed of a running testnet in `directory` whose nodes all answer, else None."""
    from node.tools.localnet import ADMIN_ACCOUNT, load_accounts
    from node.tools.testnet import Testnet, TestnetError

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
    from node.tools.demo import DemoError
    from node.tools.testnet import TestnetError

    if args.lockup_seconds < 1 or not 1 <= args.nodes <= 16:
        print("error: need --lockup-seconds >= 1 and 1 <= --nodes <= 16", file=sys.stderr)
        return 2
    if args.scenario == 7:
        return scenario_7_command(args)
    try:
        result = _play(args)
    except (DemoError, TestnetError) as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    return 0 if result.ok else 3


def _play(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from node.tools.demo import play
    from node.tools.localnet import ADMIN_ACCOUNT, load_accounts
    from node.tools.testnet import Testnet

    found = running_testnet_urls(args.dir)
    if found is not None:
        urls, seed = found
        print(f"Using the running testnet in {os.path.abspath(args.dir)}")
        return asyncio.run(play(urls, seed, sys.stdout, args.lockup_seconds))
    print(f"No running testnet serving the API in {args.dir}: starting a {args.nodes}-validator network in this "
          "process ...", flush=True)
    directory = tempfile.mkdtemp(prefix="ledger-demo-")
    try:
        net = Testnet.create(directory, args.nodes, chain_id=DEMO_CHAIN_ID, users=2, open_reads=False,
                             in_process=True)
        try:
            net.up(START_TIMEOUT_S)
            seed = bytes(load_accounts(net.accounts_path)[ADMIN_ACCOUNT])
            return asyncio.run(play(net.api_urls(), seed, sys.stdout, args.lockup_seconds))
        finally:
            net.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def scenario_7_command(args: argparse.Namespace) -> int:
    from node.tools.demo import DemoError, play_onboarding
    from node.tools.testnet import Testnet, TestnetError

    own: Testnet | None = None
    try:
        if os.path.exists(os.path.join(args.dir, "testnet.json")):
            net = Testnet.open(args.dir)
            print(f"Using the testnet in {os.path.abspath(args.dir)}")
        else:
            directory = tempfile.mkdtemp(prefix="ledger-scenario7-")
            print(f"No testnet in {args.dir}: creating a 4-node testnet in {directory} ...", flush=True)
            own = net = Testnet.create(directory, 4)
            net.up(START_TIMEOUT_S)
        report = play_onboarding(net, sys.stdout, rate=args.rate)
    except (TestnetError, DemoError) as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    finally:
        if own is not None:
            own.down()
            shutil.rmtree(own.directory, ignore_errors=True)
    return 0 if report.ok and report.stall_ok else 3
