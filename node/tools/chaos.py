"""`ledger testnet chaos`: random kills, restarts, partitions and slow links under load, with continuous checks.

    report = run_chaos(directory, ChaosConfig(duration_s=60), nodes=4, out=sys.stdout)

Three loops run at once against a testnet of real node processes (node.tools.testnet):

- load: signed CASH-T transfers at `rate` tx/s, each submitted to a random running node's admin socket
  (node.tools.load.TransferLoad, the load scenario 7 of the demo puts on its testnet too). Accepted
  transactions are probed later by submitting the same bytes again: the answer TX_REPLAYED ("already committed",
  checked against the node's committed state) is the node's acknowledgement that the transaction is committed.
  A probe answered "admitted" means the transaction had been lost from the mempools (a node was killed); it is
  pending again, as a client retry would make it.
- faults, one every `interval_s`: kill -9 a node (at most f down at a time), restart a down node, partition the
  network into two random groups, slow a node's links, or heal.
- checks, continuously:
    * no fork: every node's block id at every height equals the first one seen for that height;
    * state roots agree: every node's state root at every height equals the first one seen;
    * supply conserved per asset: every node executes blocks with ledger.invariants.assert_block_supply, which
      halts the node (status `fatal`) on any asset whose balances and supply diverge; a node that exits without
      having been killed is a violation. When a node serves the HTTP API, every 5 s the run also adds up every
      holder's balances at one height and compares them with issued - redeemed (`supply_at`).
    * every transaction acknowledged as committed is in the chain: at the end, after healing and restarting every
      node, each acknowledged transaction is submitted to every node, and each must answer TX_REPLAYED — or, once
      the chain is past its expiry height (its replay entry is then pruned), TX_EXPIRED with the node's own
      transaction lookup (GET /v1/tx/{id}) answering committed with the same bytes.
  At the end the network must also recover: all nodes running, committing, at the same height.

The summary counts faults, blocks and transactions checked, and lists every violation; `ok` is False on any.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Final

from node.tools.admin_client import AdminConnection
from node.tools.load import TransferLoad
from node.tools.progress import StartProgress
from node.tools.testnet import Testnet, TestnetError

TX_EXPIRED: Final = 101
TX_REPLAYED: Final = 103
PROBE_AFTER_S: Final = 2.0
RECOVERY_TIMEOUT_S: Final = 60.0
MAX_VIOLATIONS: Final = 100
SUPPLY_EVERY_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    duration_s: float = 60.0
    seed: int | None = None
    rate: int = 50
    interval_s: float = 4.0
    settle_s: float = 3.0  # the last seconds of the run have no new faults
    recovery_s: float = RECOVERY_TIMEOUT_S  # how long the healed network may take to commit again everywhere


@dataclass(slots=True)
class ChaosReport:
    seed: int
    duration_s: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    fault_log: list[str] = field(default_factory=list)
    submitted: int = 0
    accepted: int = 0
    acknowledged: int = 0
    final_height: int = 0
    heights_checked: int = 0
    blocks_checked: int = 0
    supply_checks: int = 0
    violations: list[str] = field(default_factory=list)
    recovered: bool = False

    @property
    def ok(self) -> bool:
        return not self.violations and self.recovered

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "seed": self.seed, "duration_s": round(self.duration_s, 1), "faults": self.faults,
                "fault_log": self.fault_log, "submitted": self.submitted, "accepted": self.accepted,
                "acknowledged_committed": self.acknowledged, "final_height": self.final_height,
                "heights_checked": self.heights_checked, "blocks_checked": self.blocks_checked,
                "supply_checks_via_api": self.supply_checks,
                "recovered": self.recovered, "violations": self.violations}


class _Shared:
    """State shared by the three loops (guarded by `lock`)."""

    def __init__(self, report: ChaosReport) -> None:
        self.lock = threading.Lock()
        self.report = report
        self.stop = threading.Event()
        self.block_ids: dict[int, str] = {}
        self.roots: dict[int, str] = {}
        self.checked: dict[int, int] = {}  # node -> highest height checked
        self.pending: list[tuple[float, bytes]] = []  # (accepted at, raw) not yet acknowledged
        self.acked: list[bytes] = []
        self.killed: set[int] = set()  # nodes down on purpose (kill -9 by the fault loop)
        self.exited: set[int] = set()  # nodes that exited on their own (reported once)

    def violation(self, text: str) -> None:
        with self.lock:
            if text not in self.report.violations and len(self.report.violations) < MAX_VIOLATIONS:
                self.report.violations.append(text)


def _say(out: IO[str] | None, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
        out.flush()


# -------------------------------------------------------------------------------------------------- checks


def check_node(net: Testnet, shared: _Shared, i: int, limit: int = 200) -> None:
    """Compare node i's block ids and state roots at heights not checked yet with the first ones seen."""
    if not net.running(i):
        return
    try:
        with AdminConnection(net.socket_path(i), timeout=5.0) as conn:
            status = conn.request({"op": "status"})
            if "error" in status:
                return
            if status.get("fatal"):
                shared.violation(f"node-{i} halted: {status['fatal']}")
            height = int(status["height"])
            lo = shared.checked.get(i, 0) + 1
            hi = min(height, lo + limit - 1)
            if hi < lo:
                return
            roots = conn.request({"op": "roots", "from": lo, "to": hi}).get("roots", {})
            blocks = conn.pipeline([{"op": "block", "height": h} for h in range(lo, hi + 1)])
    except (OSError, ValueError, TypeError, ConnectionError):
        return  # killed or restarting meanwhile: checked again next round
    with shared.lock:
        for h, answer in zip(range(lo, hi + 1), blocks, strict=True):
            block_id = answer.get("block_id")
            root = roots.get(str(h))
            if block_id is None or root is None:
                return
            first = shared.block_ids.setdefault(h, block_id)
            if first != block_id:
                shared.report.violations.append(f"fork at height {h}: node-{i} has block {block_id[:16]}, "
                                                f"another node {first[:16]}")
            first_root = shared.roots.setdefault(h, root)
            if first_root != root:
                shared.report.violations.append(f"state roots disagree at height {h}: node-{i} {root[:16]}, "
                                                f"another node {first_root[:16]}")
            shared.checked[i] = h
            shared.report.blocks_checked += 1
        shared.report.heights_checked = len(shared.block_ids)


