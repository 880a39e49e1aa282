"""`ledger bench admit`: admission alone -- how many signed transfers one validator admits per second through its
HTTP API (POST /v1/tx/batch), and what each costs the node and the load generator.

    report = run_admit_bench(AdmitBenchConfig(txs=20_000), out=sys.stderr)

Setup (not timed): a 4-validator testnet of which only node-0 runs (`peers=1`: node-0 and node-1), so no quorum
forms, nothing commits and the mempool only fills: every cycle the node spends goes to admission (HTTP, body
decoding, transaction decoding and checks, the signature checks on the verifier's workers, and with a peer the
gossip out and the peer's admission of it). node-0's mempool is sized to hold every transaction of the run; the
peer keeps a testnet's default pool (MempoolLimits.max_txs), so with more transactions than that it refuses the rest
of the gossip as MEMPOOL_FULL, which is what every pool does under a sustained maximum load. The
load processes pre-sign their transfers (node.tools.loadgen.presign), then at one instant start posting batches of
`batch` over `connections` connections each, as fast as the node answers (node.tools.loadgen's load process, the
one `ledger bench` uses).

Measured: admitted tx/s = transactions admitted / (last admission - start); the CPU seconds of node-0 (its process
and its verifier workers, /proc) and of the load processes over the same phase, per admitted transaction (µs);
with a peer, the peer's too. CPU time is the figure to compare on a shared machine: wall-clock rates move with the
other work on the cores, CPU per transaction much less.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any, Final

from node.tools.report_text import maybe

GENESIS_VALIDATORS: Final = 4  # quorum 3: with at most 2 running, nothing commits
MAX_PEERS: Final = 1
MAX_TXS: Final = 200_000
START_TIMEOUT_S: Final = 90.0
RUN_TIMEOUT_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class AdmitBenchConfig:
    txs: int = 20_000
    processes: int = 1
    connections: int = 8  # per load process
    batch: int = 256  # transactions per POST /v1/tx/batch (the API's max_batch)
    body: str = "msgpack"  # "msgpack" (an array of bin) or "json" ({"txs": [hex, ...]})
    peers: int = 0  # running peers of node-0 (gossip out, and their admission of it)
    users: int = 64
    seed: int = 1

    def __post_init__(self) -> None:
        assert 1 <= self.txs <= MAX_TXS and self.processes >= 1 and self.connections >= 1
        assert 1 <= self.batch and self.body in ("msgpack", "json") and 0 <= self.peers <= MAX_PEERS
        assert self.users >= 2 * self.processes


@dataclass(slots=True)
class AdmitReport:
    txs: int
    admitted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    busy_retries: int = 0
    seconds: float = 0.0
    admitted_per_s: float = 0.0
    node_cpu_s: float = 0.0  # node-0 and its verifier workers
    node_cpu_us_per_tx: float = 0.0
    node_main_cpu_us_per_tx: float = 0.0  # node-0's own process (event loop, HTTP, decoding, mempool)
    peer_cpu_us_per_tx: float | None = None  # node-1 and its workers, admitting node-0's gossip
    load_cpu_us_per_tx: float = 0.0
    load_average: tuple[float | None, float | None] | None = None  # 1-minute load before and after
    config: dict[str, Any] = field(default_factory=dict)
    directory: str = ""  # the throwaway testnet (removed at the end)

    def to_json(self) -> dict[str, Any]:
        return {
            "txs": self.txs,
            "admitted": self.admitted,
            "refused": self.refused,
            "busy_retries": self.busy_retries,
            "seconds": self.seconds,
            "admitted_per_s": self.admitted_per_s,
            "node_cpu_s": self.node_cpu_s,
            "node_cpu_us_per_tx": self.node_cpu_us_per_tx,
            "node_main_cpu_us_per_tx": self.node_main_cpu_us_per_tx,
            "peer_cpu_us_per_tx": self.peer_cpu_us_per_tx,
            "load_cpu_us_per_tx": self.load_cpu_us_per_tx,
            "load_average": self.load_average,
            "config": self.config,
            "directory": self.directory,
        }


def _say(out: IO[str] | None, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
        out.flush()


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _size_mempool(net: Any, i: int, txs: int) -> None:
    """Let node i's mempool hold every transaction of the run (its config, before it starts)."""
    import dataclasses

    from node.validator.config import load_config, write_config

    path = net.config_path(i)
    config = load_config(path)
    write_config(path, dataclasses.replace(config, mempool_max_txs=max(config.mempool_max_txs, txs + 1024)))


