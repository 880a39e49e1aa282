"""One validator process of `ledger bench consensus`: the consensus replica over the payload-only application
(node/tools/payload_chain.py), with the node's transport, safety store and BLS certificates, and a load source of
its own distinct payloads. Started by node/tools/bench_consensus.py as

    python -m node.tools.payload_validator CONFIG.json

CONFIG.json (written by the benchmark): this validator's index, keys (Ed25519 identity seed, BLS secret key), the
validator set, every peer's address, the data directory, the run's schedule (wall-clock start of the load, its
duration, when to stop) and the load (payloads/s of this validator, or null: keep the pool two blocks ahead), and
where to write the result (one JSON object).

The host performs the replica's actions in list order, as the node's validator driver does (node/validator/driver.py):
PersistSafety is one synced batch of the node's SafetyStore before the next action; Send/Broadcast go on the
transport's consensus channel; Execute and Commit go to the application (Commit writes the certified block, after
checking its commit certificate, in one synced batch); SetTimer arms the round timer; RequestPayload proposes as
soon as a full block waits, or after `propose_wait_ms` with whatever the pool holds.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import struct
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from nacl.signing import SigningKey

from consensus.actions import (
    Broadcast,
    Commit,
    Execute,
    PersistSafety,
    ReportEvidence,
    RequestPayload,
    Send,
    SetTimer,
    SyncBlocks,
)
from consensus.bls import get_backend
from consensus.certificates import SignatureVerifier
from consensus.messages import encode_message, genesis_block, genesis_qc
from consensus.replica import Replica, ReplicaConfig
from consensus.validators import Validator, ValidatorSet
from ledger.protocol import PROTOCOL_VERSION
from node.net.handshake import Identity, Peer, PeerSet
from node.net.messages import CH_CONSENSUS
from node.net.transport import Transport, TransportConfig
from node.tools.payload_chain import PayloadChain
from node.validator.safety_store import SafetyStore

__all__ = ["PayloadValidator", "main"]

log = logging.getLogger("node.tools.payload_validator")

GENESIS_ROOT: Final = bytes(32)
LOAD_TICK_S: Final = 0.005
CONNECT_TIMEOUT_S: Final = 60.0
_HEADER = struct.Struct(">HQQ")  # validator index, sequence number, creation time (ns): what makes a payload distinct


class PayloadValidator:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.index: int = cfg["index"]
        self.node_id: str = cfg["node_ids"][self.index]
        backend = get_backend(cfg.get("bls_backend"))
        self.verifier = SignatureVerifier(backend)
        self.vs = ValidatorSet(0, [Validator(node_id.encode(), bytes.fromhex(pk), bytes.fromhex(pop))
                                   for node_id, (pk, pop) in zip(cfg["node_ids"], cfg["bls_public"], strict=True)],
                               backend=backend)
        self.chain_id = cfg["chain_id"].encode()
        data = cfg["data_dir"]
        self.payload_bytes: int = cfg["payload_bytes"]
        self.max_payloads: int = cfg["max_payloads"]
        self.chain = PayloadChain(os.path.join(data, "blocks"), self.vs, self.chain_id, self.verifier,
                                  payload_bytes=self.payload_bytes, max_payloads=self.max_payloads)
        self.safety = SafetyStore(os.path.join(data, "consensus"))
        self.safety.bind_genesis(genesis_block(self.chain_id, 0).id, never_signed_epoch=0)
        identity = Identity(self.node_id, SigningKey(bytes.fromhex(cfg["identity_seed"])))
        peers = PeerSet.of(Peer(node_id, bytes.fromhex(pub), (host, port))
                           for node_id, pub, host, port in cfg["peers"])
        host, port = cfg["listen"]
        max_frame = self.max_payloads * self.payload_bytes + 64 * 1024
        genesis = genesis_block(self.chain_id, 0)
        self.transport = Transport(identity, cfg["chain_id"], peers,
                                   TransportConfig(listen_host=host, listen_port=port, max_payload_bytes=max_frame,
                                                   send_queue_bytes=max(64 << 20, 8 * max_frame)),
                                   # Opaque payloads execute no ledger protocol; every process of the bench runs
                                   # this code, so they all bind the same version. There is no genesis file: the
                                   # payload chain starts from the consensus genesis block, whose id stands for it.
                                   protocol_version=PROTOCOL_VERSION, genesis_hash=genesis.id)
        self.replica = Replica(ReplicaConfig(chain_id=self.chain_id, base_timeout_ms=cfg["base_timeout_ms"],
                                             max_payload_bytes=self.max_payloads * self.payload_bytes),
                               self.vs, me=self.node_id.encode(), secret_key=bytes.fromhex(cfg["bls_secret"]),
                               anchor=genesis, anchor_qc=genesis_qc(genesis, GENESIS_ROOT), verifier=self.verifier)
        # Certified blocks are written on one writer thread, in height order (LevelDB releases the GIL), so a
        # synced commit does not hold up the votes and proposals queued before it; None: written inline.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="commit") if cfg["disk_threads"] else None
        self._writes: set[asyncio.Future[None]] = set()
        # PersistSafety runs on its own thread (None: inline); inputs wait for the previous input's actions.
        self._disk = ThreadPoolExecutor(1, thread_name_prefix="safety") if cfg["disk_threads"] else None
        self._inputs = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._request: RequestPayload | None = None
        self._request_at = 0.0
        self._filler = os.urandom(self.payload_bytes)
        self._seq = 0
        self.latency_ms: collections.Counter[int] = collections.Counter()
        self.block_ms: collections.Counter[int] = collections.Counter()  # own proposals: proposed -> committed
        self.generated = 0
        self.committed_own = 0
        self.committed_own_in_window = 0
        self.refused = 0
        self.write_error: str | None = None
        self.persist_s = 0.0
        self.timeouts = 0
        self.load_start = 0.0
        self.load_end = 0.0

    # ------------------------------------------------------------------------------------------------ the run

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        await self.transport.start()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while len(self.transport.connected_peers()) < len(self.vs) - 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        receiver = asyncio.get_running_loop().create_task(self._receive_loop())
        # The load window, in this process's monotonic clock (the benchmark gives it in wall-clock time).
        self.load_start = time.monotonic() + max(0.0, cfg["start_at"] - time.time())
        self.load_end = self.load_start + cfg["duration_s"]
        stop_at = self.load_start + cfg["stop_after_s"]
        await self._input(self.replica.start)
        await asyncio.sleep(max(0.0, self.load_start - time.monotonic()))
        cpu0 = time.process_time()
        await self._load(stop_at)
        cpu = time.process_time() - cpu0
        receiver.cancel()
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(receiver, *self._tasks, *self._writes, return_exceptions=True)
        for pool in (self._writer, self._disk):
            if pool is not None:
                pool.shutdown(wait=True)
        await self.transport.close()
        result = self._result(cpu, time.monotonic() - self.load_start)
        self.safety.close()
        self.chain.close()
        return result

    async def _load(self, stop_at: float) -> None:
        """Create this validator's payloads until the load window ends (at `rate` per second, or keeping the pool
        two blocks ahead when rate is null), then keep validating until `stop_at`."""
        rate = self.cfg["rate"]
        while (now := time.monotonic()) < stop_at:
            if now < self.load_end:
                due = (int(rate * (now - self.load_start)) - self.generated if rate is not None
                       else 2 * self.max_payloads - self.chain.pool_size)
                if due > 0:
                    self._create(due, now)
            await self._propose_waiting()
            await asyncio.sleep(LOAD_TICK_S)

    def _create(self, count: int, now: float) -> None:
        header = _HEADER
        tail = self._filler[header.size:]
        stamp = time.time_ns()
        payloads = [header.pack(self.index, self._seq + k, stamp) + tail for k in range(count)]
        self._seq += count
        added = self.chain.add(payloads, now)
        self.generated += added
        self.refused += count - added

    async def _receive_loop(self) -> None:
        while True:
            peer, data = await self.transport.receive()
            if data and data[0] == CH_CONSENSUS:
                await self._input(self.replica.on_bytes, peer.encode(), data[1:])

    # ------------------------------------------------------------------------------------------------ actions

    async def _input(self, call: Callable[..., list[Any]], *args: Any) -> None:
        """One replica input and its actions, after every earlier input's actions were performed (the replica sees
        its inputs one at a time, and the actions of one list in order)."""
        async with self._inputs:
            await self._run(call(*args))

    async def _run(self, actions: list[Any]) -> None:
        pending = list(actions)
        while pending:
            follow: list[Any] = []
            for action in pending:
                if isinstance(action, PersistSafety):
                    # Durable before the next action of the list; on the disk thread, so the event loop keeps
                    # reading and writing the transport's frames meanwhile.
                    start = time.perf_counter()
                    if self._disk is None:
                        self.safety.persist(action.state, action.blocks, self.chain.height)
                    else:
                        await asyncio.get_running_loop().run_in_executor(
                            self._disk, self.safety.persist, action.state, action.blocks, self.chain.height)
                    self.persist_s += time.perf_counter() - start
                else:
                    follow.extend(self._perform(action))
            pending = follow

    def _perform(self, action: Any) -> list[Any]:
        if isinstance(action, Broadcast):
            self.transport.broadcast(bytes((CH_CONSENSUS,)) + encode_message(action.message))
        elif isinstance(action, Send | SyncBlocks):
            peer = action.to.decode()
            if peer != self.node_id:
                message = action.message if isinstance(action, Send) else action.request
                self.transport.send(peer, bytes((CH_CONSENSUS,)) + encode_message(message))
        elif isinstance(action, SetTimer):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(action.delay_ms / 1000, self._on_timer, action.round)
        elif isinstance(action, RequestPayload):
            self._request, self._request_at = action, time.monotonic()
            return self._proposal(self._request_at)
        elif isinstance(action, Execute):
            root = self.chain.execute(action.block, action.parent_state_root)
            return self.replica.on_executed(action.block.id, root)
        elif isinstance(action, Commit):
            created, proposed_at = self.chain.finalize(action.block, action.certificate)
            if self._writer is None:
                self.chain.commit(action.block, action.certificate)
                self._durable(created, proposed_at)
            else:
                write = asyncio.get_running_loop().run_in_executor(self._writer, self.chain.commit, action.block,
                                                                   action.certificate)
                self._writes.add(write)
                write.add_done_callback(lambda done: self._written(done, created, proposed_at))
        elif isinstance(action, ReportEvidence):
            log.warning("equivocation evidence: %r", action.evidence)
        return []

    def _written(self, write: asyncio.Future[None], created: list[float], proposed_at: float | None) -> None:
        self._writes.discard(write)
        if write.cancelled():
            return
        if write.exception() is not None:
            # Reported in the result, which fails the benchmark: a block that is not on disk is not committed.
            self.write_error = self.write_error or repr(write.exception())
            return
        self._durable(created, proposed_at)

    def _durable(self, created: list[float], proposed_at: float | None) -> None:
        """A block is on disk: this validator's payloads in it count as committed (creation -> durable commit)."""
        if proposed_at is None:
            return
        now = time.monotonic()
        self.block_ms[int((now - proposed_at) * 1000)] += 1
        self.committed_own += len(created)
        if now <= self.load_end:
            self.committed_own_in_window += len(created)
        for t in created:
            self.latency_ms[int((now - t) * 1000)] += 1

    def _proposal(self, now: float) -> list[Any]:
        """Answer a waiting RequestPayload once a full block waits or `propose_wait_ms` passed (its actions)."""
        request = self._request
        if request is None:
            return []
        waited_ms = (now - self._request_at) * 1000
        if self.chain.pool_size < self.max_payloads and waited_ms < self.cfg["propose_wait_ms"]:
            return []
        self._request = None
        return self.replica.on_payload(request.round, self.chain.propose(request.parent_id, request.height, now))

    async def _propose_waiting(self) -> None:
        if self._request is not None:
            async with self._inputs:
                await self._run(self._proposal(time.monotonic()))

    def _on_timer(self, round_: int) -> None:
        self._timer = None
        self.timeouts += 1
        task = asyncio.get_running_loop().create_task(self._input(self.replica.on_timeout, round_))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _result(self, cpu_s: float, wall_s: float) -> dict[str, Any]:
        head = self.chain.stored_head()
        return {
            "index": self.index,
            "generated": self.generated,
            "write_error": self.write_error,
            "refused": self.refused,
            "committed_own": self.committed_own,
            "committed_own_in_window": self.committed_own_in_window,
            "pending_own": self.chain.pool_size + self.chain.in_flight,
            "latency_ms": {str(k): v for k, v in sorted(self.latency_ms.items())},
            "proposal_to_commit_ms": {str(k): v for k, v in sorted(self.block_ms.items())},
            "height": self.chain.height,
            "head": None if head is None else [head[0], head[1].hex(), head[2].hex()],
            "block_ids": {str(h): self.chain.stored_block_id(h).hex()  # type: ignore[union-attr]
                          for h in range(max(1, self.chain.height - 15), self.chain.height + 1)},
            "committed_payloads": self.chain.committed_payloads,
            "stored_payloads": self.chain.stored_payloads(),
            "cpu_s": round(cpu_s, 3),
            "wall_s": round(wall_s, 3),
            "persist_s": round(self.persist_s, 3),
            "commit_write_s": round(self.chain.commit_write_s, 3),
            "safety_writes": self.safety.writes,
            "round_timeouts": self.timeouts,
            "round": self.replica.current_round,
            "bls_checks": self.verifier.checks,
            "bls_cache_hits": self.verifier.hits,
            "transport": {"bytes_out": self.transport.counters.bytes_out, "frames_out": self.transport.counters.frames_out,
                          "drops": dict(self.transport.counters.drops)},
            "replica": dict(self.replica.counters),
        }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m node.tools.payload_validator CONFIG.json", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        cfg = json.load(f)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    result = asyncio.run(PayloadValidator(cfg).run())
    tmp = cfg["result_path"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, cfg["result_path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