def last_fatal_line(net: Testnet, i: int) -> str:
    """The node's last critical/error log line or traceback line, for the report."""
    lines = net.tail(i, 60).splitlines()
    for line in reversed(lines):
        if "level=critical" in line or "node_halted" in line or "Error" in line:
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else "(empty log)"


def check_alive(net: Testnet, shared: _Shared) -> None:
    """A node that is down without having been killed on purpose exited on its own: a halt or a crash."""
    for i in range(net.n):
        with shared.lock:
            expected_down = i in shared.killed or i in shared.exited
        if not expected_down and not net.running(i):
            time.sleep(0.3)  # a restart in progress writes its pid file first; look again
            with shared.lock:
                expected_down = i in shared.killed or i in shared.exited
            if expected_down or net.running(i):
                continue
            with shared.lock:
                shared.exited.add(i)
            shared.violation(f"node-{i} exited on its own: {last_fatal_line(net, i)}")


def supply_at(url: str, auditor: Any, accounts: Iterable[str], assets: Iterable[str]) -> list[tuple[str, int, int, int]]:
    """Through a node's HTTP API, at its current head H: per asset (asset, H, issued - redeemed, sum over holders of
    available + held + frozen). Holders are the asset's current holders plus `accounts` (so an account that stopped
    holding after H is still counted). `auditor`: an AccountKey with the auditor role (it sees every balance)."""
    from node.client import LedgerClient

    out = []
    with LedgerClient(url, auditor, timeout=10) as client:
        height = client.head_height()
        for asset in assets:
            outstanding = int(client.asset(asset, height)["outstanding"])
            names = set(accounts)
            after = None
            for _ in range(100):
                page = client.holders(asset, limit=100, after=after)
                names.update(item["account"] for item in page["items"])
                after = page.get("next")
                if not after:
                    break
            total = 0
            for name in sorted(names):
                for b in client.balances(name, asset, height).get("balances", []):
                    total += int(b["available"]) + int(b["held"]) + int(b["frozen"])
            out.append((asset, height, outstanding, total))
    return out


