"""A simulated machine running one node: its disk (real LevelDB stores in a directory of its own), its power (crash,
restart, wipe), its clock (virtual time, possibly skewed) and the node software itself -- the real Application and
the real validator driver, whose effects the simulation performs.

    machine = Machine(index, keys, next_keys, data_dir, behaviour, genesis=..., now=..., wall_base_ms=...)
    machine.boot(tx_verifier, bls, on_commit)    open the stores, build the Application and the driver
    machine.crash()           power off: the objects are dropped, the stores closed, in-flight work lost
    machine.arm_crash(kind, n) power off right after the n-th next store write of a kind: between two writes of a
                              commit (the epoch mark, the block batch, the epoch reset), after a PersistSafety, ...
    machine.wipe()            (while down) delete the data directory

Crashes are raised as SimulatedCrash (a BaseException, so no `except Exception` of the node swallows it) from inside
the store's write method, after the write completed: what is on disk is exactly what a real crash leaves.
"""

from __future__ import annotations

import collections
import hashlib
import shutil
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from consensus.certificates import SignatureVerifier
from consensus.messages import Block, SafetyState
from ledger.store import BlockCommit, LedgerStore
from node.chain.application import Application
from node.chain.execution import CommittedBlock
from node.chain.genesis import Genesis
from node.chain.mempool import MempoolLimits
from node.chain.protocol import node_protocol
from node.chain.sigverify import Ed25519Verifier
from node.validator.driver import ValidatorDriver
from node.validator.keyfile import NodeKeys
from node.validator.keyring import KeyRing
from node.validator.metrics import NodeMetrics
from node.validator.safety_store import SafetyStore

__all__ = ["Machine", "SimulatedCrash"]

SIM_MEMPOOL: Final = MempoolLimits(max_txs=2_000, max_bytes=8 << 20, max_txs_per_account=200, max_batch=256)


class SimulatedCrash(BaseException):
    """The machine lost power right after the named store write."""


class WriteCounter:
    """A machine's store writes, and the armed crash: right after the n-th next write of a kind, SimulatedCrash."""

    def __init__(self) -> None:
        self.armed: tuple[str, int] | None = None
        self.by_kind: collections.Counter[str] = collections.Counter()

    def wrote(self, kind: str) -> None:
        self.by_kind[kind] += 1
        if self.armed is not None and self.armed[0] == kind:
            left = self.armed[1] - 1
            self.armed = None if left <= 0 else (kind, left)
            if left <= 0:
                raise SimulatedCrash(kind)


def _open_ledger_store(path: str, writes: WriteCounter) -> LedgerStore:
    class CountedLedgerStore(LedgerStore):
        def commit_blocks(self, commits: Sequence[BlockCommit]) -> None:
            # Every block commit (commit_block is a group of one): one atomic write, a crash comes before all of it
            # or after all of it.
            super().commit_blocks(commits)
            if commits:
                writes.wrote("block")

        def put_extra(self, key: bytes, value: bytes, sync: bool = True) -> None:
            super().put_extra(key, value, sync)
            writes.wrote("extra")

    return CountedLedgerStore.open(path)


def _open_safety_store(path: str, writes: WriteCounter) -> SafetyStore:
    class CountedSafetyStore(SafetyStore):
        def persist(self, state: SafetyState, blocks: Iterable[Block], committed_height: int) -> int:
            written = super().persist(state, blocks, committed_height)
            writes.wrote("persist_safety")
            return written

        def stage(self, blocks: Iterable[Block], committed_height: int) -> int:
            written = super().stage(blocks, committed_height)
            if written:
                writes.wrote("stage_blocks")
            return written

        def mark_epoch(self, epoch: int) -> None:
            super().mark_epoch(epoch)
            writes.wrote("mark_epoch")

        def begin_epoch(self, epoch: int, *, mark: bool = True) -> None:
            super().begin_epoch(epoch, mark=mark)
            writes.wrote("begin_epoch")

    return CountedSafetyStore(path)


