"""The validator node as the HTTP API, the admin socket and operators see it: node.api.facade.NodeFacade over a
node's parts (reads from its Application, status from its driver, metrics and transport, admission through the
node's `submit_many`, which also gossips).

    view = node.view
    await view.submit(tx) -> AdmissionView            view.block(h) -> BlockView     view.status() -> {...}
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from consensus.messages import CommitCertificate, decode_block
from consensus.validators import ValidatorSet
from ledger.rules import RuleEngine
from ledger.store import LedgerStore
from ledger.transaction import SignedTransaction
from node.api.facade import AdmissionView, BlockView, CommitNotice, HeadInfo, PeerView, ValidatorView
from node.chain import execution
from node.chain.application import Application
from node.chain.certified import cert_key
from node.chain.mempool import TX_ALREADY_PENDING, Admission
from node.chain.sigverify import Ed25519Verifier
from node.net.transport import Transport
from node.validator.driver import ValidatorDriver
from node.validator.metrics import NodeMetrics

__all__ = ["NodeView"]


def _api_admission(tx: SignedTransaction | bytes, result: Admission) -> AdmissionView:
    if result.tx_id is not None:
        tx_id = result.tx_id
    else:  # not even decodable: the API names it by the hash of its bytes
        tx_id = tx.tx_id if isinstance(tx, SignedTransaction) else hashlib.sha256(tx).digest()
    if result.code == TX_ALREADY_PENDING:
        return AdmissionView(tx_id, 0, result.message, duplicate=True)
    return AdmissionView(tx_id, result.code, result.message)


class NodeView:
    """Implements node.api.facade.NodeFacade (structurally)."""

    def __init__(self, app: Application, driver: ValidatorDriver, metrics: NodeMetrics, transport: Transport | None,
                 submit: Callable[[Sequence[SignedTransaction | bytes]], Awaitable[list[Admission]]],
                 sig_verifier: Ed25519Verifier | None = None) -> None:
        """`submit`: the node's client admission (mempool, then gossip to the peers); `sig_verifier`: the node's
        Ed25519 verifier, whose task counts /metrics exports."""
        self._app = app
        self._sig_verifier = sig_verifier
        self._driver = driver
        self._metrics = metrics
        self._transport = transport
        self._submit = submit
        self._replica_dropped: collections.Counter[str] = collections.Counter()

    @property
    def chain_id(self) -> str:
        return self._app.chain_id

    @property
    def node_id(self) -> str:
        return self._driver.node_id

    @property
    def store(self) -> LedgerStore:
        return self._app.store

    @property
    def engine(self) -> RuleEngine:
        return self._app.engine

    def head(self) -> HeadInfo:
        h = self._app.head
        return HeadInfo(h.height, h.block_id, h.state_root, h.time_ms // 1000)

    async def submit(self, tx: SignedTransaction | bytes) -> AdmissionView:
        """An AdmissionView (code 0, duplicate=True when it was already pending)."""
        return (await self.submit_many([tx]))[0]

    async def submit_many(self, txs: Sequence[SignedTransaction | bytes]) -> list[AdmissionView]:
        """One AdmissionView per transaction, in order, verified in one mempool round per `max_batch` of them (the
        API's batch route and the admin socket use it)."""
        results = await self._submit(txs)
        return [_api_admission(tx, result) for tx, result in zip(txs, results, strict=True)]

    def tx_pending(self, tx_id: bytes) -> bool:
        return self._app.mempool.contains(tx_id)

    def block(self, height: int) -> BlockView | None:
        store = self._app.store
        raw = store.get_block(height)
        root = store.state_root_at(height)
        if raw is None or root is None:
            return None
        block = decode_block(raw)
        h = block.header
        committed = self._app.feed.load(height) if height > 0 else None
        header = {"chain_id": h.chain_id.hex(), "epoch": h.epoch, "round": h.round, "height": h.height,
                  "parent_id": h.parent_id.hex(), "proposer": h.proposer, "payload_hash": h.payload_hash.hex(),
                  "qc": {"epoch": h.qc.epoch, "round": h.qc.round, "block_id": h.qc.block_id.hex(),
                         "state_root": h.qc.state_root.hex(), "signers": h.qc.signers.hex(),
                         "signature": h.qc.signature.hex()}}
        time_s = self._app.genesis.genesis_time if committed is None else committed.time_ms // 1000
        tx_ids = () if committed is None else tuple(r.tx_id for r in committed.receipts)
        return BlockView(height, block.id, time_s, root, tx_ids, header, store.get_extra(cert_key(height)))

    def certificate(self, height: int) -> CommitCertificate | None:
        return self._app.certificate(height)

    def validators(self) -> tuple[int, tuple[ValidatorView, ...]]:
        vs = self._app.epochs.validator_set
        return vs.epoch, tuple(ValidatorView(i, v.id.decode(), v.public_key, v.power)
                               for i, v in enumerate(vs.validators))

    def peers(self) -> tuple[PeerView, ...]:
        transport = self._transport
        connected = transport.connected_peers() if transport is not None else frozenset()
        out = []
        for peer in self._driver.members.peers.peers:
            if peer.node_id == self._driver.node_id:
                continue
            address = "" if peer.address is None else f"{peer.address[0]}:{peer.address[1]}"
            seen = self._driver.reports.heights.get(peer.node_id)
            out.append(PeerView(peer.node_id, address, peer.node_id in connected, None if seen is None else seen[0]))
        return tuple(out)

    def status(self) -> dict[str, Any]:
        driver, app, transport = self._driver, self._app, self._transport
        head, replica = app.head, driver.replica
        return {
            "node_id": driver.node_id,
            "chain_id": app.chain_id,
            "genesis_hash": app.genesis.hash.hex(),
            "mode": driver.mode,
            "height": head.height,
            # The lowest height whose block this node keeps (0: every one; above 0 it prunes or joined by state sync).
            "kept_from": app.store.base_height(),
            "block_id": head.block_id.hex(),
            "state_root": head.state_root.hex(),
            "round": None if replica is None else replica.current_round,
            "epoch": app.epochs.epoch,
            "role": driver.role,
            "safety_lost": replica is not None and replica.safety_lost,
            "mempool": len(app.mempool),
            "peers_connected": 0 if transport is None else len(transport.connected_peers()),
            "best_peer_height": driver.best_peer_height(),
            "committed_tps": round(self._metrics.committed_tps(), 1),
            "evidence": driver.counters["evidence"],
            "committed_txs": driver.counters["committed_txs"],
            "sync_blocks_per_s": round(driver.sync.last_rate, 1),
            "fatal": driver.fatal_report,
        }

    def add_commit_listener(self, listener: Callable[[CommitNotice], None]) -> Callable[[], None]:
        def on_commit(block: execution.CommittedBlock) -> None:
            listener(CommitNotice(block.height, block.block_id, block.time_ms // 1000, block.state_root,
                                    block.receipts, block.block_events))

        return self._app.add_commit_listener(on_commit)

    def statement(self, account_id: str, height: int) -> Mapping[str, Any]:
        return self._app.statement(account_id, height)

    def metrics_text(self) -> str:
        """Prometheus text exposition (node.validator.metrics)."""
        self.refresh_gauges()
        return self._metrics.render()

    def refresh_gauges(self) -> None:
        metrics = self._metrics
        transport = self._transport
        metrics.set_mempool(self._app.mempool.stats())
        if self._sig_verifier is not None:
            metrics.set_sigverify(self._sig_verifier.stats)
        metrics.set_peers(0 if transport is None else len(transport.connected_peers()))
        limits = self._app.mempool.limits
        metrics.set_limits(limits.max_txs, limits.max_bytes)
        vs = self._app.epochs.validator_set
        metrics.set_quorum(len(vs.validators), quorum_peers(vs, self._driver.node_id))
        replica = self._driver.replica
        if replica is not None:
            for name, value in replica.counters.items():
                if name.startswith("dropped_"):
                    seen = self._replica_dropped[name]
                    for _ in range(min(value - seen, 10_000)):
                        metrics.rejected_message(name.removeprefix("dropped_"))
                    self._replica_dropped[name] = value


def quorum_peers(vs: ValidatorSet, node_id: str) -> int:
    """The fewest other validators that, connected to this node, can make a quorum with it: its own power plus the
    largest peers' powers reach `quorum_power` (a node outside the set needs a quorum of peers)."""
    own = sum(v.power for v in vs.validators if v.id.decode() == node_id)
    need, count = vs.quorum_power - own, 0
    for power in sorted((v.power for v in vs.validators if v.id.decode() != node_id), reverse=True):
        if need <= 0:
            break
        need -= power
        count += 1
    return count