def check_supply(net: Testnet, shared: _Shared) -> None:
    """The supply check through the API of the first running node that serves it (skipped when none does)."""
    from node.client import AccountKey, ClientError, LedgerClientError
    from node.tools.localnet import ADMIN_ACCOUNT, CASH_ASSET, load_accounts
    from node.tools.testnet import api_answers

    for i in range(net.n):
        if not net.running(i) or not api_answers(net.api_url(i), timeout=0.5):
            continue
        keys = load_accounts(net.accounts_path)
        auditor = AccountKey.from_seed(ADMIN_ACCOUNT, bytes(keys[ADMIN_ACCOUNT]))
        try:
            results = supply_at(net.api_url(i), auditor, keys, [CASH_ASSET])
        except (ClientError, LedgerClientError, OSError, KeyError, ValueError):
            return  # the node went away meanwhile: next round
        with shared.lock:
            shared.report.supply_checks += 1
        for asset, height, outstanding, total in results:
            if outstanding != total:
                shared.violation(f"supply of {asset} not conserved at height {height} (node-{i}): issued - redeemed "
                                 f"= {outstanding}, balances add up to {total}")
        return


def _checker(net: Testnet, shared: _Shared) -> None:
    last_supply = 0.0
    while not shared.stop.is_set():
        check_alive(net, shared)
        for i in range(net.n):
            check_node(net, shared, i)
        if time.monotonic() - last_supply >= SUPPLY_EVERY_S:
            last_supply = time.monotonic()
            check_supply(net, shared)
        shared.stop.wait(0.5)


# ---------------------------------------------------------------------------------------------------- load


class _Acknowledgements:
    """What the load (node.tools.load.TransferLoad) needs for the last check: every accepted transaction is pending
    until a resubmission answers TX_REPLAYED, which acknowledges it as committed."""

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.load: TransferLoad | None = None

    def accepted(self, raw: bytes) -> None:
        with self.shared.lock:
            self.shared.pending.append((time.monotonic(), raw))

    def probe(self, limit: int = 5) -> None:
        """Resubmit a few accepted transactions old enough to be committed: TX_REPLAYED acknowledges them."""
        assert self.load is not None
        now = time.monotonic()
        with self.shared.lock:
            due = [p for p in self.shared.pending[:limit] if now - p[0] >= PROBE_AFTER_S]
        for item in due:
            code = self.load.submit(item[1])
            with self.shared.lock:
                self.shared.pending.remove(item)
                if code == TX_REPLAYED:
                    self.shared.acked.append(item[1])
                    self.shared.report.acknowledged += 1
                else:
                    self.shared.pending.append((time.monotonic(), item[1]))


# -------------------------------------------------------------------------------------------------- faults


