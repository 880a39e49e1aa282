"""`ledger testnet`: a local multi-node network of real node processes, and fault commands for testers.

    ledger testnet up [--nodes N] [--dir D]      generate (first time) and start N nodes, wait, print addresses
    ledger testnet status [--dir D] [--json]     role, height, round, peers, mempool per node; roots at the live
                                                 common height of the nodes that follow (validators, full, removed)
    ledger testnet logs NODE [--lines K] [--follow]
    ledger testnet down [--wipe]                 SIGTERM every node, SIGKILL after a bound (--wipe: delete DIR)
    ledger testnet kill NODE                     kill -9
    ledger testnet restart NODE
    ledger testnet partition A,B C,D             nodes in different groups stop hearing each other
    ledger testnet heal                          remove partitions and slow links
    ledger testnet slow NODE --delay MS          delay every frame to and from NODE
    ledger testnet chaos --duration S            random faults under load, with continuous safety checks
    ledger testnet add-node [--member M]         keys + config + data dir of a node not in the genesis; prints the
                                                 governance actions that add it (then: ledger governance propose ...,
                                                 approvals, and `ledger testnet restart node-N` to start it)
    ledger testnet add-node --full               a full node: every other node admits its key ([p2p.full_nodes],
                                                 re-read at once); it starts, catches up and follows
    ledger testnet reconfigure                   scenario 7 on this testnet (= ledger demo --scenario 7)

NODE is an index (2) or a node id (node-2). D defaults to $LEDGER_TESTNET_DIR or ./.testnet.
Exit codes: 0 ok, 1 a command failed (message on stderr), 2 usage, 3 (status/chaos) the network is unhealthy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from node.cli.profile import print_testnet_profile
from node.tools.progress import StartProgress
from node.tools.testnet import Testnet, TestnetError, api_answers

DEFAULT_DIR = os.environ.get("LEDGER_TESTNET_DIR", ".testnet")


def _add_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default=DEFAULT_DIR, help="the testnet directory (default: %(default)s)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("testnet", help="run a local multi-node test network and break it on purpose")
    sub = parser.add_subparsers(dest="testnet_command", metavar="WHAT")

    up = sub.add_parser("up", help="generate (first time) and start the nodes")
    _add_dir(up)
    up.add_argument("--nodes", type=int, default=4, help="validators (first time only; default 4)")
    up.add_argument("--users", type=int, default=8, help="test accounts holding CASH-T (first time only)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every node (default 60)")
    up.set_defaults(func=up_command)

    status = sub.add_parser("status", help="per-node status and whether state roots agree")
    _add_dir(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=status_command)

    logs = sub.add_parser("logs", help="print a node's log")
    _add_dir(logs)
    logs.add_argument("node", help="a node: its index (2) or id (node-2)")
    logs.add_argument("--lines", type=int, default=50, help="last lines to print (default 50)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    logs.set_defaults(func=logs_command)

    down = sub.add_parser("down", help="stop every node (SIGTERM, then SIGKILL after a bound)")
    _add_dir(down)
    down.add_argument("--grace", type=float, default=10.0, help="seconds before SIGKILL (default 10)")
    down.add_argument("--wipe", action="store_true", help="delete the testnet directory afterwards")
    down.set_defaults(func=down_command)

    kill = sub.add_parser("kill", help="kill -9 a node")
    _add_dir(kill)
    kill.add_argument("node", help="a node: its index (2) or id (node-2)")
    kill.set_defaults(func=kill_command)

    restart = sub.add_parser("restart", help="restart a node (SIGTERM, start, wait)")
    _add_dir(restart)
    restart.add_argument("node", help="a node: its index (2) or id (node-2)")
    restart.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it (default 30)")
    restart.set_defaults(func=restart_command)

    partition = sub.add_parser("partition", help="split the network into groups, e.g. `partition 0,1 2,3`")
    _add_dir(partition)
    partition.add_argument("groups", nargs="+", help="groups of nodes, comma separated: 0,1 2,3")
    partition.set_defaults(func=partition_command)

    heal = sub.add_parser("heal", help="remove partitions and slow links")
    _add_dir(heal)
    heal.set_defaults(func=heal_command)

    slow = sub.add_parser("slow", help="delay every frame to and from a node")
    _add_dir(slow)
    slow.add_argument("node", help="a node: its index (2) or id (node-2)")
    slow.add_argument("--delay", type=int, required=True, help="milliseconds (0 removes the delay)")
    slow.set_defaults(func=slow_command)

    chaos = sub.add_parser("chaos", help="random kills, restarts, partitions and slow links under load")
    _add_dir(chaos)
    chaos.add_argument("--duration", type=float, default=60.0,
                       help="seconds of faults and load, counted once every node is up (default 60)")
    chaos.add_argument("--nodes", type=int, default=4, help="when the command starts its own network")
    chaos.add_argument("--seed", type=int, default=None, help="random seed of the faults (default: random)")
    chaos.add_argument("--rate", type=int, default=50, help="load: transfers per second")
    chaos.add_argument("--interval", type=float, default=4.0, help="seconds between faults")
    chaos.add_argument("--json", default=None, help="write the summary as JSON to this file")
    chaos.set_defaults(func=chaos_command)

    add = sub.add_parser("add-node", help="create a node that is not in the genesis (it joins by governance)")
    _add_dir(add)
    add.add_argument("--member", help="the member running it (default: a new member m<N>, added by the proposal)")
    add.add_argument("--print-action", action="store_true",
                     help="print only the JSON array of actions (for `ledger governance propose --action`)")
    add.add_argument("--full", action="store_true",
                     help="a full node (follows the chain, never votes): admitted by the other nodes' configs, started")
    add.add_argument("--timeout", type=float, default=60.0, help="--full: seconds to wait until it follows")
    add.set_defaults(func=add_node_command)

    reconf = sub.add_parser("reconfigure", help="scenario 7: onboard a member and its validator, remove one, "
                                                "rotate keys, under load; check no fork, gaps, a statement")
    _add_dir(reconf)
    reconf.add_argument("--rate", type=int, default=20, help="load: transfers per second")
    reconf.add_argument("--bls-only", action="store_true",
                        help="rotate only node-1's BLS consensus key (default: its transport identity key too)")
    reconf.add_argument("--json", default=None, help="write the report as JSON to this file")
    reconf.set_defaults(func=reconfigure_command)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _fail(exc: TestnetError) -> int:
    print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
    return 1


def print_addresses(net: Testnet) -> None:
    for i in range(net.n):
        api = net.api_url(i)
        note = "" if api_answers(api) else "  (API not answering)"
        print(f"  node-{i}  pid {net.pid(i)}  p2p {net.host}:{net.p2p_ports[i]}  api {api}{note}")
        print(f"          admin {net.socket_path(i)}  log {net.log_path(i)}")
    print(f"  genesis {net.genesis_path}")
    print(f"  test account keys {net.accounts_path}")


def up_command(args: argparse.Namespace) -> int:
    try:
        if os.path.exists(os.path.join(args.dir, "testnet.json")):
            net = Testnet.open(args.dir)
            if args.nodes != net.n:
                print(f"note: {args.dir} holds a {net.n}-node testnet; starting that one", file=sys.stderr)
        else:
            net = Testnet.create(args.dir, args.nodes, users=args.users)
            print(f"generated a {net.n}-node testnet in {net.directory} (chain {net.chain_id})")
        started = time.monotonic()
        print(f"starting {net.n} nodes ...", flush=True)
        with StartProgress(net.api_urls(), sys.stdout):
            net.up(args.timeout)
        net.close()
        print(f"up in {time.monotonic() - started:.1f}s:")
        print_addresses(net)
        print(f"  explorer {net.api_url(0)}/  (every node serves the block explorer at /)")
        print_testnet_profile(net.api_urls(), net.genesis_path, net.accounts_path, net.chain_id, net.directory)
    except TestnetError as exc:
        return _fail(exc)
    return 0


def status_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
    except TestnetError as exc:
        return _fail(exc)
    st = net.status()
    if args.json:
        print(json.dumps(st.to_json(), indent=2))
    else:
        print(f"{'node':8} {'role':9} {'pid':>7} {'height':>7} {'round':>7} {'peers':>5} {'mempool':>7}  state root")
        for n in st.nodes:
            if not n.running:
                print(f"{n.node_id:8} {'?':9} {'-':>7} {'down':>7}")
                continue
            if n.height is None:
                print(f"{n.node_id:8} {'?':9} {n.pid:>7} {'?':>7}   (not answering)")
                continue
            root = (n.state_root or "")[:16]
            print(f"{n.node_id:8} {n.role or '?':9} {n.pid:>7} {n.height:>7} {_cell(n.round):>7} {_cell(n.peers):>5} "
                  f"{_cell(n.mempool):>7}  {root}")
        faults = net.state.get("faults") or {}
        if faults.get("partition") or faults.get("slow"):
            print(f"faults in force: {describe_faults(faults)}")
        if st.common_height is None:
            print("no node answers")
        else:
            verdict = "agree" if st.roots_agree else "DISAGREE"
            print(f"state roots at common height {st.common_height} (the lowest head of the nodes that follow): "
                  f"{verdict}")
    if st.common_height is not None and st.roots_agree is False:
        return 3
    return 0


def _cell(value: object) -> str:
    """A status table cell: '-' for a value the node did not report (never 'None')."""
    return "-" if value is None else str(value)


def describe_faults(faults: dict) -> str:
    """{'partition': [[0, 1], [2, 3]], 'slow': {'3': 200}} -> 'partition node-0,node-1 | node-2,node-3; node-3
    slowed by 200 ms'."""
    parts = []
    if faults.get("partition"):
        parts.append("partition " + " | ".join(",".join(f"node-{i}" for i in g) for g in faults["partition"]))
    for node, ms in sorted((faults.get("slow") or {}).items()):
        parts.append(f"node-{node} slowed by {ms} ms")
    return "; ".join(parts) or "none"


