"""`ledger bench --down N`: the network healthy, then with N validators killed, then with them back, side by side.

    report = run_degraded_bench(DegradedConfig(nodes=4, down=1, duration_s=15), out=sys.stderr)

What it does:
1. Creates a testnet of `nodes` validator processes (removed afterwards) with a test account per client.
2. A closed-loop load: `clients` concurrent clients, each submitting one signed 1-unit CASH-T transfer through a
   running node's HTTP API with `wait=commit` (`POST /v1/tx?wait=commit`), and the next one once it is committed
   (a request to a node that dies is sent again to another: submission is idempotent).
3. Phases, each `duration_s` long, after `warmup_s` of load: **healthy**; then `kill -9` of the last `down`
   validators and **degraded** (measured from the kill on, so it includes the rounds the network needs to notice);
   then the killed validators restarted and **recovered**. Clients send to a restarted validator once it is back
   (in consensus, within 2 blocks of the head: a readiness probe, as a load balancer in front of the members' APIs
   would use), as they stopped sending to it when it was killed; `route_when_ready=False` sends to it from its
   restart (its API then holds `wait=commit` requests until it has caught up by block sync).
4. Per phase: committed transactions per second (requests answered "committed" in the phase), their commit latency
   (p50, p99, max: from the request to its answer), blocks per second of a validator that stays up, the blocks and
   the committed transfers of each second, and per validator whose API answered: its transfers, p50 and max. Also
   the seconds the restarted validators took to be back (`rejoined_head_s`, from their restart; watched past the
   recovered phase for up to `REJOIN_WAIT_S`, null if not back by then), and `back_to_healthy_s`: the first second
   of the recovered phase from which BACK_WINDOW_S seconds in a row commit BACK_RATIO of the healthy tx/s. Per
   phase, to tell why a phase was slow: the round timeouts at validator 0 (`timer_fired`, `rounds_by_tc`, from its
   round timeline) and the CPU seconds of each validator's processes (`cpu_s_by_validator`: a restarted validator
   catching up by block sync competes for the machine's cores with the others on a one-machine testnet).

The report is one JSON object with the three phases side by side and the ratios degraded / healthy.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
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
# How often the recovered phase asks the restarted validators whether they are back (in consensus, at the head).
READY_POLL_S: Final = 0.25
# "Back to healthy": BACK_WINDOW_S seconds in a row of the recovered phase committing BACK_RATIO of the healthy tx/s.
BACK_WINDOW_S: Final = 2
BACK_RATIO: Final = 0.9


@dataclass(frozen=True, slots=True)
class DegradedConfig:
    nodes: int = 4
    down: int = 1
    duration_s: float = 15.0
    warmup_s: float = 5.0
    clients: int = 16
    seed: int = 1
    # Clients send to a restarted validator only once it is back in consensus at the head (False: from its restart).
    route_when_ready: bool = True


@dataclass(slots=True)
class Phase:
    name: str
    started: float = 0.0
    ended: float = 0.0
    heights: tuple[int, int] = (0, 0)
    latencies: list[float] = field(default_factory=list)
    answered_by: list[int] = field(default_factory=list)  # the validator whose API answered each of `latencies`
    committed_each_second: list[int] = field(default_factory=list)  # transfers answered "committed", per second
    # At the watched validator (round timeline): its round timer fired, rounds entered by a TC (None: not known).
    timer_fired: int | None = None
    rounds_by_tc: int | None = None
    # CPU seconds each validator's processes used in the phase (None: not running at its end).
    cpu_s: dict[int, float | None] = field(default_factory=dict)
    blocks_each_second: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        seconds = max(1e-3, self.ended - self.started)
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, round(q * (len(lat) - 1)))] * 1000, 1) if lat else None

        by: dict[int, list[float]] = {}
        for latency, i in zip(self.latencies, self.answered_by, strict=True):
            by.setdefault(i, []).append(latency)
        return {"seconds": round(seconds, 2), "committed": len(lat), "tps": round(len(lat) / seconds, 1),
                "blocks_per_s": round((self.heights[1] - self.heights[0]) / seconds, 2),
                "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000, 1) if lat else None,
                "blocks_each_second": self.blocks_each_second, "committed_each_second": self.committed_each_second,
                "timer_fired": self.timer_fired, "rounds_by_tc": self.rounds_by_tc,
                "cpu_s_by_validator": {str(i): v for i, v in sorted(self.cpu_s.items())},
                # Per validator whose API answered: transfers committed, their p50 and max latency (ms).
                "by_validator": {str(i): {"committed": len(v), "p50_ms": round(statistics.median(v) * 1000, 1),
                                          "max_ms": round(max(v) * 1000, 1)} for i, v in sorted(by.items())}}


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
        self.head = 0  # the highest height a commit answer named (transfers expire EXPIRY_BLOCKS after it)
        self.excluded: set[int] = set()  # validators killed: no requests go to them
        # (answered at, latency, validator index whose API answered) of every committed transfer
        self.done: list[tuple[float, float, int]] = []
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="closed-loop", daemon=True)

    def start(self) -> None:
        self.head = self.net.height(0)
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
        rng = random.Random(k)
        while not self.stop.is_set():
            self.nonce += 1
            recipient = self.users[(k + 1 + rng.randrange(len(self.users) - 1)) % len(self.users)]
            # Expiry = the head last seen + EXPIRY_BLOCKS, as clients sign: a block's transfers then fall in one or
            # two replay buckets. One expiry for the whole run would make every block rewrite one growing bucket
            # (docs/benchmarks.md, "The load's expiry heights"): a cost that grows with the run, not the network's.
            expiry = self.head + EXPIRY_BLOCKS
            raw = signed_transfer(self.net.chain_id, sender, self.accounts[sender], recipient, self.nonce, expiry)
            sent = time.monotonic()
            while not self.stop.is_set():
                live = [i for i in range(self.net.n) if i not in self.excluded]
                target = rng.choice(live)
                url = self.net.api_url(target)
                try:
                    async with http.post(f"{url}/v1/tx?wait=commit&timeout={WAIT_COMMIT_S}",
                                         json={"tx": raw.hex()}) as r:
                        doc = await r.json(content_type=None)
                    if r.status == 200 and doc.get("status") == "committed":
                        self.done.append((time.monotonic(), time.monotonic() - sent, target))
                        self.head = max(self.head, int((doc.get("receipt") or {}).get("height") or 0))
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


def process_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) of process `pid` and its descendants (a node's verifier processes) so far, from
    /proc (None where there is none, or the process is gone)."""
    if pid is None or not os.path.isdir("/proc"):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    own: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        own[int(entry)] = int(fields[11]) + int(fields[12])  # utime, stime
        children.setdefault(int(fields[1]), []).append(int(entry))
    if pid not in own:
        return None
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += own.get(current, 0)
        stack.extend(children.get(current, ()))
    return round(total / ticks, 2)


