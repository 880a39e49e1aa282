"""The same transfers into 4 validator processes in bulk, through the admin sockets or through the HTTP API: committed
tx/s and the CPU per committed transaction of every node with its verifier workers (issue 14, admission side).

    .venv/bin/python benchmarks/bulk_admission_bench.py [--txs 20000] [--via admin,api,admin,api]

Per run: a fresh 4-validator network (tests/node/tools/cluster.py), `--txs` pre-signed transfers (not timed), then at
once either `{"op": "submit_many"}` of 2,000 over the admin sockets (4 at a time; node_runtime_bench.py's load) or
`POST /v1/tx/batch` msgpack batches of 256 over 16 connections, spread over the 4 nodes; timed until node-0 has
committed every admitted one. The runs of `--via` alternate in one invocation, so they share the machine's load.
CPU comes from /proc (node processes and their descendants, the verifier workers), the figure to compare on a
shared machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgpack

from node.tools.node_processes import process_cpu_seconds, process_tree_cpu_seconds
from tests.node.tools.cluster import Cluster

ADMIN_CHUNK = 2_000
API_BATCH = 256
API_CONNECTIONS = 16
COMMIT_TIMEOUT_S = 300.0


def _submit_admin(c: Cluster, raws: list[bytes]) -> int:
    chunks = [[r.hex() for r in raws[i : i + ADMIN_CHUNK]] for i in range(0, len(raws), ADMIN_CHUNK)]

    def send(k: int) -> int:
        answer = c.request(k % c.n, {"op": "submit_many", "txs": chunks[k]}, timeout=120)
        return sum(1 for code in answer["codes"] if code == 0)

    with concurrent.futures.ThreadPoolExecutor(c.n) as pool:
        return sum(pool.map(send, range(len(chunks))))


def _submit_api(c: Cluster, raws: list[bytes]) -> int:
    chunks = [raws[i : i + API_BATCH] for i in range(0, len(raws), API_BATCH)]
    urls = [c.net.api_url(i) for i in range(c.n)]

    def send(k: int) -> int:
        request = urllib.request.Request(
            urls[k % c.n] + "/v1/tx/batch",
            data=msgpack.packb(chunks[k]),
            headers={"Content-Type": "application/msgpack"},
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            doc = json.loads(answer.read())
        return sum(1 for r in doc["results"] if r["code"] == 0)

    with concurrent.futures.ThreadPoolExecutor(API_CONNECTIONS) as pool:
        return sum(pool.map(send, range(len(chunks))))


def run_once(via: str, txs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        c = Cluster(os.path.join(d, "net"), 4)
        c.start_all()
        try:
            c.wait_height(list(range(c.n)), 2, 60)
            raws = [c.transfer(k) for k in range(txs)]
            pids = [c.net.pid(i) for i in range(c.n)]
            assert all(pids)
            base = (c.status(0) or {}).get("committed_txs", 0)
            tree0 = [process_tree_cpu_seconds(p) or 0.0 for p in pids]  # type: ignore[arg-type]
            main0 = [process_cpu_seconds(p) or 0.0 for p in pids]  # type: ignore[arg-type]
            load0 = os.getloadavg()[0]
            t0 = time.monotonic()
            admitted = _submit_admin(c, raws) if via == "admin" else _submit_api(c, raws)
            admit_s = time.monotonic() - t0
            while (c.status(0) or {}).get("committed_txs", 0) - base < admitted:
                if time.monotonic() - t0 > COMMIT_TIMEOUT_S:
                    raise TimeoutError("the admitted transactions did not commit")
                time.sleep(0.05)
            seconds = time.monotonic() - t0
            tree = sum((process_tree_cpu_seconds(p) or 0.0) - a for p, a in zip(pids, tree0, strict=True))  # type: ignore[arg-type]
            main = sum((process_cpu_seconds(p) or 0.0) - a for p, a in zip(pids, main0, strict=True))  # type: ignore[arg-type]
            return {
                "via": via,
                "txs": txs,
                "admitted": admitted,
                "admit_s": round(admit_s, 2),
                "seconds": round(seconds, 2),
                "tps": round(admitted / seconds, 1),
                "cpu_us_per_tx": round(tree / max(1, admitted) * 1e6, 1),
                "node_process_cpu_us_per_tx": round(main / max(1, admitted) * 1e6, 1),
                "load_average": [round(load0, 1), round(os.getloadavg()[0], 1)],
            }
        finally:
            c.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--via", default="admin,api", help="comma-separated runs, in order: admin or api")
    args = parser.parse_args()
    runs = [v.strip() for v in args.via.split(",") if v.strip()]
    if not runs or any(v not in ("admin", "api") for v in runs) or args.txs < 1:
        parser.error("--via takes admin and api; --txs >= 1")
    for via in runs:
        print(json.dumps(run_once(via, args.txs)), flush=True)


if __name__ == "__main__":
    main()
