"""One deterministic run of whole nodes: the real Application and validator driver on every simulated machine, over a
simulated network and clock, with clients, Byzantine validators and failing machines (TigerBeetle's VOPR is the
model). The same seed gives the same run, event for event.

    result = run_seed(NodeSimConfig(seed=7, byzantine=1))
    summary = run_many(100, seed_start=0, byzantine=1)

A run: the genesis validators and the spare nodes boot at time 0 (spares follow as observers until governance adds
them); clients submit transactions all along (node/tools/simulation/workload.py); until GST the network drops,
duplicates, delays and partitions messages, honest machines crash (at once, or right after their k-th next store
write: between any two writes of a commit) and restart, a machine may be wiped and rebuilt from genesis, every
fourth seed (by default) powers all machines off at once; one machine's clock may be skewed throughout. From GST on
the network is stable and every machine is up. Checked (node/tools/simulation/checks.py): agreement of blocks and
state roots, receipts of acknowledged transactions, identical epoch switches, supply, no double vote, no halt; and
liveness: after GST every honest machine commits `liveness_commits` new blocks and every governance proposal
executes before the deadline.

The fault budget keeps liveness possible: Byzantine validators, a wiped validator until it has recovered its safety
state (docs/consensus.md §13) and a validator whose clock is far behind are at most f together (machines that are
not validators can always be wiped). A wiped validator must never sign in a round at or below one it signed in
before the wipe (checks.py, `RECOVERY:`); `wiped_voted_again_in_epoch` counts those that voted again in that epoch.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from consensus.byzantine import BEHAVIOURS, ByzantineSender
from consensus.certificates import SignatureVerifier
from consensus.codec import CodecError
from consensus.messages import decode_message
from consensus.simulator import RunResult
from node.chain.application import PendingExecution
from node.chain.mempool import TX_ALREADY_PENDING
from node.chain.sigverify import Ed25519Verifier
from node.net.messages import CH_CONSENSUS, encode_gossip
from node.tools.simulation.checks import Checks
from node.tools.simulation.machine import Machine, SimulatedCrash
from node.tools.simulation.network import EventQueue, SimNetwork
from node.tools.simulation.workload import Workload
from node.tools.simulation.world import GENESIS_TIME, SIM_PARAMS, World, world
from node.validator.effects import (
    ApplyBlocks,
    Broadcast,
    Halted,
    PeersChanged,
    RunExecution,
    SendTo,
    StorageFailed,
    SubmitGossip,
)

__all__ = ["NodeSimConfig", "NodeSimResult", "Simulation", "run_seed"]

# After GST, every honest machine must commit this many new blocks, and every proposal execute, within LIVE_MS.
LIVE_MS: Final = 40_000
# The run goes on this long after liveness was shown (more commits, epoch changes, catch-up) at most.
TAIL_MS: Final = 4_000
TX_INTERVAL_MS: Final = (20, 120)
WIPE_RETRY_MS: Final = 500
# Machines that execute blocks as the node does, off the driver's call (the rest execute within it: both paths, and
# networks that mix them); a pipelined execution takes 1-21 ms plus up to this many µs per transaction.
PIPELINED_SHARE: Final = 0.75
EXEC_US_PER_TX_MAX: Final = 400
# Block sync batches are applied in group commits of 1..SYNC_RUN_MAX blocks (random, as a host's groups end where its
# byte and block bounds fall).
SYNC_RUN_MAX: Final = 8
# Store writes a machine may lose power right after (node/tools/simulation/machine.py).
CRASH_POINTS: Final = ("block", "block", "persist_safety", "stage_blocks", "mark_epoch", "begin_epoch", "extra")


@dataclass(frozen=True, slots=True)
class NodeSimConfig:
    seed: int
    nodes: int = 4
    byzantine: int = 1
    behaviours: tuple[str, ...] = ()  # one per Byzantine machine; empty: drawn by the seed
    spare: int = 1  # nodes outside the genesis set that governance may add
    crashes: bool = True
    all_restart: bool = False
    wipes: bool = True
    partitions: bool = True
    skew: bool = True
    reconfig: bool = True
    clients: bool = True
    liveness_commits: int = 3
    min_height: int = 20

    def __post_init__(self) -> None:
        assert self.nodes >= 4 and 0 <= self.byzantine and 3 * self.byzantine < self.nodes
        assert all(b in BEHAVIOURS for b in self.behaviours)

    def command(self) -> str:
        """The command that replays this run."""
        flags = [f"--seeds 1 --seed-start {self.seed} --nodes {self.nodes} --byzantine {self.byzantine}",
                 f"--spare {self.spare}"]
        flags += [f"--behaviour {b}" for b in self.behaviours]
        flags += [name for name, on in (("--all-restart", self.all_restart), ("--no-crashes", not self.crashes),
                                        ("--no-wipes", not self.wipes), ("--no-partitions", not self.partitions),
                                        ("--no-skew", not self.skew), ("--no-reconfig", not self.reconfig),
                                        ("--no-clients", not self.clients)) if on]
        return "ledger simulate --app " + " ".join(flags)


@dataclass(slots=True)
class NodeSimResult(RunResult):
    """The consensus simulator's result of a run (consensus/simulator.py), plus a digest of every height's block id
    and state root: equal runs, equal digests."""

    digest: str = ""


@functools.lru_cache(maxsize=1)
def _tx_verifier() -> Ed25519Verifier:
    return Ed25519Verifier(workers=0)


@functools.lru_cache(maxsize=1)
def _bls() -> SignatureVerifier:
    return SignatureVerifier()


class Simulation:
    def __init__(self, config: NodeSimConfig, directory: str) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.world: World = world(config.nodes, config.spare)
        self.queue = EventQueue()
        self.gst_ms = self.rng.randint(2_000, 6_000)
        self.net = SimNetwork(self.rng, self.queue, self.gst_ms)
        self.tx_verifier = _tx_verifier()
        self.bls = _bls()
        self.wall_base_ms = (GENESIS_TIME + 1) * 1000
        self.workload = Workload(self.world, self.rng, reconfig=config.reconfig)
        self.checks = Checks(self.workload, lambda: self.queue.now)
        self.result = NodeSimResult(config.seed, config)
        n, spare = config.nodes, config.spare
        byz = self.rng.sample(range(n), config.byzantine)
        behaviours = list(config.behaviours) or [self.rng.choice(BEHAVIOURS) for _ in byz]
        self.byzantine = {i: behaviours[k % len(behaviours)] for k, i in enumerate(byz)}
        self.result.byzantine = dict(self.byzantine)
        # Execution times and which machines pipeline come from their own generator: the other draws of a seed
        # stay what they were.
        self._exec_rng = random.Random(config.seed * 7919 + 17)
        self._sync_rng = random.Random(config.seed * 104_729 + 5)  # lengths of block sync's group commits
        self.machines = [Machine(i, self.world.keys[i], self.world.next_keys[i], os.path.join(directory, f"node-{i}"),
                                 self.byzantine.get(i), genesis=self.world.genesis, now=lambda: self.queue.now,
                                 wall_base_ms=self.wall_base_ms,
                                 pipelined=self._exec_rng.random() < PIPELINED_SHARE) for i in range(n + spare)]
        self._index = {m.node_id: m for m in self.machines}
        self._senders = {i: ByzantineSender(b, self.rng, sign=functools.partial(self._sign, i), chain_id=self.world
                                            .genesis.consensus_chain_id, max_payload=SIM_PARAMS.max_block_bytes)
                         for i, b in self.byzantine.items()}
        self.live_since: dict[str, int] = {}
        self.counters = self.checks.counters
        # Epoch 0's validators, read once: building the genesis ValidatorSet verifies every proof of possession, and
        # the run asks for the current validators after every event past GST.
        self._genesis_validators = frozenset(v.id.decode() for v in
                                             self.world.genesis.validator_set(self.bls.backend).validators)

    # -- the host of every machine: inputs in, effects performed -----------------------------------------------

    def run_on(self, machine: Machine, step: Callable[..., Any], *args: Any) -> None:
        if not machine.up:
            return
        try:
            step(*args)
            self._perform(machine)
        except SimulatedCrash as crash:
            self.counters[f"crash_after_{crash.args[0]}"] += 1
            self._crash(machine)
            self.queue.at(self.queue.now + self.rng.randint(50, 1_000), functools.partial(self._restart, machine))

    def _perform(self, machine: Machine) -> None:
        driver = machine.driver
        while machine.up and driver is not None and (effects := driver.take()):
            for effect in effects:
                if not machine.up:
                    return
                if isinstance(effect, SendTo):
                    self._send(machine, [effect.peer], effect.data, effect.sync_request)
                elif isinstance(effect, Broadcast):
                    self._send(machine, sorted(p.node_id for p in driver.members.peers.peers
                                               if p.node_id != machine.node_id
                                               and (effect.audience == "all" or p.full == (effect.audience == "full_nodes"))),
                               effect.data, False)
                elif isinstance(effect, ApplyBlocks):
                    self._apply(machine, effect)
                elif isinstance(effect, SubmitGossip):
                    self._admit(machine, list(effect.txs), effect.peer)
                elif isinstance(effect, RunExecution):
                    self._begin_execution(machine, effect.pending)
                elif isinstance(effect, Halted | StorageFailed):
                    # A simulated disk never fails (power cuts raise SimulatedCrash): a storage failure is a halt.
                    code, message = ((effect.code, effect.message) if isinstance(effect, Halted)
                                     else (effect.failure.code, effect.failure.message))
                    if machine.honest:
                        self.checks.halted(machine, code, message)
                    self.counters["halts"] += 1
                    self._crash(machine)
                    return
                else:
                    assert isinstance(effect, PeersChanged)  # the network reads each node's peer set when sending
        if machine.up and driver is not None:
            self._arm_timer(machine)

    def _arm_timer(self, machine: Machine) -> None:
        assert machine.driver is not None
        deadline = machine.driver.next_deadline()
        if deadline is None or (machine.timer_due is not None and machine.timer_due <= deadline):
            return
        machine.timer_due = deadline
        self.queue.at(max(deadline, self.queue.now), functools.partial(self._timer, machine, machine.incarnation))

    def _timer(self, machine: Machine, incarnation: int) -> None:
        if machine.up and machine.incarnation == incarnation:
            machine.timer_due = None
            assert machine.driver is not None
            self.run_on(machine, machine.driver.handle_timer)

    def _linked(self, a: Machine, b: Machine) -> bool:
        """Both nodes up and each admits the other's current identity (what the transport's handshake checks)."""
        if not (a.up and b.up and a.driver is not None and b.driver is not None):
            return False
        pa, pb = a.driver.members.peers.get(b.node_id), b.driver.members.peers.get(a.node_id)
        return (pa is not None and pb is not None and pa.accepts(b.driver.members.identity_key)
                and pb.accepts(a.driver.members.identity_key))

    def _send(self, src: Machine, peers: list[str], data: bytes, sync_request: bool) -> None:
        targets = [self._index[p] for p in peers if p in self._index]
        if src.honest:
            self.checks.outgoing(src, data)
            out = [(t, data) for t in targets]
        elif data and data[0] == CH_CONSENSUS:
            try:
                message = decode_message(data[1:])
            except CodecError:
                return
            everyone = [m for m in self.machines if m is not src]
            out = [(t, bytes((CH_CONSENSUS,)) + d)
                   for t, d in self._senders[src.index].send(message, targets, everyone)]
        else:
            out = [(t, data) for t in targets]
        for dst, payload in out:
            if not self._linked(src, dst) or not self.net.connected(src.index, dst.index):
                if sync_request and src.driver is not None:
                    src.driver.sync_undeliverable(dst.node_id)
                continue
            self.net.transmit(src.index, dst.index,
                              functools.partial(self._deliver, src, dst, dst.incarnation, payload))

    def _deliver(self, src: Machine, dst: Machine, incarnation: int, data: bytes) -> None:
        if not dst.up or dst.incarnation != incarnation or dst.driver is None:
            return  # the connection died with the machine
        if not dst.honest:
            self._senders[dst.index].heard(data[1:])
        self.run_on(dst, dst.driver.on_message, src.node_id, data)

    def _begin_execution(self, machine: Machine, pending: PendingExecution) -> None:
        """The node's execution thread: the block's outcome arrives after a simulated execution time, while the
        machine's other inputs go on (the outcome is computed then, on the store as it is then: what a thread
        reading the store while commits land sees)."""
        txs = len(pending.job.txs)
        delay = 1 + self._exec_rng.randint(0, 20) + txs * self._exec_rng.randint(0, EXEC_US_PER_TX_MAX) // 1000
        self.counters["pipelined_executions"] += 1
        self.queue.at(self.queue.now + delay,
                      functools.partial(self._end_execution, machine, machine.incarnation, pending))

    def _end_execution(self, machine: Machine, incarnation: int, pending: PendingExecution) -> None:
        if machine.up and machine.incarnation == incarnation and machine.driver is not None:
            self.run_on(machine, machine.driver.execution_done, pending, pending.run())

    def _apply(self, machine: Machine, batch: ApplyBlocks) -> None:
        driver = machine.driver
        assert driver is not None
        applied, error = 0, None
        blocks = batch.blocks
        while blocks and error is None:  # in runs of random length, as a host's groups end where it chooses
            n = 1 + self._sync_rng.randint(0, SYNC_RUN_MAX - 1)
            run, blocks = blocks[:n], blocks[n:]
            done, error = driver.apply_synced_group(batch.peer, batch.request_id, run)
            applied += done
        self.counters["sync_blocks"] += applied
        driver.sync_batch_done(batch.peer, batch.request_id, applied, error)

    def _admit(self, machine: Machine, txs: list[bytes], origin: str | None) -> list[bytes]:
        """Admit transactions at `machine`; returns the ones to gossip: newly admitted, and, from a client, already
        pending (a client submitting again), as the node's host does (ValidatorNode.submit_many)."""
        assert machine.app is not None and machine.driver is not None
        out, fresh = [], False
        step = machine.app.mempool.limits.max_batch
        for i in range(0, len(txs), step):
            chunk = txs[i:i + step]
            for raw, r in zip(chunk, machine.app.admit_now(chunk, origin), strict=True):
                fresh = fresh or r.ok
                if r.ok or (origin is None and r.code == TX_ALREADY_PENDING):
                    out.append(raw)
        if fresh:
            machine.driver.on_admitted()
        return out

    def _sign(self, index: int, message: bytes) -> bytes:
        return self.bls.backend.sign(self.world.keys[index].bls_secret, message)

    # -- clients ------------------------------------------------------------------------------------------------

    def _client_tick(self) -> None:
        up = [m for m in self.machines if m.up and m.app is not None]
        if up:
            heights = [m.app.head.height for m in up]  # type: ignore[union-attr]
            raw = self.workload.next_transaction(max(heights), self.queue.now,
                                                 (self.wall_base_ms + self.queue.now) // 1000)
            if raw is not None:
                machine = self.rng.choice(up)
                self.run_on(machine, self._submit, machine, raw)
        if self.queue.now < self.deadline_ms:
            self.queue.at(self.queue.now + self.rng.randint(*TX_INTERVAL_MS), self._client_tick)

    def _submit(self, machine: Machine, raw: bytes) -> None:
        self.counters["client_submissions"] += 1
        if self._admit(machine, [raw], None):
            self.counters["client_gossiped"] += 1
            assert machine.driver is not None
            peers = sorted(p for p in machine.driver.members.peers.ids() if p != machine.node_id)
            self._send(machine, peers, encode_gossip([raw]), False)

    # -- faults -------------------------------------------------------------------------------------------------

    def _crash(self, machine: Machine) -> None:
        if machine.up:
            machine.crash()
            self.counters["crashes"] += 1

    def _restart(self, machine: Machine) -> None:
        if machine.up:
            return
        self.counters["restarts"] += 1
        try:
            machine.boot(self.tx_verifier, self.bls, functools.partial(self.checks.committed, machine))
        except SimulatedCrash as crash:  # the power went again while it was booting (writing its genesis, ...)
            self.counters[f"crash_after_{crash.args[0]}"] += 1
            machine.crash()
            self.queue.at(self.queue.now + self.rng.randint(50, 1_000), functools.partial(self._restart, machine))
            return
        assert machine.driver is not None
        self.run_on(machine, machine.driver.start)

    def _wipe(self, machine: Machine) -> None:
        self._crash(machine)
        machine.wipe()
        self.checks.wiped(machine)
        self.counters["wipes"] += 1

    def _schedule_faults(self) -> None:
        rng, cfg, gst = self.rng, self.cfg, self.gst_ms
        n = cfg.nodes
        f = (n - 1) // 3
        # Validators that cannot help a quorum for a while -- Byzantine ones, a wiped validator until it recovers,
        # one whose clock is far behind -- are at most f, or liveness is lost by design (round-robin leaders: two
        # faulty of four break every pair of consecutive rounds a 2-chain commit needs).
        budget = f - len(self.byzantine)
        honest = [m for m in self.machines[:n] if m.honest]
        if cfg.partitions and rng.random() < 0.7:
            t = rng.randint(0, gst // 2)
            while t < gst:
                self.queue.at(t, functools.partial(self._partition))
                t += rng.randint(200, 1_200)
        if cfg.crashes:
            for _ in range(rng.randint(1, 3)):
                machine = rng.choice(honest)
                down = rng.randint(0, gst - 300)
                self.queue.at(down, functools.partial(self._crash, machine))
                self.queue.at(rng.randint(down + 50, gst), functools.partial(self._restart, machine))
            # Power cuts right after a chosen store write (restarted by run_on): between the writes of a commit
            # (an epoch mark, the block batch, an epoch reset), after a PersistSafety, after evidence.
            for _ in range(rng.randint(1, 3)):
                kind = rng.choice(CRASH_POINTS)
                self.queue.at(rng.randint(0, gst), functools.partial(rng.choice(honest).arm_crash, kind,
                                                                     rng.randint(1, 3)))
        if cfg.all_restart:
            down = rng.randint(gst // 3, gst - 300)
            up = down + rng.randint(10, 250)
            for machine in self.machines:
                self.queue.at(down, functools.partial(self._crash, machine))
                self.queue.at(up, functools.partial(self._restart, machine))
        if cfg.wipes and rng.random() < 0.7:
            # A machine that is not and will not be a validator can always be wiped; others within the budget.
            may_wipe_validator = budget > 0 and rng.random() < 0.5
            budget -= int(may_wipe_validator)
            at = rng.randint(gst // 4, gst - 200)
            self.queue.at(at, functools.partial(self._wipe_one, may_wipe_validator, rng.randint(50, 1_500)))
        if cfg.skew:
            far = budget > 0 and rng.random() < 0.5
            machine = rng.choice(honest)
            drift = SIM_PARAMS.max_clock_drift_ms
            # Far behind: it withholds every vote (a fault); otherwise within the drift bound, harmless.
            machine.clock.skew_ms = -rng.randint(3 * drift, 6 * drift) if far else rng.randint(-drift // 2, drift // 2)
            self.counters["skewed_far"] += int(far)
        for machine in self.machines:
            self.queue.at(gst, functools.partial(self._restart, machine))
        self.queue.at(gst, self.net.heal)

    def _wipe_one(self, may_wipe_validator: bool, down_ms: int) -> None:
        """Wipe a machine that is not and will not be a validator (a removed validator, a spare no proposal adds),
        or, within the fault budget, any honest machine: a validator, or a spare about to join (it cannot show it
        never signed, so it does not sign in the epoch it joins). With no candidate yet (the removal has not
        executed), try again later; the machine restarts `down_ms` after its wipe."""
        busy = self._validators_in_play() | self.workload.joining()
        candidates = [m for m in self.machines if m.honest and (may_wipe_validator or m.node_id not in busy)]
        if not candidates:
            if self.queue.now + WIPE_RETRY_MS < self.deadline_ms - LIVE_MS // 2:
                self.queue.at(self.queue.now + WIPE_RETRY_MS,
                              functools.partial(self._wipe_one, may_wipe_validator, down_ms))
            return
        machine = self.rng.choice(candidates)
        self.counters["wiped_validators"] += int(machine.node_id in busy)
        self._wipe(machine)
        self.queue.at(self.queue.now + down_ms, functools.partial(self._restart, machine))

    def _partition(self) -> None:
        if not self.net.stable:
            self.net.partition_randomly(range(len(self.machines)))
            self.counters["partitions"] += 1

    # -- the run ------------------------------------------------------------------------------------------------

    def _on_gst(self) -> None:
        self.gst_heights = {m.node_id: m.app.head.height for m in self.machines if m.app is not None}

    def run(self) -> NodeSimResult:
        cfg = self.cfg
        self.deadline_ms = self.gst_ms + LIVE_MS
        self.gst_heights: dict[str, int] = {}
        for machine in self.machines:
            self.queue.at(0, functools.partial(self._restart, machine))
        self._schedule_faults()
        self.queue.at(self.gst_ms + 1, self._on_gst)
        if cfg.clients:
            self.queue.at(1, self._client_tick)
        live_at: int | None = None
        while (event := self.queue.pop()) is not None:
            event()
            if self.checks.violations:
                break
            now = self.queue.now
            if now <= self.gst_ms:
                continue
            if live_at is None and self._live():
                live_at = now
            if live_at is not None and now >= min(live_at + TAIL_MS, self.deadline_ms):
                break
            if now >= self.deadline_ms:
                break
        self._finish(live_at)
        return self.result

    def _validators_of(self, epoch: int) -> set[str]:
        if epoch == 0:
            return set(self._genesis_validators)
        return {entry[0] for entry in self.checks.epochs[epoch][1]}

    def _validators_now(self) -> set[str]:
        """The validators of the latest epoch any node entered."""
        return self._validators_of(max(self.checks.epochs, default=0))

    def _validators_in_play(self) -> set[str]:
        """The validators of every epoch from the oldest one an honest validator is still in to the latest: a node
        that the newest epoch removed may still be needed by peers that have not committed its removal."""
        latest = max(self.checks.epochs, default=0)
        oldest = min((m.app.epochs.epoch for m in self.machines
                      if m.honest and m.app is not None and m.node_id in self._validators_of(m.app.epochs.epoch)),
                     default=latest)
        return set().union(*(self._validators_of(e) for e in range(oldest, latest + 1)))

    def _live(self) -> bool:
        validators = self._validators_now()
        honest = [m for m in self.machines if m.honest and m.app is not None and m.node_id in validators]
        commits_ok = all(m.app.head.height - self.gst_heights.get(m.node_id, 0) >= self.cfg.liveness_commits
                         for m in honest)  # type: ignore[union-attr]
        top = max((m.app.head.height for m in honest), default=0)  # type: ignore[union-attr]
        return commits_ok and self.workload.governance_idle and top >= self.cfg.min_height

    def _finish(self, live_at: int | None) -> None:
        result, checks = self.result, self.checks
        if live_at is None and not checks.violations:
            honest = [m for m in self.machines if m.honest and m.app is not None]
            detail = {m.node_id: (m.app.head.height, m.driver.mode if m.driver else "down")  # type: ignore[union-attr]
                      for m in honest}
            left = len(self.workload.proposals) + (0 if self.workload.governance_idle else 1)
            result.liveness_failures.append(f"not live {LIVE_MS} ms after GST ({self.gst_ms} ms): heights and modes "
                                            f"{detail}, proposals not executed {left}")
        checks.final(self.machines)
        result.safety_violations = list(checks.violations)
        result.virtual_ms = self.queue.now
        result.messages = self.net.messages
        result.commits = checks.counters["commits"]
        result.max_height = max(checks.blocks, default=0)
        result.epoch_changes = len(checks.epochs)
        digest = hashlib.sha256()
        for height in sorted(checks.blocks):
            digest.update(height.to_bytes(8, "big") + b"".join(checks.blocks[height]))
        result.digest = digest.hexdigest()
        for machine in self.machines:
            driver = machine.driver
            if driver is not None:
                result.evidence += driver.counters["evidence"]
                for name in ("commit_gaps", "fell_behind", "epoch_changes"):
                    self.counters[f"node_{name}"] += driver.counters[name]
                if driver.replica is not None:
                    result.rounds = max(result.rounds, driver.replica.current_round)
            machine.crash()
        self.counters["proposals_executed"] = self.workload.executed_proposals
        for kind, count in self.workload.submitted_by_kind.items():
            self.counters[f"submitted_{kind}"] = count
        result.counters = dict(sorted(self.counters.items()))


def run_seed(config: NodeSimConfig) -> NodeSimResult:
    directory = tempfile.mkdtemp(prefix=f"ledger-sim-{config.seed}-", dir=_scratch())
    try:
        return Simulation(config, directory).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _scratch() -> str | None:
    """Stores live in memory-backed /dev/shm when the machine has it (synced writes cost nothing there)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
