"""`ledger bench consensus`: the consensus alone, in the research prototypes' own terms -- N validator processes on
loopback ordering opaque, distinct 250-byte payloads, with the node's transport (authenticated, encrypted), BLS
quorum certificates, synced safety state and a synced block store of certified blocks (node/tools/payload_chain.py,
node/tools/payload_validator.py). Prints the JSON shape of `ledger bench`.

    report = run_consensus_bench(ConsensusBenchConfig(nodes=4, duration_s=10, rate=None), out=sys.stderr)

Phases: (1) keys, validator set, configs (not timed); (2) the verify phase: raw Ed25519 verifications per second on
all cores, measured before any validator starts (the yardstick: consensus tx/s should reach it); (3) the validators
start, connect, and at one wall-clock instant every validator's load source starts creating payloads: `rate`
payloads/s in all (split evenly), or, with rate None ("max"), each keeping its pool two blocks ahead of its next
proposal; (4) after `duration_s` the sources stop and the validators run `drain_s` more so the last proposals
commit; (5) each writes its result and exits.

Measured: tps = payloads committed (at the validator that created them) inside the load window / duration;
latency = creation -> commit at the creating validator, from 1 ms histograms; committed = payloads created in the
window and committed by the end; failed = created but not committed by the end; every validator's stored chain
must end at the same head (block id and state root), else the run fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any, Final

from nacl.signing import SigningKey

from consensus.bls import get_backend
from node.tools.loadgen import measure_verify_rate
from node.tools.node_processes import ROOT, process_cpu_seconds
from node.tools.payload_chain import MAX_BLOCK_PAYLOADS, PAYLOAD_BYTES
from node.tools.report_text import maybe, per_node
from node.tools.testnet import MAX_NODES, find_free_port_block

__all__ = ["ConsensusBenchConfig", "ConsensusBenchReport", "format_report", "percentile_ms", "run_consensus_bench",
           "summarise"]

CHAIN_ID: Final = "bench-consensus"
START_DELAY_S: Final = 3.0  # validators start and connect before the load window opens
RESULT_GRACE_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class ConsensusBenchConfig:
    nodes: int = 4
    duration_s: float = 10.0
    rate: int | None = None  # payloads/s over all validators; None: max
    block_payloads: int = 4_000  # payloads per block at most (1 MB)
    propose_wait_ms: int = 0  # a leader waits up to this long for a full block, then proposes what it has
    base_timeout_ms: int = 1_000
    drain_s: float = 5.0
    verify_seconds: float = 2.0
    directory: str | None = None  # keep the validators' data here (default: a temporary directory, removed)
    bls_backend: str | None = None
    disk_threads: bool = True  # safety state and certified blocks written on threads (False: on the event loop)


@dataclass(slots=True)
class ConsensusBenchReport:
    validators: int
    duration_s: float
    rate: int | None
    block_payloads: int
    generated: int = 0
    committed: int = 0
    failed: int = 0
    tps: float = 0.0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    verify_per_s: float = 0.0
    verify_phase: dict[str, Any] = field(default_factory=dict)
    efficiency: float = 0.0
    cores: int = 1
    height: int = 0
    blocks_per_s: float = 0.0
    cpu_per_node: dict[str, float] = field(default_factory=dict)
    per_node: list[dict[str, Any]] = field(default_factory=list)
    proposal_to_commit_ms: dict[str, float | None] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": "consensus", "tps": self.tps, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms, "efficiency": self.efficiency,
            "validators": self.validators, "submitted": self.generated, "committed": self.committed,
            "failed": self.failed, "verify_per_s": self.verify_per_s, "verify_phase": self.verify_phase,
            "cores": self.cores, "duration_s": self.duration_s, "rate": "max" if self.rate is None else self.rate,
            "payload_bytes": PAYLOAD_BYTES, "block_payloads": self.block_payloads, "height": self.height,
            "blocks_per_s": self.blocks_per_s, "proposal_to_commit_ms": self.proposal_to_commit_ms, "cpu_per_node_percent": self.cpu_per_node,
            "loadavg_before": list(self.load_before), "loadavg_after": list(self.load_after),
            "per_node": self.per_node,
        }


def _say(out: IO[str] | None, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
        out.flush()


def percentile_ms(histogram: dict[int, int], q: float) -> float | None:
    """The q-quantile of a histogram of whole milliseconds (the upper edge of its bucket), None when empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, round(q * total))
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return float(ms + 1)
    raise AssertionError("unreachable")


