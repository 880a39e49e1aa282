"""`ledger bench --down N`: the network healthy, then with N validators killed, then with them back, side by side.

    report = run_degraded_bench(DegradedConfig(nodes=4, down=1, duration_s=15), out=sys.stderr)

What it does:
1. Creates a testnet of `nodes` validator processes (removed afterwards) with a test account per client.
2. A closed-loop load: `clients` concurrent clients, each submitting one signed 1-unit CASH-T transfer through a
   running node's HTTP API with `wait=commit` (`POST /v1/tx?wait=commit`), and the next one once it is committed
   (a request to a node that dies is sent again to another: submission is idempotent).
3. Phases, each `duration_s` long, after `warmup_s` of load: **healthy**; then `kill -9` of the last `down`
   validators and **degraded** (measured from the kill on, so it includes the rounds the network needs to notice);
   then the killed validators restarted and **recovered**.
4. Per phase: committed transactions per second (requests answered "committed" in the phase), their commit latency
   (p50, p99, max: from the request to its answer), blocks per second of a validator that stays up, and the blocks
   of each second. Also the seconds the restarted validators took to be within 2 blocks of it (`rejoined_head_s`,
   from their restart; watched past the recovered phase for up to `REJOIN_WAIT_S`, null if not back by then).

The report is one JSON object with the three phases side by side and the ratios degraded / healthy.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Final

from node.tools.report_text import maybe

WAIT_COMMIT_S: Final = 10
REQUEST_TIMEOUT_S: Final = 15.0
MAX_CLIENTS: Final = 256
# How long after their restart the report waits for killed validators to be back within 2 blocks of the head
# when the recovered phase ended first (docs/limits.md).
REJOIN_WAIT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class DegradedConfig:
    nodes: int = 4
    down: int = 1
    duration_s: float = 15.0
    warmup_s: float = 5.0
    clients: int = 16
    seed: int = 1


@dataclass(slots=True)
class Phase:
    name: str
    started: float = 0.0
    ended: float = 0.0
    heights: tuple[int, int] = (0, 0)
    latencies: list[float] = field(default_factory=list)
    blocks_each_second: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        seconds = max(1e-3, self.ended - self.started)
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, round(q * (len(lat) - 1)))] * 1000, 1) if lat else None

        return {"seconds": round(seconds, 2), "committed": len(lat), "tps": round(len(lat) / seconds, 1),
                "blocks_per_s": round((self.heights[1] - self.heights[0]) / seconds, 2),
                "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000, 1) if lat else None,
                "blocks_each_second": self.blocks_each_second}


class ClosedLoop:
    """`clients` clients on one asyncio loop in a thread of its own; each keeps one transfer in flight."""

    def __init__(self, net: Any, clients: int, seed: int) -> None:
        from node.tools.localnet import load_accounts

        self.net = net
        self.accounts = load_accounts(net.accounts_path)
        self.users = sorted(a for a in self.accounts if a.startswith("user-"))
        if len(self.users) < clients + 1:
            raise ValueError(f"the testnet has {len(self.users)} test accounts; {clients} clients need {clients + 1}")
        self.clients = clients
        self.rng = random.Random(seed)
        self.nonce = self.rng.randrange(1 << 40) << 20
        self.excluded: set[int] = set()  # validators killed: no requests go to them
        self.done: list[tuple[float, float]] = []  # (answered at, latency) of every committed transfer
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="closed-loop", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(REQUEST_TIMEOUT_S + 5)

    async def _main(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as http:
            await asyncio.gather(*(self._client(http, k) for k in range(self.clients)))

    async def _client(self, http: Any, k: int) -> None:
        import aiohttp

        from node.tools.load import EXPIRY_BLOCKS, signed_transfer

        sender = self.users[k]
        expiry = self.net.height(0) + EXPIRY_BLOCKS
        rng = random.Random(k)
        while not self.stop.is_set():
            self.nonce += 1
            recipient = self.users[(k + 1 + rng.randrange(len(self.users) - 1)) % len(self.users)]
            raw = signed_transfer(self.net.chain_id, sender, self.accounts[sender], recipient, self.nonce, expiry)
            sent = time.monotonic()
            while not self.stop.is_set():
                live = [i for i in range(self.net.n) if i not in self.excluded]
                url = self.net.api_url(rng.choice(live))
                try:
                    async with http.post(f"{url}/v1/tx?wait=commit&timeout={WAIT_COMMIT_S}",
                                         json={"tx": raw.hex()}) as r:
                        doc = await r.json(content_type=None)
                    if r.status == 200 and doc.get("status") == "committed":
                        self.done.append((time.monotonic(), time.monotonic() - sent))
                        break
                    if r.status == 200:  # rejected: a bug in the load, not the network
                        self.errors += 1
                        break
                except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                    self.errors += 1
                await asyncio.sleep(0.05)  # pending after the wait, busy or the node died: again, maybe elsewhere


def _say(out: IO[str] | None, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
        out.flush()


def _measure(net: Any, load: ClosedLoop, phase: Phase, seconds: float, watch: int, out: IO[str] | None,
             rejoining: list[int] | None = None) -> float | None:
    """Run one phase; with `rejoining`, also the seconds until those validators are within 2 blocks of `watch`
    (sampled every second; None if not within the phase)."""
    phase.started, start_height = time.monotonic(), net.height(watch)
    last = start_height
    rejoined: float | None = None
    while (left := phase.started + seconds - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        height = net.height(watch)
        phase.blocks_each_second.append(height - last)
        last = height
        if rejoining and rejoined is None and all(net.height(i) >= height - 2 for i in rejoining):
            rejoined = round(time.monotonic() - phase.started, 1)
    phase.ended, end_height = time.monotonic(), net.height(watch)
    phase.heights = (start_height, end_height)
    phase.latencies = [lat for at, lat in list(load.done) if phase.started <= at < phase.ended]
    _say(out, f"  {phase.name}: " + ", ".join(f"{k.replace('_', ' ')} {maybe(v)}" for k, v in phase.to_json().items()
                                             if not isinstance(v, (dict, list))))
    return rejoined


def _wait_rejoin(net: Any, restarted: float, rejoining: list[int], watch: int, out: IO[str] | None) -> float | None:
    """The restarted validators were not back within the recovered phase (a slow machine: process start-up alone
    can take seconds): keep watching, up to REJOIN_WAIT_S after their restart, so the report still says when they
    were back. None if they never were."""
    _say(out, f"  waiting for validators {rejoining} to rejoin (up to {REJOIN_WAIT_S:g}s after their restart) ...")
    while time.monotonic() < restarted + REJOIN_WAIT_S:
        height = net.height(watch)
        if all(net.height(i) >= height - 2 for i in rejoining):
            return round(time.monotonic() - restarted, 1)
        time.sleep(0.5)
    return None


def run_degraded_bench(config: DegradedConfig, out: IO[str] | None = None) -> dict[str, Any]:
    from node.tools.testnet import Testnet

    if not 1 <= config.down <= (config.nodes - 1) // 3:
        raise ValueError(f"--down must be 1..f = {(config.nodes - 1) // 3} for {config.nodes} validators")
    if not 1 <= config.clients <= MAX_CLIENTS:
        raise ValueError(f"--clients must be 1..{MAX_CLIENTS}")
    own_dir = tempfile.mkdtemp(prefix="ledger-bench-down-")
    _say(out, f"creating a {config.nodes}-node testnet in {own_dir} ...")
    net = Testnet.create(own_dir, config.nodes, users=max(8, config.clients + 1))
    load: ClosedLoop | None = None
    try:
        net.up(90)
        victims = list(range(config.nodes - config.down, config.nodes))
        load = ClosedLoop(net, config.clients, config.seed)
        load.start()
        _say(out, f"closed-loop load: {config.clients} clients, wait=commit; warm-up {config.warmup_s:g}s ...")
        time.sleep(config.warmup_s)
        healthy, degraded, recovered = Phase("healthy"), Phase("degraded"), Phase("recovered")
        _measure(net, load, healthy, config.duration_s, 0, out)
        _say(out, f"kill -9 validators {victims} ...")
        load.excluded.update(victims)
        for i in victims:
            net.kill(i)
        _measure(net, load, degraded, config.duration_s, 0, out)
        _say(out, f"restarting validators {victims} ...")
        for i in victims:
            net.start(i)
        load.excluded.clear()
        rejoin_s = _measure(net, load, recovered, config.duration_s, 0, out, rejoining=victims)
        if rejoin_s is None:
            rejoin_s = _wait_rejoin(net, recovered.started, victims, 0, out)
        load.finish()
        phases = {p.name: p.to_json() for p in (healthy, degraded, recovered)}

        def ratio(key: str, phase: str) -> float | None:
            h, d = phases["healthy"][key], phases[phase][key]
            return round(d / h, 3) if h else None

        return {
            "validators": config.nodes, "down": config.down, "killed": victims, "clients": config.clients,
            "load": "closed loop, POST /v1/tx?wait=commit", "healthy": phases["healthy"],
            "degraded": phases["degraded"], "recovered": phases["recovered"],
            "degraded_vs_healthy": {"tps": ratio("tps", "degraded"), "blocks_per_s": ratio("blocks_per_s", "degraded")},
            "recovered_vs_healthy": {"tps": ratio("tps", "recovered"),
                                     "blocks_per_s": ratio("blocks_per_s", "recovered")},
            "rejoined_head_s": rejoin_s, "client_retries": load.errors,
        }
    finally:
        if load is not None:
            load.finish()
        net.down(5)
        shutil.rmtree(own_dir, ignore_errors=True)