def _cpu_by_validator(net: Any) -> dict[int, float | None]:
    return {i: process_cpu_s(net.pid(i)) if net.running(i) else None for i in range(net.n)}


def _round_timeouts(net: Any, watch: int, phases: list[Phase]) -> None:
    """Each phase's round timeouts at validator `watch`, from its round timeline (node/validator/round_timeline.py):
    its timer firing, and rounds it entered by a TC instead of a QC. None when the ring no longer reaches back to the
    phase's start (or the node keeps no timeline)."""
    from node.validator.round_timeline import ROUND, TIMEOUT

    events: list[tuple[int, int, int]] = []  # t_us, kind, a
    after = -1
    while (answer := net.admin(watch, {"op": "round_timeline", "after": after})) and answer.get("events"):
        for seq, t_us, kind, _height, _round, a, _b in answer["events"]:
            after = int(seq)
            events.append((int(t_us), int(kind), int(a)))
    oldest = events[0][0] if events else None
    for phase in phases:
        start_us, end_us = int(phase.started * 1e6), int(phase.ended * 1e6)
        if oldest is None or oldest > start_us:
            continue
        inside = [(kind, a) for t, kind, a in events if start_us <= t < end_us]
        phase.timer_fired = sum(1 for kind, _ in inside if kind == TIMEOUT)
        phase.rounds_by_tc = sum(1 for kind, a in inside if kind == ROUND and a == 0)


def _serving(net: Any, i: int, head: int) -> bool:
    """Validator i is back: in consensus (not starting up or catching up by block sync) within 2 blocks of `head`."""
    status = net.node_status(i)
    return status is not None and status.get("mode") == "consensus" and int(status.get("height", -1)) >= head - 2


