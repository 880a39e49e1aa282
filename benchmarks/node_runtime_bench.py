"""Node runtime benchmark: committed tx/s of a dev chain and of 4 validator processes, and block-sync catch-up.

    .venv/bin/python benchmarks/node_runtime_bench.py [--txs 20000] [--nodes 4]     (--nodes 1: the dev chain)

Starts real `ledger node run` processes on loopback (tests/node/tools/cluster.py), loads them with pre-signed transfers
through their admin sockets, and prints committed tx/s (first commit of the load to the last), then wipes one node
and measures how fast it catches up by block sync (blocks/s and tx/s, from the node's own sync log line).
Numbers depend on the machine; on the shared 2-core development machine other work competes for the cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.node.tools.cluster import Cluster


def load(c: Cluster, txs: int) -> dict[str, float]:
    raws = [c.transfer(k).hex() for k in range(txs)]
    start_txs = sum((c.status(i) or {}).get("committed_txs", 0) for i in range(1))
    t0 = time.monotonic()
    chunks = [raws[i:i + 2000] for i in range(0, len(raws), 2000)]

    def send(k: int) -> int:
        answer = c.request(k % c.n, {"op": "submit_many", "txs": chunks[k]}, timeout=120)
        return sum(1 for code in answer["codes"] if code == 0)

    with concurrent.futures.ThreadPoolExecutor(c.n) as pool:
        admitted = sum(pool.map(send, range(len(chunks))))
    t_admitted = time.monotonic() - t0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = (c.status(0) or {}).get("committed_txs", 0) - start_txs
        if done >= admitted:
            break
        time.sleep(0.05)
    seconds = time.monotonic() - t0
    return {"txs": txs, "admitted": admitted, "admit_seconds": round(t_admitted, 2),
            "seconds": round(seconds, 2), "committed_tps": round(admitted / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--txs", type=int, default=20000)
    parser.add_argument("--nodes", type=int, default=4)
    args = parser.parse_args()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as d:
        c = Cluster(os.path.join(d, "net"), args.nodes)
        c.users = c.users  # every user sends in turn
        c.start_all()
        try:
            c.wait_height(list(range(c.n)), 2, 60)
            out["network"] = load(c, args.txs)
            if c.n == 1:
                print(json.dumps(out, indent=2))
                return
            height = c.height(0)
            c.kill(c.n - 1)
            c.wipe(c.n - 1)
            t0 = time.monotonic()
            c.start(c.n - 1)
            c.wait_height([c.n - 1], height, 300)
            out["catch_up"] = {"blocks": height, "seconds_to_height": round(time.monotonic() - t0, 2)}
            m = None
            deadline = time.monotonic() + 120
            while m is None and time.monotonic() < deadline:
                with open(c.log_path(c.n - 1), encoding="utf-8") as f:
                    m = re.search(r"sync_done \S+ blocks=(\d+) seconds=([\d.]+) blocks_per_s=(\d+)", f.read())
                time.sleep(0.2)
            if m is not None:
                out["catch_up"].update(sync_blocks=int(m[1]), sync_seconds=float(m[2]), blocks_per_s=int(m[3]),
                                       txs_per_s=round(args.txs / float(m[2]), 1))
        finally:
            c.stop_all()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
