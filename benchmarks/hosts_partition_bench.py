"""Commit rate of validators on separate hosts (network namespaces, node/tools/hosts.py) before, during and after one
host's cable is pulled, and how long the returning host takes to catch up.

    sudo .venv/bin/python benchmarks/hosts_partition_bench.py [--nodes 4] [--window 20]

Runs the key ceremony, starts the nodes (chain testnet-hosts: plain HTTP), then measures committed blocks per second
at host 0 over `--window` seconds healthy, `--window` seconds with the last host cut off, and the seconds from
plugging it back until its height reaches the others'. Blocks are the chain's own (empty blocks every
`empty_block_interval_ms` = 500 ms when idle), so the rate shows what a lost validator costs consensus: the rounds it
leads time out. Prints one JSON object with the command and the load average; numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from node.tools.hosts import HostNetwork
from node.tools.netns import remove_stale


def height(net: HostNetwork, i: int) -> int:
    status = net.status(i)
    return -1 if status is None else int(status["height"])


def rate(net: HostNetwork, i: int, window: float) -> float:
    h0, t0 = height(net, i), time.monotonic()
    time.sleep(window)
    return round((height(net, i) - h0) / (time.monotonic() - t0), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    remove_stale()
    with tempfile.TemporaryDirectory() as tmp:
        net = HostNetwork.create(os.path.join(tmp, "net"), args.nodes)
        try:
            net.ceremony()
            net.start_all()
            net.wait_ready(180)
            time.sleep(5)  # past the start-up rounds
            cut = args.nodes - 1
            healthy = rate(net, 0, args.window)
            net.cut(cut)
            partitioned = rate(net, 0, args.window)
            net.heal(cut)
            t0 = time.monotonic()
            target = height(net, 0)
            while height(net, cut) < target:
                time.sleep(0.1)
            caught_up = round(time.monotonic() - t0, 2)
            after = rate(net, 0, args.window)
        finally:
            net.destroy()
    print(
        json.dumps(
            {
                "command": " ".join(["benchmarks/hosts_partition_bench.py", *sys.argv[1:]]),
                "nodes": args.nodes,
                "blocks_per_s_healthy": healthy,
                "blocks_per_s_one_host_cut": partitioned,
                "blocks_per_s_after_heal": after,
                "catch_up_s": caught_up,
                "target_height_at_heal": target,
                "loadavg": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