def _measure(net: Any, load: ClosedLoop, phase: Phase, seconds: float, watch: int, out: IO[str] | None,
             rejoining: list[int] | None = None, route_when_ready: bool = False) -> float | None:
    """Run one phase; with `rejoining`, also the seconds until those validators are back (in consensus within 2
    blocks of `watch`; sampled every READY_POLL_S; None if not within the phase). With `route_when_ready` the
    clients send to a rejoining validator only from then on (a readiness probe, as a load balancer in front of the
    members' APIs would use); otherwise from the start of the phase."""
    cpu_before = _cpu_by_validator(net)
    phase.started, start_height = time.monotonic(), net.height(watch)
    waiting = list(rejoining or [])
    waiting_from = set(waiting)
    if route_when_ready:
        load.excluded.update(waiting)
    last, next_second = start_height, phase.started + 1.0
    rejoined: float | None = None
    while (left := phase.started + seconds - time.monotonic()) > 0:
        time.sleep(min(READY_POLL_S if waiting else 1.0, left, max(0.0, next_second - time.monotonic())))
        now = time.monotonic()
        height = net.height(watch)
        if now >= next_second or now >= phase.started + seconds:
            phase.blocks_each_second.append(height - last)
            last, next_second = height, next_second + 1.0
        for i in [i for i in waiting if _serving(net, i, height)]:
            waiting.remove(i)
            load.excluded.discard(i)
        if rejoining and not waiting and rejoined is None:
            rejoined = round(time.monotonic() - phase.started, 1)
    load.excluded.difference_update(rejoining or [])
    phase.ended, end_height = time.monotonic(), net.height(watch)
    phase.heights = (start_height, end_height)
    cpu_after = _cpu_by_validator(net)
    # A restarted validator's CPU counts from its restart (its start-up and catch-up are the point).
    phase.cpu_s = {i: None if after is None else round(after - (0.0 if i in waiting_from else cpu_before[i] or 0.0), 2)
                   for i, after in cpu_after.items()}
    answered = [(at, lat, i) for at, lat, i in list(load.done) if phase.started <= at < phase.ended]
    phase.latencies = [lat for _, lat, _ in answered]
    phase.answered_by = [i for _, _, i in answered]
    phase.committed_each_second = [0] * int(phase.ended - phase.started)  # whole seconds only
    for at, _, _ in answered:
        if int(at - phase.started) < len(phase.committed_each_second):
            phase.committed_each_second[int(at - phase.started)] += 1
    _say(out, f"  {phase.name}: " + ", ".join(f"{k.replace('_', ' ')} {maybe(v)}" for k, v in phase.to_json().items()
                                             if not isinstance(v, (dict, list))))
    return rejoined


def back_to_healthy_s(healthy_tps: float, committed_each_second: list[int]) -> int | None:
    """The first second of a phase from which BACK_WINDOW_S seconds in a row commit at least BACK_RATIO of the
    healthy rate (None: never within the phase)."""
    need = BACK_RATIO * healthy_tps * BACK_WINDOW_S
    for start in range(len(committed_each_second) - BACK_WINDOW_S + 1):
        if sum(committed_each_second[start:start + BACK_WINDOW_S]) >= need:
            return start
    return None


def _wait_rejoin(net: Any, restarted: float, rejoining: list[int], watch: int, out: IO[str] | None) -> float | None:
    """The restarted validators were not back within the recovered phase (a slow machine: process start-up alone
    can take seconds): keep watching, up to REJOIN_WAIT_S after their restart, so the report still says when they
    were back. None if they never were."""
    _say(out, f"  waiting for validators {rejoining} to rejoin (up to {REJOIN_WAIT_S:g}s after their restart) ...")
    while time.monotonic() < restarted + REJOIN_WAIT_S:
        height = net.height(watch)
        if all(_serving(net, i, height) for i in rejoining):
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
        rejoin_s = _measure(net, load, recovered, config.duration_s, 0, out, rejoining=victims,
                            route_when_ready=config.route_when_ready)
        if rejoin_s is None:
            rejoin_s = _wait_rejoin(net, recovered.started, victims, 0, out)
        load.finish()
        _round_timeouts(net, 0, [healthy, degraded, recovered])
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
            "routed_to_restarted": "once back at the head" if config.route_when_ready else "from their restart",
            # Seconds from the start of the recovered phase (the restart) to BACK_WINDOW_S seconds in a row at
            # BACK_RATIO of the healthy tx/s; the tx/s from then to the end of the phase.
            "back_to_healthy_s": (back := back_to_healthy_s(phases["healthy"]["tps"],
                                                            recovered.committed_each_second)),
            "recovered_tps_once_back": None if back is None else round(
                sum(recovered.committed_each_second[back:]) / max(1, len(recovered.committed_each_second) - back), 1),
        }
    finally:
        if load is not None:
            load.finish()
        net.down(5)
        shutil.rmtree(own_dir, ignore_errors=True)
