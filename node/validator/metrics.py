"""Prometheus metrics of one node (prometheus_client), in a registry of its own.

    metrics = NodeMetrics()
    metrics.set_height(h); metrics.set_round(r); metrics.view_change(); metrics.local_timeout()
    metrics.set_peers(n); metrics.set_mempool(pool.stats()); metrics.set_sigverify(verifier.stats)
    metrics.committed(tx_count, latencies_seconds)        # after each commit (latencies: pool.remove_committed)
    metrics.rejected_message("malformed"); metrics.admission(result)   # mempool refusals, by code
    metrics.sync_applied(blocks)
    metrics.sync_executed_ahead()
    metrics.certified_execution(signatures)
    metrics.fatal("storage_failed")                      # the node stopped: ledger_fatal{code=...} = 1
    (read at each scrape: ledger_gc_collections_total, ledger_gc_pause_seconds_total; node/validator/collector.py)
    metrics.set_limits(max_txs, max_bytes); metrics.set_quorum(validators, peers_needed)   # for alerting rules
    text = metrics.render()                              # GET /metrics body, content type CONTENT_TYPE

`NodeMetrics(round_timeline=True)` also keeps the node's round timeline (`metrics.timeline`, the steps of each
consensus round with their times: node/validator/round_timeline.py), read on the admin socket, not exported here.
`NodeMetrics(data_dir=DIR)` also exports the free and total bytes of the filesystem holding DIR (read at each
scrape). deploy/prometheus/ledger-alerts.yml and deploy/grafana/ledger-node.json use these metrics
(tests/node/tools/test_runbook.py checks that a running node exports every one they name).

Each NodeMetrics owns a CollectorRegistry, so several nodes in one process (tests, the simulator) never collide.
Committed tx/s: `rate(ledger_committed_txs_total[1m])` in Prometheus; the gauge `ledger_committed_tps` gives the rate
over the node's own last `window_seconds` for a quick look (curl, `ledger testnet status`).

Bounded: label values come from small fixed sets (reason names, reason codes); a label set never grows past
`MAX_LABEL_VALUES` values: later new values are counted under "other". The commit window keeps at most
`MAX_WINDOW_ENTRIES` commits.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from ledger import codes
from node.validator.collector import collector_totals
from node.validator.round_timeline import RoundTimeline

if TYPE_CHECKING:
    from node.chain.mempool import Admission, MempoolStats
    from node.chain.sigverify import VerifierStats

__all__ = ["COMMIT_LATENCY_BUCKETS", "CONTENT_TYPE", "MAX_LABEL_VALUES", "NodeMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
COMMIT_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
MAX_LABEL_VALUES = 64
MAX_WINDOW_ENTRIES = 4_096
OTHER = "other"


class _CollectorMetrics:
    """ledger_gc_collections_total and ledger_gc_pause_seconds_total{generation}: the process's cyclic collector
    (node/validator/collector.py), read at each scrape; nothing until `node run` called tune_collector."""

    def describe(self) -> list[CounterMetricFamily]:
        return []  # read at scrape time only (the process-wide totals may not exist yet)

    def collect(self) -> Iterable[CounterMetricFamily]:
        totals = collector_totals()
        if totals is None:
            return
        runs = CounterMetricFamily("ledger_gc_collections", "Cyclic garbage collections of the node process, by "
                                   "generation", labels=["generation"])
        pauses = CounterMetricFamily("ledger_gc_pause_seconds", "Wall time the node process spent in cyclic "
                                     "garbage collections (the GIL held), by generation", labels=["generation"])
        for generation in range(3):
            runs.add_metric([str(generation)], totals.collections[generation])
            pauses.add_metric([str(generation)], totals.pause_seconds[generation])
        yield runs
        yield pauses


class _LabelBudget:
    """The distinct values one label may take; new values past the limit become "other"."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