def logs_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
        i = net.parse_node(args.node)
    except TestnetError as exc:
        return _fail(exc)
    print(net.tail(i, args.lines))
    if args.follow:
        try:
            with open(net.log_path(i), "rb") as f:
                f.seek(0, os.SEEK_END)
                while True:
                    chunk = f.read()
                    if chunk:
                        sys.stdout.write(chunk.decode(errors="replace"))
                        sys.stdout.flush()
                    else:
                        time.sleep(0.2)
        except KeyboardInterrupt:
            return 0
    return 0


def down_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
    except TestnetError as exc:
        if args.wipe and exc.code == "no_testnet":
            return 0
        return _fail(exc)
    result = net.down(args.grace)
    for i, what in result.items():
        print(f"node-{i}: {what.replace('_', ' ')}")
    if args.wipe:
        shutil.rmtree(net.directory, ignore_errors=True)
        print(f"removed {net.directory}")
    return 0


def kill_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
        i = net.parse_node(args.node)
    except TestnetError as exc:
        return _fail(exc)
    print(f"node-{i}: {'killed (SIGKILL)' if net.kill(i) else 'was not running'}")
    return 0


def restart_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
        i = net.parse_node(args.node)
        pid = net.restart(i, args.timeout)
        net.close()
    except TestnetError as exc:
        return _fail(exc)
    print(f"node-{i}: running again (pid {pid}, height {net.height(i)})")
    return 0