def _configs(cfg: ConsensusBenchConfig, directory: str) -> list[dict[str, Any]]:
    backend = get_backend(cfg.bls_backend)
    node_ids = [f"bench-{i}" for i in range(cfg.nodes)]
    bls_secret = [backend.keygen(hashlib.sha256(b"bench consensus bls %d" % i).digest()) for i in range(cfg.nodes)]
    bls_public = [(backend.public_key(sk).hex(), backend.pop_prove(sk).hex()) for sk in bls_secret]
    seeds = [hashlib.sha256(b"bench consensus identity %d" % i).digest() for i in range(cfg.nodes)]
    base = find_free_port_block(cfg.nodes)
    peers = [[node_ids[i], bytes(SigningKey(seeds[i]).verify_key).hex(), "127.0.0.1", base + i]
             for i in range(cfg.nodes)]
    per_node_rate = None if cfg.rate is None else cfg.rate / cfg.nodes
    start_at = time.time() + START_DELAY_S
    out = []
    for i in range(cfg.nodes):
        data = os.path.join(directory, f"node-{i}")
        out.append({
            "index": i, "node_ids": node_ids, "bls_public": bls_public, "bls_secret": bls_secret[i].hex(),
            "bls_backend": cfg.bls_backend, "identity_seed": seeds[i].hex(), "peers": peers,
            "listen": ["127.0.0.1", base + i], "chain_id": CHAIN_ID, "data_dir": data,
            "payload_bytes": PAYLOAD_BYTES, "max_payloads": cfg.block_payloads, "rate": per_node_rate,
            "propose_wait_ms": cfg.propose_wait_ms, "disk_threads": cfg.disk_threads, "base_timeout_ms": cfg.base_timeout_ms,
            "start_at": start_at, "duration_s": cfg.duration_s, "stop_after_s": cfg.duration_s + cfg.drain_s,
            "result_path": os.path.join(data, "result.json"),
        })
    return out


def run_consensus_bench(cfg: ConsensusBenchConfig, out: IO[str] | None = None) -> ConsensusBenchReport:
    if not 1 <= cfg.nodes <= MAX_NODES or cfg.duration_s <= 0 or not 1 <= cfg.block_payloads <= MAX_BLOCK_PAYLOADS:
        raise ValueError(f"need 1 <= nodes <= {MAX_NODES}, duration > 0, 1 <= block_payloads <= {MAX_BLOCK_PAYLOADS}")
    report = ConsensusBenchReport(cfg.nodes, cfg.duration_s, cfg.rate, cfg.block_payloads, cores=os.cpu_count() or 1)
    report.load_before = os.getloadavg()
    _say(out, f"verify phase: raw Ed25519 verifications on {report.cores} cores for {cfg.verify_seconds:g}s, "
              "before any validator starts ...")
    t0 = time.time()
    report.verify_per_s = round(measure_verify_rate(cfg.verify_seconds), 1)
    report.verify_phase = {"started_unix": round(t0, 3), "seconds": round(time.time() - t0, 3),
                           "measured_s": cfg.verify_seconds, "before_load": True}
    directory = cfg.directory or tempfile.mkdtemp(prefix="bench-consensus-")
    os.makedirs(directory, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        configs = _configs(cfg, directory)
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for c in configs:
            os.makedirs(c["data_dir"], exist_ok=True)
            path = os.path.join(c["data_dir"], "config.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(c, f)
            with open(os.path.join(c["data_dir"], "validator.log"), "ab") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "node.tools.payload_validator", path], cwd=ROOT,
                                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env))
        _say(out, f"{cfg.nodes} validator processes started; load {'max' if cfg.rate is None else cfg.rate} "
                  f"payloads/s for {cfg.duration_s:g}s from t+{START_DELAY_S:g}s, then {cfg.drain_s:g}s drain ...")
        cpu0 = {i: process_cpu_seconds(p.pid) for i, p in enumerate(procs)}
        deadline = time.monotonic() + START_DELAY_S + cfg.duration_s + cfg.drain_s + RESULT_GRACE_S
        time.sleep(START_DELAY_S + cfg.duration_s)
        cpu1 = {i: process_cpu_seconds(p.pid) for i, p in enumerate(procs)}
        for i, p in enumerate(procs):
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
            if p.returncode != 0:
                raise RuntimeError(f"validator {i} exited with {p.returncode}; see {configs[i]['data_dir']}/validator.log")
        results = []
        for c in configs:
            with open(c["result_path"], encoding="utf-8") as f:
                results.append(json.load(f))
        report.load_after = os.getloadavg()
        for i in range(cfg.nodes):
            a, b = cpu0.get(i), cpu1.get(i)
            if a is not None and b is not None:
                report.cpu_per_node[f"bench-{i}"] = round(100 * (b - a) / (START_DELAY_S + cfg.duration_s), 1)
        summarise(report, results)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if cfg.directory is None:
            shutil.rmtree(directory, ignore_errors=True)
    return report