class _Faults:
    def __init__(self, net: Testnet, shared: _Shared, rng: random.Random, out: IO[str] | None) -> None:
        self.net = net
        self.shared = shared
        self.rng = rng
        self.out = out
        self.f = (net.n - 1) // 3
        self.t0 = time.monotonic()

    def log(self, kind: str, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {text}"
        with self.shared.lock:
            self.shared.report.faults[kind] = self.shared.report.faults.get(kind, 0) + 1
            self.shared.report.fault_log.append(line)
        _say(self.out, "  " + line)

    def step(self) -> None:
        net = self.net
        down = [i for i in range(net.n) if not net.running(i)]
        up = [i for i in range(net.n) if i not in down]
        faults = net.state.get("faults") or {}
        impaired = bool(faults.get("partition") or faults.get("slow"))
        choices = ["slow"]
        if len(down) < self.f and len(up) > 1:
            choices += ["kill", "kill"]
        if down:
            choices += ["restart", "restart"]
        if net.n >= 2 and not faults.get("partition"):
            choices.append("partition")
        if impaired:
            choices += ["heal", "heal"]
        action = self.rng.choice(choices)
        try:
            if action == "kill":
                victim = self.rng.choice(up)
                with self.shared.lock:
                    self.shared.killed.add(victim)
                net.kill(victim)
                self.log("kill", f"kill -9 node-{victim}")
            elif action == "restart":
                who = self.rng.choice(down)
                net.restart(who, timeout=30)
                with self.shared.lock:
                    self.shared.killed.discard(who)
                    self.shared.exited.discard(who)
                self.log("restart", f"restart node-{who}")
            elif action == "partition":
                nodes = list(range(net.n))
                self.rng.shuffle(nodes)
                cut = self.rng.randint(1, net.n // 2)
                groups = [sorted(nodes[:cut]), sorted(nodes[cut:])]
                net.partition(groups)
                self.log("partition", "partition " + " | ".join(",".join(map(str, g)) for g in groups))
            elif action == "slow":
                who = self.rng.choice(up)
                ms = self.rng.choice([50, 100, 200, 400])
                net.slow(who, ms)
                self.log("slow", f"slow node-{who} by {ms} ms")
            else:
                net.heal()
                self.log("heal", "heal all links")
        except TestnetError as exc:
            if exc.code in ("unreachable", "timeout", "node_exited"):
                self.log("fault_error", f"{action}: {exc.message.splitlines()[0]}")
            else:
                raise


# ------------------------------------------------------------------------------------------------------ run


def run_chaos(directory: str | None, config: ChaosConfig, nodes: int = 4, out: IO[str] | None = None) -> ChaosReport:
    """Run chaos against the testnet in `directory` (started when needed; a new one in a temporary directory when
    `directory` holds none and is None or empty). The network is healed and every node restarted afterwards."""
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    report = ChaosReport(seed=seed)
    own_dir: str | None = None
    if directory is not None and os.path.exists(os.path.join(directory, "testnet.json")):
        net = Testnet.open(directory)
    else:
        own_dir = directory if directory is not None else tempfile.mkdtemp(prefix="ledger-chaos-")
        net = Testnet.create(own_dir, nodes)
    if net.n < 4:
        raise TestnetError("bad_nodes", "chaos needs at least 4 validators (it kills up to f = (n-1)/3 of them)")
    shared = _Shared(report)
    threads: list[threading.Thread] = []
    load: TransferLoad | None = None
    started = time.monotonic()
    try:
        _say(out, f"chaos: {net.n} validators in {net.directory}, seed {seed}, {config.duration_s:.0f}s, "
                  f"load {config.rate} tx/s")
        with StartProgress(net.api_urls(), out) if out is not None else contextlib.nullcontext():
            net.up(90)
        net.heal()
        acks = _Acknowledgements(shared)
        load = acks.load = TransferLoad(net, config.rate, random.Random(rng.random()), stop=shared.stop,
                                        on_accepted=acks.accepted, after_each=acks.probe, name="chaos-load")
        faults = _Faults(net, shared, rng, out)
        threads = [load.thread, threading.Thread(target=_checker, args=(net, shared), name="chaos-check", daemon=True)]
        for t in threads:
            t.start()
        # The run's duration counts from here, the network up and the load starting: a slow start (a busy machine)
        # must not eat the time faults are injected in.
        end = time.monotonic() + config.duration_s
        last_print = time.monotonic()
        while time.monotonic() < end - config.settle_s:
            faults.step()
            stop_at = min(end - config.settle_s, time.monotonic() + config.interval_s * rng.uniform(0.5, 1.5))
            while time.monotonic() < stop_at:
                time.sleep(0.2)
                if time.monotonic() - last_print >= 5.0:
                    last_print = time.monotonic()
                    with shared.lock:
                        report.submitted, report.accepted = load.submitted, load.accepted
                        _say(out, f"  heights checked {report.heights_checked}, accepted {report.accepted}, "
                                  f"acknowledged {report.acknowledged}, violations {len(report.violations)}")
        _say(out, "chaos: healing and restarting every node ...")
        _recover(net, shared, report, config.recovery_s)
        while time.monotonic() < end:
            time.sleep(0.2)
        shared.stop.set()
        for t in threads:
            t.join(15)
        report.submitted, report.accepted = load.submitted, load.accepted
        _final_checks(net, shared, report, out)
    finally:
        shared.stop.set()
        for t in threads:
            t.join(15)
        if load is not None:
            report.submitted, report.accepted = load.submitted, load.accepted
        report.duration_s = time.monotonic() - started
        if own_dir is not None:
            net.down(5)
            if directory is None:
                shutil.rmtree(own_dir, ignore_errors=True)
        else:
            net.close()
    _say(out, summary(report))
    return report


def _recover(net: Testnet, shared: _Shared, report: ChaosReport, timeout: float) -> None:
    net.heal()
    for i in range(net.n):
        if not net.running(i):
            try:
                net.restart(i, timeout=30)
                with shared.lock:
                    shared.killed.discard(i)
                    shared.exited.discard(i)
            except TestnetError as exc:
                shared.violation(f"node-{i} did not restart: {exc.message.splitlines()[0]}")
    target = max(net.height(i) for i in range(net.n)) + 2
    report.recovered = net.wait_height(range(net.n), target, timeout)
    if not report.recovered:
        heights = {f"node-{i}": net.height(i) for i in range(net.n)}
        shared.violation(f"the network did not recover to height {target} within {timeout:.0f}s: "
                         f"{heights}")


def _final_checks(net: Testnet, shared: _Shared, report: ChaosReport, out: IO[str] | None) -> None:
    # Acknowledge what is still pending now that the network is whole, then check every node has every
    # acknowledged transaction, and compare every height on every node.
    deadline = time.monotonic() + 20
    load_rng = random.Random(0)
    while shared.pending and time.monotonic() < deadline:
        _, raw = shared.pending[0]
        answer = net.admin(load_rng.randrange(net.n), {"op": "submit", "tx": raw.hex()}, timeout=3.0)
        code = None if answer is None else answer.get("code")
        shared.pending.pop(0)
        if code == TX_REPLAYED:
            shared.acked.append(raw)
            report.acknowledged += 1
        else:
            shared.pending.append((time.monotonic(), raw))
            time.sleep(0.05)
    _say(out, f"chaos: checking {len(shared.acked)} acknowledged transactions on every node ...")
    target = max(net.height(i) for i in range(net.n))
    net.wait_height(range(net.n), target, 30)
    for i in range(net.n):
        expired: list[bytes] = []
        try:
            with AdminConnection(net.socket_path(i), timeout=10.0) as conn:
                for lo in range(0, len(shared.acked), 200):
                    chunk = shared.acked[lo : lo + 200]
                    answers = conn.pipeline([{"op": "submit", "tx": raw.hex()} for raw in chunk])
                    for raw, answer in zip(chunk, answers, strict=True):
                        code = answer.get("code")
                        if code == TX_EXPIRED:
                            expired.append(raw)  # its replay entry is gone with its expiry: looked up below
                        elif code != TX_REPLAYED:
                            shared.violation(f"node-{i} does not have committed transaction "
                                             f"{_tx_id(raw)}: answered {code} {answer.get('message')}")
        except (OSError, ValueError, TypeError, ConnectionError) as exc:
            shared.violation(f"node-{i} unreachable for the final check: {exc}")
            continue
        _check_committed(net, shared, i, expired)
    # The chain keeps growing (a round proposes even without transactions), so fix the height to check up to
    # first — the lowest head of all nodes now — and then check every node at least that far.
    report.final_height = min(net.height(i) for i in range(net.n))
    for _ in range(20):
        before = report.blocks_checked
        for i in range(net.n):
            if shared.checked.get(i, 0) < report.final_height:
                check_node(net, shared, i, limit=1000)
        if all(shared.checked.get(i, 0) >= report.final_height for i in range(net.n)):
            break
        if report.blocks_checked == before:
            time.sleep(0.5)  # a node still restarting or syncing: give it a moment, bounded by the loop
    for i in range(net.n):
        if shared.checked.get(i, 0) < report.final_height:
            shared.violation(f"node-{i} could not be checked up to height {report.final_height}")


def _check_committed(net: Testnet, shared: _Shared, i: int, raws: list[bytes]) -> None:
    """Acknowledged transactions node `i` refused as expired when submitted again: a transaction's replay entry
    lives only until its expiry height, so past it a resubmission is answered TX_EXPIRED whether or not it was
    committed (a long run outlives the first transactions' expiry). Each must be in node i's chain: its own
    transaction lookup (GET /v1/tx/{id}) answers committed, with the same bytes."""
    if not raws:
        return
    from ledger.transaction import decode_transaction
    from node.chain.protocol import OPERATIONS
    from node.client import AccountKey, ClientError, LedgerClient, LedgerClientError
    from node.tools.localnet import ADMIN_ACCOUNT, load_accounts

    keys = load_accounts(net.accounts_path)
    reader = AccountKey.from_seed(ADMIN_ACCOUNT, bytes(keys[ADMIN_ACCOUNT]))
    try:
        with LedgerClient(net.api_url(i), reader, timeout=10) as client:
            for raw in raws:
                tx_id = decode_transaction(raw, operations=OPERATIONS).tx_id.hex()
                try:
                    found = _lookup(client, tx_id)
                except (ClientError, LedgerClientError) as exc:
                    shared.violation(f"node-{i} does not have committed transaction {tx_id[:16]}: refused as "
                                     f"expired when submitted again, and its lookup failed ({exc})")
                    continue
                if found.get("status") != "committed" or found.get("tx") != raw.hex():
                    shared.violation(f"node-{i} does not have committed transaction {tx_id[:16]}: refused as "
                                     f"expired when submitted again, and its lookup answered {found.get('status')}")
    except (OSError, ValueError) as exc:
        shared.violation(f"node-{i} unreachable for the final check's lookups: {exc}")


LOOKUP_PACE_S: Final = 1 / 150  # below the API's default 200 requests/s per client (ApiLimits.rate_per_second)
LOOKUP_RETRIES: Final = 8


def _lookup(client: Any, tx_id: str) -> dict[str, Any]:
    """GET /v1/tx/{id}, paced under the API's request rate, waiting and asking again (a bounded number of times)
    when the node answers 429: a rate-limited lookup says nothing about the transaction."""
    from node.client import ApiError

    for attempt in range(LOOKUP_RETRIES):
        time.sleep(LOOKUP_PACE_S)
        try:
            return client.tx(tx_id)
        except ApiError as exc:
            if exc.status != 429 or attempt == LOOKUP_RETRIES - 1:
                raise
            time.sleep(0.25 * (attempt + 1))
    raise AssertionError("unreachable")


def _tx_id(raw: bytes) -> str:
    from ledger.transaction import decode_transaction
    from node.chain.protocol import OPERATIONS

    return decode_transaction(raw, operations=OPERATIONS).tx_id.hex()[:16]


def summary(report: ChaosReport) -> str:
    lines = [
        f"chaos summary (seed {report.seed}, {report.duration_s:.0f}s): {'OK' if report.ok else 'FAILED'}",
        "  faults: " + (", ".join(f"{kind} x{count}" for kind, count in sorted(report.faults.items())) or "none"),
        (f"  load: {report.submitted} submitted, {report.accepted} accepted, {report.acknowledged} acknowledged "
         f"as committed (then looked up on every node)"),
        (f"  chain: height {report.final_height}; {report.heights_checked} heights, {report.blocks_checked} "
         f"(node, height) pairs checked for equal block ids and state roots"),
        (f"  supply: {report.supply_checks} checks through the API (sum of balances = issued - redeemed)"
         if report.supply_checks else "  supply: by the nodes' per-block invariant only (no node serves the API)"),
        "  recovered: " + ("yes, every node caught up after healing" if report.recovered else "NO"),
    ]
    if report.violations:
        lines.append(f"  VIOLATIONS ({len(report.violations)}):")
        lines += [f"    - {v}" for v in report.violations]
    else:
        lines.append("  violations: none (no fork, roots agree, no node halted, every acknowledged tx committed)")
    return "\n".join(lines)