class NodeMetrics:
    """The node's metrics: consensus progress, mempool, peers, commits, latency, refusals, sync."""

    def __init__(self, window_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 data_dir: str | None = None, round_timeline: bool = False) -> None:
        """`round_timeline`: keep this node's round timeline (node/validator/round_timeline.py) in `timeline`."""
        assert window_seconds > 0
        self.timeline = RoundTimeline() if round_timeline else None
        self.registry = CollectorRegistry(auto_describe=True)
        self.window_seconds = window_seconds
        self._clock = clock
        self._window: deque[tuple[float, int]] = deque(maxlen=MAX_WINDOW_ENTRIES)
        self._reasons = _LabelBudget(MAX_LABEL_VALUES)
        self._codes = _LabelBudget(MAX_LABEL_VALUES)
        r = self.registry
        self.height = Gauge("ledger_height", "Height of the last committed block", registry=r)
        self.round = Gauge("ledger_round", "Current consensus round", registry=r)
        self.view_changes = Counter(
            "ledger_view_changes", "Rounds ended by a timeout certificate (view changes)", registry=r
        )
        self.local_timeouts = Counter("ledger_local_timeouts", "Round timeouts fired by this node", registry=r)
        self.mempool_txs = Gauge("ledger_mempool_txs", "Transactions in the mempool", registry=r)
        self.mempool_bytes = Gauge(
            "ledger_mempool_bytes", "Encoded bytes of the transactions in the mempool", registry=r
        )
        self.mempool_verifying = Gauge(
            "ledger_mempool_verifying", "Admissions waiting for their signature checks", registry=r
        )
        self.sigverify_items = Gauge(
            "ledger_sigverify_items", "Ed25519 signatures verified by the node's verifier since it started", registry=r
        )
        self.sigverify_tasks = Gauge(
            "ledger_sigverify_tasks", "Tasks the verifier sent to its workers since it started (items per task = "
            "ledger_sigverify_items / ledger_sigverify_tasks: each task has a fixed cost)", registry=r
        )
        self.peers = Gauge("ledger_peers_connected", "Authenticated peer connections", registry=r)
        self.committed_txs = Counter("ledger_committed_txs", "Transactions made final by committed blocks (a copy "
                                     "of an already committed transaction a block carries again is not counted)", registry=r)
        self.committed_blocks = Counter("ledger_committed_blocks", "Committed blocks", registry=r)
        self.tps = Gauge("ledger_committed_tps", "Committed transactions per second over the last window", registry=r)
        self.tps.set_function(self.committed_tps)
        self.commit_latency = Histogram(
            "ledger_commit_latency_seconds",
            "Time from admission to the mempool to commit, per transaction",
            buckets=COMMIT_LATENCY_BUCKETS,
            registry=r,
        )
        self.rejected_messages = Counter(
            "ledger_rejected_messages", "Peer messages refused, by reason", ["reason"], registry=r
        )
        self.mempool_rejections = Counter(
            "ledger_mempool_rejections",
            "Transactions refused by the mempool, by reason code",
            ["code", "name"],
            registry=r,
        )
        self.sync_blocks = Counter("ledger_sync_blocks_applied", "Blocks applied by block sync", registry=r)
        self.sync_ahead = Counter(
            "ledger_sync_blocks_executed_ahead",
            "Blocks block sync executed on the execution thread while the loop went on",
            registry=r,
        )
        self.certified_blocks = Counter(
            "ledger_sync_certified_blocks_executed",
            "Blocks block sync executed against their verified commit certificate, by how their signatures were "
            "treated: skipped (the certified root proved the checks unnecessary) or rechecked (a signature that does "
            "not verify or an id twice: a faulty proposer's block, executed again with every check)",
            ["signatures"],
            registry=r,
        )
        self.fatal_state = Gauge(
            "ledger_fatal", "1 once the node stopped on a fatal error (by its code: storage_failed, ...)", ["code"],
            registry=r,
        )
        self.mempool_max_txs = Gauge("ledger_mempool_max_txs", "The mempool's transaction limit", registry=r)
        self.mempool_max_bytes = Gauge("ledger_mempool_max_bytes", "The mempool's byte limit", registry=r)
        self.validators = Gauge("ledger_validators", "Validators in the current epoch", registry=r)
        self.quorum_peers = Gauge(
            "ledger_quorum_peers",
            "Fewest connected validator peers with which a quorum is possible (this node's power counted)",
            registry=r,
        )
        self._data_dir = data_dir
        if data_dir is not None:
            free = Gauge("ledger_data_dir_free_bytes", "Bytes available to the node on its data directory's "
                         "filesystem", registry=r)
            free.set_function(lambda: self._statvfs(free=True))
            total = Gauge("ledger_data_dir_total_bytes", "Size of the data directory's filesystem", registry=r)
            total.set_function(lambda: self._statvfs(free=False))
        r.register(_CollectorMetrics())

    # -- consensus -----------------------------------------------------------------------------------------------

    def set_height(self, height: int) -> None:
        self.height.set(height)

    def set_round(self, round_: int) -> None:
        self.round.set(round_)

    def view_change(self) -> None:
        self.view_changes.inc()

    def local_timeout(self) -> None:
        self.local_timeouts.inc()

    # -- limits and quorum (read by alerting rules) ---------------------------------------------------------------

    def set_limits(self, max_txs: int, max_bytes: int) -> None:
        self.mempool_max_txs.set(max_txs)
        self.mempool_max_bytes.set(max_bytes)

    def set_quorum(self, validators: int, peers_needed: int) -> None:
        self.validators.set(validators)
        self.quorum_peers.set(peers_needed)

    def _statvfs(self, *, free: bool) -> float:
        assert self._data_dir is not None
        try:
            st = os.statvfs(self._data_dir)
        except OSError:
            return float("nan")
        return float((st.f_bavail if free else st.f_blocks) * st.f_frsize)

    # -- network and mempool -------------------------------------------------------------------------------------

    def set_peers(self, count: int) -> None:
        self.peers.set(count)

    def set_mempool(self, stats: MempoolStats) -> None:
        self.mempool_txs.set(stats.txs)
        self.mempool_bytes.set(stats.bytes)
        self.mempool_verifying.set(stats.verifying)

    def set_sigverify(self, stats: VerifierStats) -> None:
        self.sigverify_items.set(stats.verified)
        self.sigverify_tasks.set(stats.tasks)

    def mempool_rejected(self, code: int) -> None:
        entry = codes.describe(code)
        name = entry.name if entry is not None else "UNKNOWN"
        label = self._codes(str(code))
        self.mempool_rejections.labels(label, name if label != OTHER else OTHER).inc()

    def admission(self, result: Admission) -> None:
        """Count a mempool answer: refusals by code (admissions are counted when they commit)."""
        if result.code != codes.OK:
            self.mempool_rejected(result.code)

    def rejected_message(self, reason: str) -> None:
        self.rejected_messages.labels(self._reasons(reason)).inc()

    # -- commits and sync ----------------------------------------------------------------------------------------

    def committed(self, tx_count: int, latencies: Iterable[float] = ()) -> None:
        """One committed block that made `tx_count` transactions final (CommittedBlock.newly_final_txs); `latencies`:
        seconds from admission to commit of the transactions this node had pooled (Mempool.remove_committed)."""
        assert tx_count >= 0
        self.committed_blocks.inc()
        self.committed_txs.inc(tx_count)
        self._window.append((self._clock(), tx_count))
        for seconds in latencies:
            self.commit_latency.observe(max(seconds, 0.0))

    def committed_tps(self) -> float:
        """Committed transactions per second over the last `window_seconds` (0 when nothing committed)."""
        now = self._clock()
        horizon = now - self.window_seconds
        window = self._window
        while window and window[0][0] < horizon:
            window.popleft()
        if not window:
            return 0.0
        return sum(n for _, n in window) / self.window_seconds

    def sync_applied(self, blocks: int = 1) -> None:
        self.sync_blocks.inc(blocks)

    def sync_executed_ahead(self) -> None:
        self.sync_ahead.inc()

    def certified_execution(self, signatures: str) -> None:
        """A block block sync executed with its commit certificate: "skipped" or "rechecked" (Execution.signatures)."""
        self.certified_blocks.labels(signatures).inc()

    def fatal(self, code: str) -> None:
        """The node stopped on a fatal error (a node has at most one: the driver stops at the first)."""
        self.fatal_state.labels(self._reasons(code)).set(1)

    # -- exposition ----------------------------------------------------------------------------------------------

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4) of every metric of this node."""
        return generate_latest(self.registry).decode("utf-8")
