"""`ledger hosts`: a network of validators on separate hosts of this machine — Linux network namespaces on a bridge,
each validator with its own IP address (node/tools/hosts.py, node/tools/netns.py). Needs root and iproute2.

    ledger hosts up --nodes 4 --dir ./hosts     hosts, the key ceremony on each, nodes started; prints the API URLs
    ledger hosts status --dir ./hosts            per host: address, cable, node running, height (JSON; --tls-ca FILE
                                                 for nodes whose API is behind TLS)
    ledger hosts cut 3 --dir ./hosts             pull host 3's cable (its link goes down): a network partition
    ledger hosts heal 3 --dir ./hosts            plug it back
    ledger hosts down --dir ./hosts              stop the nodes, delete the namespaces and the bridge
    ledger hosts clean                           delete what crashed runs left (a `hosts up` network is kept while
                                                 its nodes run)

The chain id defaults to testnet-hosts: a local network, so the APIs serve plain HTTP (docs/operations.md, "TLS on
the API"). Exit codes: 0 done, 1 failed (the message names the step), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys

from node.errors import NodeError
from node.tools.hosts import DEFAULT_CHAIN_ID, MAX_NODES, HostNetwork
from node.tools.netns import remove_stale

READY_TIMEOUT_S = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hosts", help="validators on separate hosts (network namespaces; root)")
    sub = parser.add_subparsers(dest="hosts_command", metavar="WHAT")
    up = sub.add_parser("up", help="create the hosts, run the key ceremony on each, start the nodes")
    up.add_argument("--nodes", type=int, default=4, help=f"validators, one per host (1..{MAX_NODES}, default 4)")
    up.add_argument("--dir", required=True, help="where the hosts' disks and the coordinator's files go")
    up.add_argument("--chain-id", default=DEFAULT_CHAIN_ID, help=f"default {DEFAULT_CHAIN_ID}")
    up.set_defaults(func=run_up)
    status = sub.add_parser("status", help="per host: address, cable, node, height")
    status.add_argument("--dir", required=True, help="the directory of `ledger hosts up`")
    status.add_argument("--tls-ca", metavar="FILE", help="CA bundle of the nodes' API certificates (TLS APIs)")
    status.set_defaults(func=run_status)
    for name, what in (("cut", "take a host's link down (pull its cable)"), ("heal", "bring a host's link up")):
        p = sub.add_parser(name, help=what)
        p.add_argument("host", type=int, help="the host's index (0 .. nodes-1)")
        p.add_argument("--dir", required=True, help="the directory of `ledger hosts up`")
        p.set_defaults(func=run_link, action=name)
    down = sub.add_parser("down", help="stop the nodes, delete the namespaces and the bridge")
    down.add_argument("--dir", required=True, help="the directory of `ledger hosts up`")
    down.set_defaults(func=run_down)
    clean = sub.add_parser("clean", help="delete the namespaces and bridges crashed runs left behind")
    clean.set_defaults(func=run_clean)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _fail(exc: NodeError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def run_up(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= MAX_NODES:
        print(f"error: --nodes must be 1..{MAX_NODES}", file=sys.stderr)
        return 2
    try:
        net = HostNetwork.create(args.dir, args.nodes, chain_id=args.chain_id, kept=True)
    except NodeError as exc:
        return _fail(exc)
    try:
        genesis_hash = net.ceremony()
        net.start_all()
        net.wait_ready(READY_TIMEOUT_S)
    except (NodeError, OSError) as exc:
        net.destroy()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"genesis hash: {genesis_hash} (checked on every host)")
    print(f"admin key:    {net.admin_key_path}")
    for i in range(net.size):
        print(
            f"host {i}: {net.address(i)}  namespace {net.lan.hosts[i].namespace}  API {net.api_url(i)}  "
            f"log {net.log_path(i)}"
        )
    return 0


def run_status(args: argparse.Namespace) -> int:
    try:
        net = HostNetwork.open(args.dir)
        context = ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None
        rows = []
        for i in range(net.size):
            status = None if net.lan.is_cut(i) else net.status(i, context)
            rows.append(
                {
                    "host": i,
                    "namespace": net.lan.hosts[i].namespace,
                    "address": net.address(i),
                    "cable": "cut" if net.lan.is_cut(i) else "up",
                    "running": net.running(i),
                    "height": None if status is None else status.get("height"),
                }
            )
    except NodeError as exc:
        return _fail(exc)
    print(json.dumps({"chain_id": net.chain_id, "hosts": rows}, indent=2))
    return 0


def run_link(args: argparse.Namespace) -> int:
    try:
        net = HostNetwork.open(args.dir)
        if not 0 <= args.host < net.size:
            print(f"error: no host {args.host} (0..{net.size - 1})", file=sys.stderr)
            return 2
        (net.cut if args.action == "cut" else net.heal)(args.host)
    except NodeError as exc:
        return _fail(exc)
    return 0


def run_down(args: argparse.Namespace) -> int:
    try:
        left = HostNetwork.open(args.dir).destroy()
    except NodeError as exc:
        return _fail(exc)
    if left:
        print(f"error: could not delete {', '.join(left)}", file=sys.stderr)
        return 1
    return 0


def run_clean(args: argparse.Namespace) -> int:
    try:
        removed = remove_stale()
    except NodeError as exc:
        return _fail(exc)
    print(json.dumps({"removed": removed}))
    return 0
