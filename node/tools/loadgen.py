"""The network load benchmark behind `ledger bench network` (Hyperledger Caliper-style report).

    report = run_network_bench(BenchConfig(nodes=4, duration_s=10, rate=None), out=sys.stderr)

What it does:
1. Uses a running testnet (`--dir` of `ledger testnet up`) or creates and starts its own (removed afterwards), with
   enough test accounts that every load process signs from its own senders (one mempool lane each).
2. Starts `processes` load processes (multiprocessing, spawn). Each one pre-signs its share of plain CASH-T transfers
   (1 unit, sender -> another test account, node.tools.load.signed_transfer) before the clock starts, then submits them through the nodes' admin
   sockets (`{"op": "submit"}`), `connections` pipelined connections per process spread over the nodes, `batch` lines
   per write. A "busy, retry" answer (MEMPOOL_FULL, MEMPOOL_ACCOUNT_FULL) is retried after a short pause; any other
   non-zero code counts as failed. `rate=None` means as fast as the network admits. A node that cannot be reached
   (killed, restarting, partitioned away by a tester) does not stop the load: the connection's unanswered batch goes
   again, unchanged, to the next node (`unreachable` counts such batches; a copy a node already pooled answers
   "already pending", which counts as accepted).
3. Meanwhile the parent samples node-0's committed transaction counter every 50 ms for its progress lines
   (node.tools.load.CommitMonitor), and the CPU time of every node process (from /proc).
4. Commit latency: each accepted transaction's start -- at a fixed rate the instant the schedule made it due (time
   spent waiting for a connection, for its batch of PACE_S worth of the rate, or in busy retries counts), at max the
   instant its request was written -- is matched against node-0's committed-count curve in that order (the k-th
   accepted transaction is taken as committed when the count has grown by k); the admission alone (request written
   -> answer read) is reported beside it. The curve
   is made of the instants node-0's blocks became durable (admin `commit_times`, the machine's monotonic clock, which
   the load processes share), so its resolution is the commits themselves (`latency_resolution`; the 50 ms samples
   stand in if node-0 no longer keeps them). The mempool reaps lanes round robin, so this is an estimate of the
   distribution, exact for its count.
5. Before the load (before the bench's own network starts; with --dir, the network idle): raw Ed25519
   verifications per second over all cores (one process per core, pynacl), reported with its timing and the load
   average as `verify_phase`, and `efficiency = committed tx/s x validators / verify rate`. With `--rate max` the
   rate reached is also `max_rate_tps`: the latency target is measured at half of it.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from ledger.schema import MAX_TX_LIFETIME
from node.tools.load import EXPIRY_BLOCKS
from node.tools.report_text import maybe, per_node

RETRY_CODES: Final = frozenset({3300, 3301})  # MEMPOOL_FULL, MEMPOOL_ACCOUNT_FULL: busy, retry
ALREADY_PENDING: Final = 3302
SAMPLE_S: Final = 0.05
DRAIN_TIMEOUT_S: Final = 20.0
MAX_PRESIGN_PER_PROCESS: Final = 150_000
# Transactions of one load process per expiry height: a process's k-th transfer expires at head + EXPIRY_BLOCKS +
# k // EXPIRY_GROUP_TXS. Clients sign with `expiry = head + N`, so the transactions of a block share one or two
# replay buckets of about a block's size; one expiry height for a whole run (expiry_group 0, the workload before
# 2026-12-03) made every block rewrite one bucket of up to 16,384 ids (~550 KB: docs/benchmarks.md) under protocol 2;
# protocol 3's 256-id chunks bound that to 8 KB per block, but a client population does not sign that way.
EXPIRY_GROUP_TXS: Final = 512
MAX_RATE_GUESS: Final = 3_000  # tx/s used to size the pre-signed stock for --rate max
BUSY_PAUSE_S: Final = 0.02  # first pause before resubmitting transactions a node refused as busy
BUSY_PAUSE_MAX_S: Final = 0.32  # the pause doubles while whole batches are refused as busy, up to this
UNREACHABLE_PAUSE_S: Final = 0.1  # before a batch whose node could not be reached goes to the next node
PACE_S: Final = 0.02  # at a fixed rate, a process sends what has come due once this many seconds of its rate have


@dataclass(frozen=True, slots=True)
class BenchConfig:
    nodes: int = 4
    duration_s: float = 10.0
    rate: int | None = None  # tx/s over all load processes; None: as fast as admitted
    processes: int = 2
    connections: int = 8  # per load process
    batch: int = 64  # pipelined submits per connection write
    users: int = 64
    body: str = "msgpack"  # the API batches' encoding: "msgpack" (an array of bin) or "json" ({"txs": [hex, ...]})
    directory: str | None = None  # an existing testnet to use
    verify_seconds: float = 2.0
    seed: int = 1
    via: str = "auto"  # "api" (POST /v1/tx/batch), "admin" (admin sockets), "auto": the API when every node serves it
    timeline: bool = False  # also join the nodes' round timelines of the load window (node/tools/round_report.py)
    expiry_group: int = EXPIRY_GROUP_TXS  # transactions of a load process per expiry height; 0: one for the run


@dataclass(slots=True)
class BenchReport:
    validators: int
    duration_s: float
    rate: int | None
    submitted: int = 0
    accepted: int = 0
    committed: int = 0
    failed: int = 0
    retried: int = 0
    unreachable: int = 0  # batches sent again to another node because theirs could not be reached
    failed_codes: dict[str, int] = field(default_factory=dict)
    tps: float = 0.0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    # commit latency is measured from the instant each accepted transaction was sent (its request written), as a
    # client sees it; admission (request sent -> answer received) is part of it, and reported on its own too
    admit_p50_ms: float | None = None
    admit_p99_ms: float | None = None
    cpu_per_node: dict[str, float] = field(default_factory=dict)
    # per node, the node process and its verifier workers together (% of one core over the measured wall time)
    cpu_per_node_with_workers: dict[str, float] = field(default_factory=dict)
    load_cpu_percent: float | None = None  # the load processes together, % of one core over the load phase
    load_cpu_us_per_tx: float | None = None  # the load processes' CPU per accepted transaction (µs)
    body: str = ""  # the API batches' encoding
    # every node process with its verifier workers, and the load processes: CPU µs per committed transaction (the
    # figure to compare between runs on a shared machine, where wall-clock rates move with the other work)
    cpu_us_per_committed_tx: float | None = None
    verify_per_s: float = 0.0
    efficiency: float = 0.0
    cores: int = 1
    load_processes: int = 0
    network: str = ""
    via: str = ""
    latency_resolution: str = ""
    verify_phase: dict[str, Any] = field(default_factory=dict)
    max_rate_tps: float | None = None  # with --rate max: the rate measured (run again at half of it for latency)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # per node: the most memory it ever held (VmHWM)
    # per node: its worker processes' (verifier fork server and workers) peaks, summed; not in peak_rss_mb
    peak_rss_workers_mb: dict[str, float] = field(default_factory=dict)
    round_timeline: dict[str, Any] | None = None  # with BenchConfig.timeline: node/tools/round_report.summarize
    expiry_group: int = EXPIRY_GROUP_TXS  # BenchConfig.expiry_group of the run

    def to_json(self) -> dict[str, Any]:
        return {
            "tps": self.tps, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
            "max_ms": self.max_ms, "latency_from": "send" if self.rate is None else "schedule",
            "admit_p50_ms": self.admit_p50_ms,
            "admit_p99_ms": self.admit_p99_ms, "efficiency": self.efficiency, "validators": self.validators,
            "submitted": self.submitted, "accepted": self.accepted, "committed": self.committed,
            "failed": self.failed, "retried": self.retried, "unreachable": self.unreachable,
            "failed_codes": self.failed_codes,
            "cpu_per_node_percent": self.cpu_per_node, "verify_per_s": self.verify_per_s, "cores": self.cores,
            "cpu_per_node_with_workers_percent": self.cpu_per_node_with_workers,
            "load_cpu_percent": self.load_cpu_percent, "load_cpu_us_per_tx": self.load_cpu_us_per_tx,
            "body": self.body, "expiry_group": self.expiry_group,
            "cpu_us_per_committed_tx": self.cpu_us_per_committed_tx,
            "duration_s": self.duration_s, "rate": "max" if self.rate is None else self.rate,
            "load_processes": self.load_processes, "network": self.network, "via": self.via,
            "latency_resolution": self.latency_resolution, "verify_phase": self.verify_phase,
            "max_rate_tps": self.max_rate_tps, "peak_rss_mb": self.peak_rss_mb,
            "peak_rss_workers_mb": self.peak_rss_workers_mb,
            **({} if self.round_timeline is None else {"round_timeline": self.round_timeline}),
        }


# ---------------------------------------------------------------------------------------------- load process


@dataclass(frozen=True, slots=True)
class LoadJob:
    index: int
    chain_id: str
    senders: tuple[tuple[str, str], ...]  # (account, seed hex)
    recipients: tuple[str, ...]
    sockets: tuple[str, ...]
    count: int
    expiry: int
    rate: float | None  # tx/s for this process
    duration_s: float
    connections: int
    batch: int
    seed: int
    api_urls: tuple[str, ...] = ()  # non-empty: submit through the HTTP API instead of the admin sockets
    body: str = "msgpack"  # API batch bodies: "msgpack" (an array of bin) or "json" ({"txs": [hex, ...]})
    expiry_group: int = 0  # > 0: the k-th transfer expires at expiry + k // expiry_group (BenchConfig.expiry_group)


def presign(job: LoadJob) -> list[bytes]:
    """The job's transfers, signed (not timed): sender i of the job in turn, nonces unique per process."""
    from nacl.signing import SigningKey

    from node.tools.load import signed_transfer

    keys = [(name, SigningKey(bytes.fromhex(seed))) for name, seed in job.senders]
    rng = random.Random(job.seed * 1000 + job.index)
    out = []
    for k in range(job.count):
        sender, key = keys[k % len(keys)]
        recipient = rng.choice(job.recipients)
        if recipient == sender:
            recipient = job.recipients[(job.recipients.index(recipient) + 1) % len(job.recipients)]
        expiry = job.expiry + (k // job.expiry_group if job.expiry_group > 0 else 0)
        out.append(signed_transfer(job.chain_id, sender, key, recipient, (job.index << 40) | k, expiry))
    return out


def load_process(job: LoadJob, ready: Any, go: Any, results: Any) -> None:
    """Entry point of a load process: pre-sign, report ready, wait for the start signal, submit, report.
    A failure is reported to the parent with its traceback (as ("error", text)) instead of vanishing into an exit
    code."""
    try:
        txs = presign(job)
        ready.put(job.index)
        start_at = go.get()
        results.put(asyncio.run(_submit_all(job, txs, start_at)))
    except BaseException:
        import traceback

        text = traceback.format_exc(limit=20)
        ready.put(("error", text))
        results.put({"error": text})
        raise


async def _submit_all(job: LoadJob, txs: list[bytes], start_at: float) -> dict[str, Any]:
    # Encoded before the clock starts: admin-socket lines, or hex strings for the API's JSON batches.
    hexes = [raw.hex() for raw in txs] if not job.api_urls or job.body == "json" else []
    lines = [] if job.api_urls else [json.dumps({"op": "submit", "tx": h}).encode() + b"\n" for h in hexes]
    total = len(txs)
    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    t0 = time.monotonic()
    cpu0 = time.process_time()
    deadline = t0 + job.duration_s
    cursor = 0
    accepted: list[float] = []  # when each accepted transaction's answer arrived
    # When each accepted transaction's latency starts: at a fixed rate, the instant the schedule made it due (so time
    # it waited for a free connection or for its batch to fill counts: no coordinated omission); at max, the instant
    # its request was written.
    sent: list[float] = []
    admit_s: list[float] = []  # each accepted transaction's request written -> answer read
    failed: dict[str, int] = {}
    counts = {"submitted": 0, "retried": 0, "unreachable": 0}
    # At a fixed rate, what has come due goes out in batches of at least PACE_S worth of this process's rate (one
    # request per transaction would make the nodes' per-request cost, not their per-transaction cost, the limit).
    min_take = 1 if job.rate is None else max(1, min(job.batch, int(job.rate * PACE_S)))

    def due_at(i: int) -> float | None:
        return None if job.rate is None else t0 + i / job.rate

    def take(n: int) -> list[int]:
        nonlocal cursor
        now = time.monotonic()
        if now >= deadline:
            return []
        if job.rate is not None:
            allowed = int((now - t0) * job.rate) + 1
            if allowed - cursor < min(min_take, total - cursor):
                return []
            n = min(n, allowed - cursor)
        n = min(n, total - cursor)
        if n <= 0:
            return []
        out = list(range(cursor, cursor + n))
        cursor += n
        return out

    async def unreachable() -> bool:
        """A batch whose node could not be reached: True to send it again (to the next node), False when the load
        is over."""
        counts["unreachable"] += 1
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(UNREACHABLE_PAUSE_S)
        return True

    async def worker(paths: list[str]) -> None:
        turn = 0
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        retry: list[int] = []
        try:
            while True:
                idx = retry + take(job.batch - len(retry))
                retry = []
                if not idx:
                    if time.monotonic() >= deadline or cursor >= total:
                        return
                    await asyncio.sleep(0.005)
                    continue
                sent_at = time.monotonic()
                try:
                    if conn is None:
                        conn = await asyncio.open_unix_connection(paths[turn % len(paths)], limit=1 << 22)
                    reader, writer = conn
                    writer.write(b"".join(lines[i] for i in idx))
                    await writer.drain()
                    answers = [json.loads(await reader.readline()) for _ in idx]
                except (OSError, ValueError):  # refused, reset, or closed mid-answer (readline gives b"")
                    if conn is not None:
                        conn[1].close()
                    conn, turn = None, turn + 1
                    if not await unreachable():
                        return
                    retry = idx
                    continue
                record(idx, answers, retry, sent_at)
                if retry:
                    if time.monotonic() >= deadline:
                        return
                    await asyncio.sleep(0.02)
        finally:
            if conn is not None:
                conn[1].close()

    def record(idx: list[int], answers: list[dict[str, Any]], retry: list[int], sent_at: float) -> None:
        answered = time.monotonic()
        for i, answer in zip(idx, answers, strict=True):
            code = int(answer.get("code", -1))
            if code in RETRY_CODES:
                retry.append(i)
                counts["retried"] += 1
                continue
            counts["submitted"] += 1
            if code == 0 or code == ALREADY_PENDING:
                accepted.append(answered)
                admit_s.append(answered - sent_at)
                due = due_at(i)
                sent.append(sent_at if due is None else due)
            else:
                key = f"{code} {answer.get('message', answer.get('error', ''))}"[:80]
                failed[key] = failed.get(key, 0) + 1

    async def api_worker(urls: list[str]) -> None:
        import aiohttp
        import msgpack

        retry: list[int] = []
        pause = BUSY_PAUSE_S
        turn = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            while True:
                idx = retry + take(job.batch - len(retry))
                retry = []
                if not idx:
                    if time.monotonic() >= deadline or cursor >= total:
                        return
                    await asyncio.sleep(0.005)
                    continue
                sent_at = time.monotonic()
                url = urls[turn % len(urls)] + "/v1/tx/batch"
                if job.body == "json":
                    request = http.post(url, json={"txs": [hexes[i] for i in idx]})
                else:
                    request = http.post(url, data=msgpack.packb([txs[i] for i in idx]),
                                        headers={"Content-Type": "application/msgpack"})
                try:
                    async with request as r:
                        doc = await r.json(content_type=None)
                except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                    turn += 1
                    if not await unreachable():
                        return
                    retry = idx
                    continue
                if r.status == 429 or r.status >= 500 or "results" not in doc:
                    retry = idx  # rate-limited or busy: the same batch again shortly
                    counts["retried"] += len(idx)
                else:
                    record(idx, doc["results"], retry, sent_at)
                if retry:
                    if time.monotonic() >= deadline:
                        return
                    # A full mempool: wait longer each time it is still full (every refused resubmission costs the
                    # node a decode), back to the shortest pause once something is admitted.
                    await asyncio.sleep(pause)
                    pause = min(BUSY_PAUSE_MAX_S, pause * 2) if len(retry) == len(idx) else BUSY_PAUSE_S
                else:
                    pause = BUSY_PAUSE_S

    # Each connection starts at its own node and moves on to the next one when that one cannot be reached.
    if job.api_urls:
        n = len(job.api_urls)
        await asyncio.gather(*(api_worker([job.api_urls[(job.index + c + k) % n] for k in range(n)])
                               for c in range(job.connections)))
    else:
        n = len(job.sockets)
        await asyncio.gather(*(worker([job.sockets[(job.index + c + k) % n] for k in range(n)])
                               for c in range(job.connections)))
    return {"index": job.index, "accepted": sorted(accepted), "sent": sent,
            "admit_s": admit_s, "failed": failed, **counts,
            "presigned": total, "used": cursor, "cpu_s": time.process_time() - cpu0,
            "wall_s": time.monotonic() - t0}


# ---------------------------------------------------------------------------------------------- verify rate


def _verify_worker(seconds: float) -> tuple[int, float]:
    from nacl.signing import SigningKey

    key = SigningKey(b"\x07" * 32)
    vk = key.verify_key
    msgs = [os.urandom(160) for _ in range(64)]
    sigs = [key.sign(m).signature for m in msgs]
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for m, s in zip(msgs, sigs, strict=True):
            vk.verify(m, s)
        done += len(msgs)
    return done, time.perf_counter() - start


def measure_verify_rate(seconds: float = 2.0, workers: int | None = None) -> float:
    """Raw Ed25519 verifications per second over all cores: one process per core verifying in a loop."""
    n = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(n) as pool:
        parts = pool.map(_verify_worker, [seconds] * n)
    return sum(done / elapsed for done, elapsed in parts)


# -------------------------------------------------------------------------------------------------- the run


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    assert sorted_values
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def estimate_latencies(accepted: Sequence[float], samples: Sequence[tuple[float, int]]) -> list[float]:
    """Match the k-th accepted transaction (admission time order) with the first sample whose committed count
    reached k. Returns the latencies (seconds) of the transactions seen committed."""
    out = []
    j = 0
    for k, t in enumerate(accepted, start=1):
        while j < len(samples) and samples[j][1] < k:
            j += 1
        if j >= len(samples):
            break
        out.append(max(0.0, samples[j][0] - t))
    return out


def _say(out: IO[str] | None, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
        out.flush()


def run_network_bench(config: BenchConfig, out: IO[str] | None = None) -> BenchReport:
    from node.tools.load import CommitMonitor
    from node.tools.localnet import load_accounts
    from node.tools.node_processes import descendants_peak_rss_mb, process_cpu_seconds, process_peak_rss_mb
    from node.tools.testnet import Testnet

    # The verify rate first, on a quiet machine: before the bench's own network starts (or, with --dir, with the
    # network idle), never after the load on cores still busy.
    cores = os.cpu_count() or 1
    _say(out, f"measuring raw Ed25519 verifications over {cores} cores ({config.verify_seconds:.0f}s) ...")
    verify_started = time.monotonic()
    verify_per_s = round(measure_verify_rate(config.verify_seconds), 1)
    verify_phase = {"verify_per_s": verify_per_s, "seconds": round(time.monotonic() - verify_started, 2),
                    "when": "before the load, the network idle" if config.directory is not None
                    else "before the network started", "load_average": _load_average()}
    own_dir: str | None = None
    if config.directory is not None:
        net = Testnet.open(config.directory)
        if not all(net.running(i) for i in range(net.n)):
            _say(out, f"starting the testnet in {net.directory} ...")
            net.up(90)
    else:
        own_dir = tempfile.mkdtemp(prefix="ledger-bench-")
        _say(out, f"creating a {config.nodes}-node testnet in {own_dir} ...")
        net = Testnet.create(own_dir, config.nodes, users=max(config.users, 2 * config.processes))
        net.up(90)
    report = BenchReport(validators=net.n, duration_s=config.duration_s, rate=config.rate,
                         cores=cores, load_processes=config.processes,
                         network=f"{net.n} validators, {net.directory}", verify_per_s=verify_per_s,
                         verify_phase=verify_phase, expiry_group=config.expiry_group)
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = []
    monitor = CommitMonitor(net, SAMPLE_S, nodes=[0], counter_node=0, name="bench-monitor")
    try:
        accounts = load_accounts(net.accounts_path)
        users = sorted(a for a in accounts if a.startswith("user-"))
        if len(users) < 2 * config.processes:
            raise ValueError(f"the testnet has {len(users)} test accounts; need at least {2 * config.processes}")
        head = max(net.height(i) for i in range(net.n))
        per_rate = None if config.rate is None else config.rate / config.processes
        expected = (config.rate if config.rate is not None else MAX_RATE_GUESS) * config.duration_s
        per_count = min(MAX_PRESIGN_PER_PROCESS, int(expected / config.processes * 1.1) + config.batch)
        spread = per_count // config.expiry_group if config.expiry_group > 0 else 0
        if config.expiry_group < 0 or EXPIRY_BLOCKS + spread > MAX_TX_LIFETIME:
            raise ValueError(f"--expiry-group {config.expiry_group}: {per_count} transfers per load process would "
                             f"expire up to {EXPIRY_BLOCKS + spread} blocks ahead, beyond the ledger's "
                             f"{MAX_TX_LIFETIME} (use 0, or a larger group)")
        sockets = tuple(net.socket_path(i) for i in range(net.n))
        api_urls: tuple[str, ...] = ()
        if config.via in ("api", "auto"):
            from node.tools.testnet import api_answers

            serving = all(api_answers(net.api_url(i)) for i in range(net.n))
            if serving:
                api_urls = tuple(net.api_url(i) for i in range(net.n))
            elif config.via == "api":
                raise ValueError("--via api: not every node answers on its HTTP API")
        report.via = "api" if api_urls else "admin"
        report.body = config.body if api_urls else "admin lines"
        jobs = []
        for p in range(config.processes):
            mine = users[p :: config.processes]
            senders = tuple((name, bytes(accounts[name]).hex()) for name in mine)
            jobs.append(LoadJob(p, net.chain_id, senders, tuple(users), sockets, per_count,
                                head + EXPIRY_BLOCKS, per_rate, config.duration_s, config.connections,
                                config.batch, config.seed, api_urls, config.body, config.expiry_group))
        _say(out, f"pre-signing {per_count * config.processes} transfers in {config.processes} load processes ...")
        go, results = start_load_processes(ctx, jobs, procs)
        pids = {i: net.pid(i) for i in range(net.n)}
        cpu0 = {i: process_cpu_seconds(pid) if pid else None for i, pid in pids.items()}
        from node.tools.node_processes import process_tree_cpu_seconds  # the node with its verifier workers

        tree0 = {i: process_tree_cpu_seconds(pid) if pid else None for i, pid in pids.items()}
        base = _committed(net)
        base_height = net.height(0)
        start_at = time.time() + 0.2
        for _ in jobs:
            go.put(start_at)
        time.sleep(0.2)
        t_start = time.monotonic()
        monitor.start()  # node-0's committed-transaction counter every SAMPLE_S
        latest = shown = (t_start, 0)
        results_got: list[dict[str, Any]] = []
        last_print = t_start
        drain_end: float | None = None
        while True:
            now = time.monotonic()
            sample = monitor.latest()
            if sample is not None and base is not None:
                latest = (sample[0], sample[1] - base)
            while not results.empty():
                got_result = results.get()
                if "error" in got_result:
                    raise RuntimeError(f"a load process failed:\n{got_result['error']}")
                results_got.append(got_result)
            if now - last_print >= 1.0:
                last_print = now
                rate = (latest[1] - shown[1]) / max(1e-3, latest[0] - shown[0])
                shown = latest
                pool = sum((net.node_status(i) or {}).get("mempool", 0) for i in range(net.n))
                _say(out, f"  t={now - t_start:5.1f}s committed={latest[1]:>7} recent={rate:7.0f} tx/s "
                          f"mempools={pool}")
            if len(results_got) == len(jobs):
                accepted_total = sum(len(r["accepted"]) for r in results_got)
                if drain_end is None:
                    drain_end = now + DRAIN_TIMEOUT_S
                    _say(out, f"load done: {accepted_total} accepted; waiting for commits (≤{DRAIN_TIMEOUT_S:.0f}s)")
                if latest[1] >= accepted_total or now >= drain_end:
                    break
            elif now - t_start > config.duration_s + 120:
                raise TimeoutError("load processes did not finish")
            elif any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError(f"a load process failed (exit codes {[p.exitcode for p in procs]})")
            time.sleep(SAMPLE_S)
        monitor.finish()
        exact = _commit_samples(net, base_height, t_start)
        if exact is not None:
            samples = [(t_start, 0), *exact]
            report.latency_resolution = "commit instants"
        else:
            samples = [(t_start, 0)] + [(t, c - base) for t, c in monitor.samples if base is not None and t >= t_start]
            report.latency_resolution = f"{SAMPLE_S * 1000:.0f} ms samples"
        cpu1 = {i: process_cpu_seconds(pid) if pid else None for i, pid in pids.items()}
        if config.timeline:
            from node.tools.round_report import fetch_timelines, summarize

            window_end = samples[-1][0] if len(samples) > 1 else time.monotonic()
            report.round_timeline = summarize(fetch_timelines(net, int(t_start * 1e6), int(window_end * 1e6)))
        for i, pid in pids.items():
            peak = process_peak_rss_mb(pid) if pid else None
            if peak is not None:
                report.peak_rss_mb[net.node_id(i)] = peak
            workers = descendants_peak_rss_mb(pid) if pid else None
            if workers is not None:
                report.peak_rss_workers_mb[net.node_id(i)] = workers
        for proc in procs:
            proc.join(10)
        accepted = sorted(t for r in results_got for t in r["accepted"])
        report.accepted = len(accepted)
        report.submitted = sum(r["submitted"] for r in results_got)
        report.retried = sum(r["retried"] for r in results_got)
        report.unreachable = sum(r["unreachable"] for r in results_got)
        for r in results_got:
            for k, v in r["failed"].items():
                report.failed_codes[k] = report.failed_codes.get(k, 0) + v
        report.committed = min(report.accepted, samples[-1][1])
        report.failed = sum(report.failed_codes.values()) + (report.accepted - report.committed)
        # Latency runs from the send (at max) or the schedule (at a fixed rate), never from the answer: an answer can
        # arrive after the transaction has already committed (a node busy executing answers late), so answer
        # instants would hide the admission and bias the estimate low.
        sent = sorted(t for r in results_got for t in r["sent"])
        latencies = sorted(estimate_latencies(sent, samples))
        admit = sorted(d for r in results_got for d in r["admit_s"])
        if admit:
            report.admit_p50_ms = round(_percentile(admit, 0.50) * 1000, 1)
            report.admit_p99_ms = round(_percentile(admit, 0.99) * 1000, 1)
        if accepted and report.committed:
            last_commit = next(t for t, c in samples if c >= report.committed)
            report.tps = round(report.committed / max(1e-3, last_commit - accepted[0]), 1)
        if latencies:
            report.p50_ms = round(_percentile(latencies, 0.50) * 1000, 1)
            report.p90_ms = round(_percentile(latencies, 0.90) * 1000, 1)
            report.p99_ms = round(_percentile(latencies, 0.99) * 1000, 1)
            report.max_ms = round(latencies[-1] * 1000, 1)
        wall = samples[-1][0] - t_start
        tree1 = {i: process_tree_cpu_seconds(pid) if pid else None for i, pid in pids.items()}
        for i in range(net.n):
            a, b = cpu0[i], cpu1[i]
            if a is not None and b is not None:
                report.cpu_per_node[net.node_id(i)] = round((b - a) / max(1e-3, wall) * 100, 1)
            a, b = tree0[i], tree1[i]
            if a is not None and b is not None:
                report.cpu_per_node_with_workers[net.node_id(i)] = round((b - a) / max(1e-3, wall) * 100, 1)
        load_cpu = sum(r.get("cpu_s", 0.0) for r in results_got)
        load_wall = max((r.get("wall_s", 0.0) for r in results_got), default=0.0)
        if load_wall > 0:
            report.load_cpu_percent = round(load_cpu / load_wall * 100, 1)
        if report.accepted:
            report.load_cpu_us_per_tx = round(load_cpu / report.accepted * 1e6, 1)
        if report.committed and all(tree0[i] is not None and tree1[i] is not None for i in pids):
            nodes_cpu = sum(tree1[i] - tree0[i] for i in pids)  # type: ignore[operator]
            report.cpu_us_per_committed_tx = round((nodes_cpu + load_cpu) / report.committed * 1e6, 1)
        if config.rate is None:
            report.max_rate_tps = report.tps
        if report.verify_per_s > 0:
            report.efficiency = round(report.tps * report.validators / report.verify_per_s, 4)
        return report
    finally:
        monitor.finish()
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if own_dir is not None:
            net.down(5)
            shutil.rmtree(own_dir, ignore_errors=True)


def start_load_processes(ctx: Any, jobs: Sequence[LoadJob], procs: list[Any]) -> tuple[Any, Any]:
    """Start one load process per job (appended to `procs` as they start, so the caller's cleanup reaches them) and
    wait until all have pre-signed; returns the queues to release them (`go`) and to collect their `results`."""
    ready, go, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    for job in jobs:
        proc = ctx.Process(target=load_process, args=(job, ready, go, results), daemon=True)
        proc.start()
        procs.append(proc)
    wait_ready(ready, procs, len(jobs))
    return go, results


def wait_ready(ready: Any, procs: list[Any], count: int, timeout: float = 300.0) -> None:
    """Wait until every load process has pre-signed its transactions (bounded; fails fast if one dies)."""
    import queue

    deadline = time.monotonic() + timeout
    got = 0
    while got < count:
        if time.monotonic() > deadline:
            raise TimeoutError("load processes did not finish pre-signing")
        try:
            item = ready.get(timeout=0.5)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError(f"a load process failed (exit codes {[p.exitcode for p in procs]})") from None
            continue
        if isinstance(item, tuple) and item[0] == "error":
            raise RuntimeError(f"a load process failed:\n{item[1]}")
        got += 1


def _commit_samples(net: Any, base_height: int | None, t_start: float) -> list[tuple[float, int]] | None:
    """(monotonic s, transactions committed since the start) at every block node-0 committed after `base_height`:
    the instants its blocks became durable (admin `commit_times`; the node and the load processes share the
    machine's monotonic clock). None when node-0 no longer keeps them all (the samples then stand in)."""
    if base_height is None:
        return None
    out: list[tuple[float, int]] = []
    after, total = base_height, 0
    while True:
        answer = net.admin(0, {"op": "commit_times", "after": after})
        commits = None if answer is None else answer.get("commits")
        if commits is None:
            return None
        if not commits:
            return out
        if commits[0][0] != after + 1:
            return None  # rolled out of the node's window
        for height, t, txs in commits:
            total += int(txs)
            out.append((max(float(t), t_start), total))
            after = int(height)


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _committed(net: Any) -> int | None:
    s = net.node_status(0)
    return None if s is None else int(s["committed_txs"])


def format_report(report: BenchReport) -> str:
    lines = [
        f"network        {report.network}",
        (f"load           {report.load_processes} processes, rate {'max' if report.rate is None else report.rate} "
         f"tx/s, {report.duration_s:.0f}s, through the {'HTTP API' if report.via == 'api' else 'admin sockets'}"),
        (f"submitted      {report.submitted}  (accepted {report.accepted}, busy-retries {report.retried}"
         + (f", batches sent again to another node: {report.unreachable}" if report.unreachable else "") + ")"),
        f"committed      {report.committed}",
        f"failed         {report.failed}" + (f"  (codes: {per_node(report.failed_codes)})" if report.failed_codes else ""),
        f"committed tx/s {report.tps}",
        (f"latency ms     p50 {maybe(report.p50_ms)}  p90 {maybe(report.p90_ms)}  p99 {maybe(report.p99_ms)}  max {maybe(report.max_ms)}"
         f"  (from the {'send' if report.rate is None else 'schedule'}; resolution: {report.latency_resolution})"),
        f"admission ms   p50 {maybe(report.admit_p50_ms)}  p99 {maybe(report.admit_p99_ms)}  (request sent -> answer)",
        f"cpu per node   {per_node(report.cpu_per_node, '%')}  (of one core)",
        f"  + verifiers  {per_node(report.cpu_per_node_with_workers, '%')}  (the node and its verifier workers)",
        (f"load cpu       {maybe(report.load_cpu_percent)}% of one core, {maybe(report.load_cpu_us_per_tx)} µs per "
         f"accepted transaction ({report.load_processes} processes, {report.body or '?'} bodies)"),
        (f"cpu per tx     {maybe(report.cpu_us_per_committed_tx)} µs per committed transaction (every node with its "
         f"verifier workers, and the load processes)"),
        f"peak rss       {per_node(report.peak_rss_mb, ' MiB')}  (per node, since it started)",
        f"  its workers  {per_node(report.peak_rss_workers_mb, ' MiB')}  (verifier processes, each one's peak, summed)",
        (f"ed25519 verify {report.verify_per_s}/s over {report.cores} cores, measured "
         f"{report.verify_phase.get('when', '?')} (load average {maybe(report.verify_phase.get('load_average'))})"),
        f"efficiency     {report.efficiency}  (= {report.tps} x {report.validators} / {report.verify_per_s})",
    ]
    if report.round_timeline is not None:
        from node.tools.round_report import format_summary

        lines.append(format_summary(report.round_timeline))
    return "\n".join(lines)