def partition_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
        groups = [[net.parse_node(x) for x in g.split(",") if x.strip()] for g in args.groups]
        notes = net.partition(groups)
    except TestnetError as exc:
        return _fail(exc)
    for note in notes:
        print(f"note: {note}")
    print("partitioned: " + " | ".join(",".join(f"node-{i}" for i in g) for g in net.state["faults"]["partition"]))
    return 0


def heal_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
        notes = net.heal()
    except TestnetError as exc:
        return _fail(exc)
    for note in notes:
        print(f"note: {note}")
    print("healed: no partitions, no slow links")
    return 0


def slow_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
        i = net.parse_node(args.node)
        net.slow(i, args.delay)
    except TestnetError as exc:
        return _fail(exc)
    print(f"node-{i}: every frame to and from it delayed by {args.delay} ms")
    return 0


def chaos_command(args: argparse.Namespace) -> int:
    from node.tools.chaos import ChaosConfig, run_chaos

    config = ChaosConfig(duration_s=args.duration, seed=args.seed, rate=args.rate, interval_s=args.interval)
    try:
        report = run_chaos(args.dir, config, nodes=args.nodes, out=sys.stdout)
    except TestnetError as exc:
        return _fail(exc)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=2)
    return 0 if report.ok else 3


def add_node_command(args: argparse.Namespace) -> int:
    try:
        net = Testnet.open(args.dir)
        info = net.add_node(member=args.member, full=args.full)
        if args.full:
            net.start(info["index"])
            net.wait_up(args.timeout, [info["index"]])
            info["height"] = net.height(info["index"])
    except TestnetError as exc:
        return _fail(exc)
    if args.full:
        print(json.dumps(info, indent=2))
        return 0
    if args.print_action:
        print(json.dumps(info["actions"]))
        return 0
    print(json.dumps(info, indent=2))
    gov = net.governor_key_path("m0")
    print(f"next: ledger governance propose --id add-{info['node']} --action '{json.dumps(info['actions'])}' "
          f"--key {gov} --node {net.api_url(0)}\n"
          f"      (approvals from other members' governors: ledger governance approve add-{info['node']} --key "
          f"{net.governor_key_path('m1')} ...)\n"
          f"      then start it: ledger testnet restart {info['node']} --dir {args.dir}", file=sys.stderr)
    return 0


def reconfigure_command(args: argparse.Namespace) -> int:
    from node.tools.demo import DemoError, play_onboarding

    try:
        net = Testnet.open(args.dir)
        report = play_onboarding(net, sys.stdout, rate=args.rate, rotate_identity=not args.bls_only)
    except (TestnetError, DemoError) as exc:
        return _fail(exc)  # type: ignore[arg-type]
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=2)
    return 0 if report.ok else 3