def run_admit_bench(config: AdmitBenchConfig, out: IO[str] | None = None) -> AdmitReport:
    from node.tools.loadgen import LoadJob, start_load_processes
    from node.tools.localnet import load_accounts
    from node.tools.node_processes import process_cpu_seconds, process_tree_cpu_seconds
    from node.tools.testnet import Testnet, api_answers

    report = AdmitReport(
        txs=config.txs,
        config={
            "processes": config.processes,
            "connections": config.connections,
            "batch": config.batch,
            "body": config.body,
            "peers": config.peers,
        },
    )
    directory = tempfile.mkdtemp(prefix="ledger-bench-admit-")
    report.directory = directory
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = []
    net = None
    try:
        _say(
            out,
            f"creating a {GENESIS_VALIDATORS}-validator testnet in {directory}; starting node-0"
            + (f" and {config.peers} peer" if config.peers else "")
            + " (no quorum: nothing commits) ...",
        )
        net = Testnet.create(directory, GENESIS_VALIDATORS, users=config.users)
        running = list(range(1 + config.peers))
        _size_mempool(net, 0, config.txs)  # the peer keeps the default pool: above it, it refuses the gossip
        for i in running:
            net.start(i)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(api_answers(net.api_url(i)) for i in running):
            if time.monotonic() > deadline:
                raise TimeoutError("the node's API did not answer")
            time.sleep(0.2)
        if config.peers:  # gossip needs the link up
            while not all((net.node_status(i) or {}).get("peers_connected", 1) for i in running):
                if time.monotonic() > deadline:
                    raise TimeoutError("the nodes did not connect")
                time.sleep(0.2)
        accounts = load_accounts(net.accounts_path)
        users = sorted(a for a in accounts if a.startswith("user-"))
        per_count = -(-config.txs // config.processes)
        jobs = []
        for p in range(config.processes):
            senders = tuple((name, bytes(accounts[name]).hex()) for name in users[p :: config.processes])
            jobs.append(
                LoadJob(
                    p,
                    net.chain_id,
                    senders,
                    tuple(users),
                    (),
                    per_count,
                    10_000,
                    None,
                    RUN_TIMEOUT_S,
                    config.connections,
                    config.batch,
                    config.seed,
                    (net.api_url(0),),
                    config.body,
                )
            )
        _say(out, f"pre-signing {per_count * config.processes} transfers in {config.processes} load processes ...")
        go, results = start_load_processes(ctx, jobs, procs)
        pids = {i: net.pid(i) for i in running}
        tree0 = {i: process_tree_cpu_seconds(pid) if pid else None for i, pid in pids.items()}
        main0 = process_cpu_seconds(pids[0]) if pids[0] else None
        load_before = _load_average()
        start_at = time.time() + 0.2
        for _ in jobs:
            go.put(start_at)
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + RUN_TIMEOUT_S + 30
        while len(got) < len(jobs):
            if time.monotonic() > deadline:
                raise TimeoutError("the load processes did not finish")
            try:
                result = results.get(timeout=1.0)
            except Exception:  # noqa: BLE001 -- queue.Empty: keep waiting (and notice a dead process)
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError(f"a load process failed (exit codes {[p.exitcode for p in procs]})") from None
                continue
            if "error" in result:
                raise RuntimeError(f"a load process failed:\n{result['error']}")
            got.append(result)
        # Gossip to the peer is flushed within milliseconds; let its admissions finish before reading its CPU.
        if config.peers:
            time.sleep(1.0)
        tree1 = {i: process_tree_cpu_seconds(pid) if pid else None for i, pid in pids.items()}
        main1 = process_cpu_seconds(pids[0]) if pids[0] else None
        report.load_average = (load_before, _load_average())
        accepted = sorted(t for r in got for t in r["accepted"])
        report.admitted = len(accepted)
        report.busy_retries = sum(r["retried"] for r in got)
        for r in got:
            for k, v in r["failed"].items():
                report.refused[k] = report.refused.get(k, 0) + v
        t0 = start_at - time.time() + time.monotonic()  # the start instant on the monotonic clock (approximately)
        if accepted:
            report.seconds = round(accepted[-1] - min(t0, accepted[0]), 3)
            report.admitted_per_s = round(report.admitted / max(1e-3, report.seconds), 1)
            n = report.admitted
            if tree0[0] is not None and tree1[0] is not None:
                report.node_cpu_s = round(tree1[0] - tree0[0], 3)
                report.node_cpu_us_per_tx = round(report.node_cpu_s / n * 1e6, 1)
            if main0 is not None and main1 is not None:
                report.node_main_cpu_us_per_tx = round((main1 - main0) / n * 1e6, 1)
            if config.peers and tree0.get(1) is not None and tree1.get(1) is not None:
                report.peer_cpu_us_per_tx = round((tree1[1] - tree0[1]) / n * 1e6, 1)
            report.load_cpu_us_per_tx = round(sum(r["cpu_s"] for r in got) / n * 1e6, 1)
        return report
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        if net is not None:
            net.down(5)
        shutil.rmtree(directory, ignore_errors=True)


def format_admit_report(report: AdmitReport) -> str:
    c = report.config
    lines = [
        (
            f"load           {report.txs} pre-signed transfers, {c.get('processes')} process(es) x "
            f"{c.get('connections')} connections, batches of {c.get('batch')}, {c.get('body')} bodies"
        ),
        f"admitted       {report.admitted} in {report.seconds} s: {report.admitted_per_s} tx/s",
        f"refused        {sum(report.refused.values())}"
        + (f"  {report.refused}" if report.refused else "")
        + f"  (busy-retries {report.busy_retries})",
        (
            f"node cpu       {report.node_cpu_us_per_tx} µs per admitted transaction (node process "
            f"{report.node_main_cpu_us_per_tx} µs, the rest its verifier workers); {report.node_cpu_s} CPU-s"
        ),
        f"peer cpu       {maybe(report.peer_cpu_us_per_tx)} µs per transaction (admitting node-0's gossip)",
        f"load cpu       {report.load_cpu_us_per_tx} µs per admitted transaction",
        f"load average   {maybe(report.load_average)} (1 min, before / after)",
    ]
    return "\n".join(lines)


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--txs", type=int, default=20_000, help=f"transfers to admit (default 20000, at most {MAX_TXS})"
    )
    parser.add_argument("--processes", type=int, default=1, help="load processes (default 1)")
    parser.add_argument("--connections", type=int, default=8, help="HTTP connections per load process (default 8)")
    parser.add_argument("--batch", type=int, default=256, help="transactions per POST /v1/tx/batch (default 256)")
    parser.add_argument(
        "--body",
        choices=("msgpack", "json"),
        default="msgpack",
        help="batch bodies: a msgpack array of bin (default) or JSON hex strings",
    )
    parser.add_argument(
        "--peers",
        type=int,
        default=0,
        choices=range(MAX_PEERS + 1),
        help="also run node-1, which node-0 gossips to (default 0)",
    )
    parser.add_argument("--json", dest="json_out", default=None, help="also write the report as JSON here")


def run(args: Any) -> int:
    import json
    import sys

    if not 1 <= args.txs <= MAX_TXS or args.processes < 1 or args.connections < 1 or args.batch < 1:
        print(f"error: need 1 <= --txs <= {MAX_TXS}, --processes, --connections, --batch >= 1", file=sys.stderr)
        return 2
    config = AdmitBenchConfig(
        txs=args.txs,
        processes=args.processes,
        connections=args.connections,
        batch=args.batch,
        body=args.body,
        peers=args.peers,
        users=max(64, 2 * args.processes),
    )
    try:
        report = run_admit_bench(config, out=sys.stderr)
    except (OSError, ValueError, TimeoutError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_admit_report(report), file=sys.stderr)
    doc = report.to_json()
    doc["command"] = (
        f"ledger bench admit --txs {args.txs} --processes {args.processes} --connections "
        f"{args.connections} --batch {args.batch} --body {args.body} --peers {args.peers}"
    )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps(doc))
    return 0 if report.admitted else 1
