"""A full node on a 4-validator testnet of real node processes, under a load of transfers: how fast it catches up
from genesis, and how far behind the validators it follows (docs/benchmarks.md, "Full node").

    PYTHONPATH=. python benchmarks/full_node_bench.py [--rate 50] [--before 20] [--follow 30]

1. A 4-validator testnet starts and commits transfers at `--rate` per second for `--before` seconds.
2. `add_node(full=True)` + start: the time until the full node's head reaches the height the validators had when
   it started (catch-up), then until it is within one block of the highest validator (live: the chain moved on
   meanwhile).
3. For `--follow` seconds under the same load, every 100 ms: the highest validator height minus the full node's
   height (the follow lag, in blocks); printed as median, 99th percentile and max, with the share of samples at most
   one block behind.
4. State roots of the full node and of node-2 compared at every height.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

from node.tools.load import TransferLoad
from node.tools.testnet import Testnet

VALIDATORS = [0, 1, 2, 3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50, help="transfers per second")
    parser.add_argument("--before", type=float, default=20.0, help="seconds of load before the full node starts")
    parser.add_argument("--follow", type=float, default=30.0, help="seconds of load while it follows")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="full-node-bench-") as directory:
        net = Testnet.create(directory, 4, seed=b"full-node-bench")
        load = None
        try:
            net.up(60)
            load = TransferLoad(net, args.rate, random.Random(5))
            load.start()
            time.sleep(args.before)
            info = net.add_node(full=True)
            full = int(info["index"])
            load.excluded.add(full)
            target = max(net.height(i) for i in VALIDATORS)
            started = time.monotonic()
            net.start(full)
            if not net.wait_height([full], target, 300):
                print("the full node did not catch up in 300 s", file=sys.stderr)
                return 1
            catch_up = time.monotonic() - started
            live_deadline = time.monotonic() + 300
            while time.monotonic() < live_deadline:
                if max(net.height(i) for i in VALIDATORS) - net.height(full) <= 1:
                    break
                time.sleep(0.05)
            live = time.monotonic() - started
            lags: list[int] = []
            deadline = time.monotonic() + args.follow
            while time.monotonic() < deadline:
                top = max(net.height(i) for i in VALIDATORS)
                lags.append(max(0, top - net.height(full)))
                time.sleep(0.1)
            load.finish()
            top = max(net.height(i) for i in VALIDATORS)
            net.wait_height([full], top, 60)
            agree = all(
                net.roots(full, lo, min(top, lo + 999)) == net.roots(2, lo, min(top, lo + 999))
                for lo in range(1, top + 1, 1000)
            )
            lags.sort()
            print(f"load {args.rate} transfers/s: {load.accepted} admitted; chain at height {top}")
            print(
                f"catch-up from genesis to height {target} (the validators' when it started): {catch_up:.1f} s "
                f"({target / catch_up:.0f} blocks/s, process start included); within one block of the live head "
                f"after {live:.1f} s"
            )
            print(
                f"follow lag over {len(lags)} samples (blocks behind the highest validator): median "
                f"{statistics.median(lags):.0f}, p99 {lags[int(len(lags) * 0.99) - 1]}, max {lags[-1]}; "
                f"<= 1 block in {sum(1 for x in lags if x <= 1) * 100 // len(lags)}% of samples"
            )
            print(f"state roots equal to node-2's at every height 1..{top}: {agree}")
            print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
            return 0 if agree else 1
        finally:
            if load is not None:
                load.finish()
            net.kill_all()


if __name__ == "__main__":
    sys.exit(main())