def summarise(report: ConsensusBenchReport, results: list[dict[str, Any]]) -> None:
    # The validators stop within milliseconds of each other: the last block may have committed at some only.
    # They must agree on the block at the lowest head height, and have stored each block they committed.
    errors = [f"validator {r['index']}: {r['write_error']}" for r in results if r["write_error"]]
    if errors:
        raise RuntimeError(f"a block store write failed: {'; '.join(errors)}")
    common = min(r["height"] for r in results)
    if common == 0:
        raise RuntimeError("no block was committed")
    ids = {r["block_ids"].get(str(common)) for r in results}
    if len(ids) != 1 or None in ids:
        raise RuntimeError(f"validators disagree on the block at height {common}: {sorted(map(str, ids))}")
    if any(r["stored_payloads"] != r["committed_payloads"] for r in results):
        raise RuntimeError("a validator's store holds a different number of payloads than it committed")
    histogram: dict[int, int] = {}
    for r in results:
        for ms, n in r["latency_ms"].items():
            histogram[int(ms)] = histogram.get(int(ms), 0) + n
    report.generated = sum(r["generated"] for r in results)
    report.committed = sum(r["committed_own"] for r in results)
    report.failed = report.generated - report.committed
    report.tps = round(sum(r["committed_own_in_window"] for r in results) / report.duration_s, 1)
    blocks: dict[int, int] = {}
    for r in results:
        for ms, n in r["proposal_to_commit_ms"].items():
            blocks[int(ms)] = blocks.get(int(ms), 0) + n
    report.proposal_to_commit_ms = {"p50": percentile_ms(blocks, 0.5), "p90": percentile_ms(blocks, 0.9),
                                    "p99": percentile_ms(blocks, 0.99)}
    report.p50_ms, report.p90_ms = percentile_ms(histogram, 0.5), percentile_ms(histogram, 0.9)
    report.p99_ms, report.max_ms = percentile_ms(histogram, 0.99), (float(max(histogram) + 1) if histogram else None)
    report.height = common
    report.blocks_per_s = round(report.height / max(1e-9, max(r["wall_s"] for r in results)), 1)
    if report.verify_per_s > 0:
        report.efficiency = round(report.tps / report.verify_per_s, 4)
    keep = ("index", "generated", "refused", "committed_own", "pending_own", "height", "cpu_s", "persist_s", "commit_write_s",
            "safety_writes", "round_timeouts", "round", "bls_checks", "bls_cache_hits", "transport", "replica")
    report.per_node = [{k: r[k] for k in keep} for r in results]


def format_report(report: ConsensusBenchReport) -> str:
    return "\n".join([
        (f"consensus      {report.validators} validator processes, {PAYLOAD_BYTES}-byte payloads, at most "
         f"{report.block_payloads} per block"),
        f"load           rate {'max' if report.rate is None else report.rate} payloads/s, {report.duration_s:g}s",
        f"submitted      {report.generated}",
        f"committed      {report.committed}  (height {report.height}, {report.blocks_per_s} blocks/s)",
        f"failed         {report.failed}",
        f"committed tx/s {report.tps}",
        f"latency ms     p50 {maybe(report.p50_ms)}  p90 {maybe(report.p90_ms)}  p99 {maybe(report.p99_ms)}  max {maybe(report.max_ms)}",
        f"block          proposed -> committed ms {per_node(report.proposal_to_commit_ms)}",
        f"cpu per node   {per_node(report.cpu_per_node, '%')}  (of one core)",
        f"ed25519 verify {report.verify_per_s}/s over {report.cores} cores (verify phase before the load)",
        f"efficiency     {report.efficiency}  (= {report.tps} / {report.verify_per_s}; target >= 1)",
        f"loadavg        before {maybe(report.load_before)}  after {maybe(report.load_after)}",
    ])