class SimClock:
    """Virtual time: monotonic = the simulation's now; wall = genesis time + now + this machine's skew."""

    def __init__(self, now: Callable[[], int], wall_base_ms: int, skew_ms: int) -> None:
        self._now = now
        self._wall_base_ms = wall_base_ms
        self.skew_ms = skew_ms

    def monotonic_ms(self) -> int:
        return self._now()

    def wall_ms(self) -> int:
        return self._wall_base_ms + self._now() + self.skew_ms


class Machine:
    def __init__(self, index: int, keys: NodeKeys, next_keys: NodeKeys, data_dir: str, behaviour: str | None, *,
                 genesis: Genesis, now: Callable[[], int], wall_base_ms: int, pipelined: bool = False) -> None:
        self.index = index
        self.node_id = keys.node_id
        self.keys = keys
        self.next_keys = next_keys
        self.data_dir = data_dir
        self.behaviour = behaviour  # a Byzantine behaviour (consensus/byzantine.py), or None: honest
        self.pipelined = pipelined  # blocks execute off the driver's call, as in the node (RunExecution effects)
        self._genesis = genesis
        self._now = now
        self.up = False
        self.incarnation = 0
        self.app: Application | None = None
        self.driver: ValidatorDriver | None = None
        self._stores: list[Any] = []
        self.writes = WriteCounter()
        self.clock = SimClock(now, wall_base_ms, 0)
        self.timer_due: int | None = None
        self.boots = 0
        self.counters: collections.Counter[str] = collections.Counter()
        self._drawn = 0

    @property
    def honest(self) -> bool:
        return self.behaviour is None

    def boot(self, tx_verifier: Ed25519Verifier, bls: SignatureVerifier,
             on_commit: Callable[[CommittedBlock], None]) -> None:
        """Power on: the node's stores, Application and driver (the caller starts the driver)."""
        assert not self.up
        ledger = _open_ledger_store(f"{self.data_dir}/ledger", self.writes)
        self._stores = [ledger]
        self.app = Application(ledger, self._genesis, protocol=node_protocol(), tx_verifier=tx_verifier, bls=bls,
                               mempool_limits=SIM_MEMPOOL, clock=lambda: self._now() / 1000)
        safety = _open_safety_store(f"{self.data_dir}/consensus", self.writes)
        self._stores.append(safety)
        # Only the very first boot is a first start (the marker beside a new node's key file): a directory recreated
        # after a wipe must not claim its keys never signed.
        safety.bind_genesis(self._genesis.hash,
                            never_signed_epoch=self.app.epochs.epoch if self.boots == 0 else None)
        self.driver = ValidatorDriver(self.app, safety, KeyRing(self.keys, (self.next_keys,)), self.clock,
                                      NodeMetrics(), pipelined=self.pipelined, entropy=self._entropy)
        self.app.add_commit_listener(on_commit)
        self.up = True
        self.incarnation += 1
        self.boots += 1
        self.timer_due = None

    def _entropy(self, size: int) -> bytes:
        """The node's random bytes (a recovery nonce): deterministic per seed, never the same twice."""
        assert size <= 32
        self._drawn += 1
        return hashlib.sha256(b"sim-entropy/%s/%d" % (self.node_id.encode(), self._drawn)).digest()[:size]

    def crash(self) -> None:
        """Power off: nothing more runs; the stores are closed as the OS would release their files (also when the
        power went while the machine was booting)."""
        if not self.up and not self._stores:
            return
        self.up = False
        self.incarnation += 1
        for store in self._stores:
            store.close()
        self._stores = []
        self.app = None
        self.driver = None
        self.timer_due = None

    def arm_crash(self, kind: str, nth: int) -> None:
        self.writes.armed = (kind, nth)

    def wipe(self) -> None:
        assert not self.up, "wipe a machine that is down"
        shutil.rmtree(self.data_dir, ignore_errors=True)
