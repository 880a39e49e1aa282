"""Joining by state sync: before the node starts, an empty data directory is filled from a certified snapshot that
peers serve (the decisions: node/chain/state_sync.py; the snapshots: node/chain/snapshots.py). Afterwards the node
starts as usual, at the snapshot height, and block sync fetches the rest.

    height = await join_by_state_sync(genesis, keys, data_dir, listen=..., peer_addresses=..., peer_keys=...)

The peers asked are those of the genesis epoch and the configured ones (`[p2p.peers]`, with "key@host:port" for
peers added after genesis): the same peer set a node starting from genesis dials. Nothing is done when the store
already holds a chain; an install a crash interrupted starts over. When no peer offers a snapshot within
DISCOVERY_S, the node starts from genesis and replays every block (returns None).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Final

from consensus.bls import BlsBackend
from consensus.certificates import SignatureVerifier
from ledger.protocol import PROTOCOL_VERSION
from ledger.state import decode_value
from ledger.state_keys import EPOCH_KEY
from ledger.store import LedgerStore
from node.chain.genesis import Genesis, GenesisError, genesis_state, load_genesis, parse_address
from node.chain.protocol import bls_backend as node_bls_backend
from node.chain.protocol import node_protocol
from node.chain.state_sync import StateSync, StateSyncAnchor
from node.errors import NodeError
from node.net.messages import MessageRefused
from node.net.peers import epoch_peer_set
from node.net.snapshot_messages import (
    CH_SNAPSHOTS,
    Chunk,
    ListSnapshots,
    SnapshotHead,
    Snapshots,
    decode_snapshot_message,
    encode_snapshot_message,
)
from node.net.transport import Transport, TransportConfig
from node.validator.config import ConfigError, NodeConfig
from node.validator.keyfile import NodeKeys, load_keys

__all__ = ["DISCOVERY_S", "JOIN_TIMEOUT_S", "join_by_state_sync", "join_from_config"]

log = logging.getLogger("node.validator.joining")

# How long to collect offers before choosing a snapshot (all connected peers answering ends it sooner), and how
# long to wait for any offer at all before falling back to block sync from genesis.
OFFERS_WAIT_S: Final = 3.0
DISCOVERY_S: Final = 30.0
# A join that has not finished after this long stops the node (exit code 1): the operator looks at the log.
JOIN_TIMEOUT_S: Final = 3600.0
ASK_OFFERS_EVERY_S: Final = 1.0


async def join_from_config(config: NodeConfig, passphrase: bytes | None = None) -> int | None:
    """`ledger node run --state-sync` (or `[sync] state_sync = true`): join with the config's genesis, keys, peers."""
    keys = load_keys(config.keys_file, passphrase)
    if keys.node_id != config.node_id:
        raise ConfigError(
            "config_key_mismatch", f"the key file is for {keys.node_id!r}, the config for {config.node_id!r}"
        )
    return await join_by_state_sync(
        load_genesis(config.genesis_file),
        keys,
        config.data_dir,
        listen=config.p2p_listen,
        peer_addresses=config.peer_addresses,
        peer_keys=config.peer_keys,
        bls_backend=node_bls_backend(config.bls_backend),
        fault_injection=config.fault_injection,
    )


async def join_by_state_sync(
    genesis: Genesis,
    keys: NodeKeys,
    data_dir: str,
    *,
    listen: tuple[str, int],
    peer_addresses: Mapping[str, tuple[str, int]],
    peer_keys: Mapping[str, bytes],
    bls_backend: BlsBackend,
    fault_injection: bool = False,
    discovery_s: float = DISCOVERY_S,
) -> int | None:
    """Install a verified snapshot into the empty store of `data_dir`; its height, or None (nothing done)."""
    path = os.path.join(data_dir, "ledger")
    os.makedirs(data_dir, exist_ok=True)
    store = LedgerStore.open(path, allow_unfinished_install=True)
    try:
        if store.head() is not None:
            log.info(
                "state_sync_skipped node=%s height=%d: the store already holds the chain",
                keys.node_id,
                store.head().height,
            )  # type: ignore[union-attr]
            return None
        return await _join(
            genesis, keys, store, listen, peer_addresses, peer_keys, bls_backend, fault_injection, discovery_s
        )
    finally:
        store.close()


async def _join(
    genesis: Genesis,
    keys: NodeKeys,
    store: LedgerStore,
    listen: tuple[str, int],
    peer_addresses: Mapping[str, tuple[str, int]],
    peer_keys: Mapping[str, bytes],
    bls_backend: BlsBackend,
    fault_injection: bool,
    discovery_s: float,
) -> int | None:
    state = genesis_state(genesis, node_protocol())
    record = decode_value(EPOCH_KEY, state.changes[EPOCH_KEY])

    def address_of(node_id: str, address: str) -> tuple[str, int] | None:
        if node_id in peer_addresses:
            return peer_addresses[node_id]
        try:
            return parse_address(address) if address else None
        except GenesisError:
            return None

    peers = epoch_peer_set(
        record, None, None, own_id=keys.node_id, configured=peer_keys, prospective={}, address_of=address_of
    )
    expected = sum(1 for p in peers.peers if p.node_id != keys.node_id and p.address is not None)
    anchor = StateSyncAnchor(
        genesis.hash,
        genesis.validator_set(bls_backend),
        genesis.consensus_chain_id,
        state.state_root,
        SignatureVerifier(bls_backend),
    )
    sync = StateSync(anchor, store)
    transport = Transport(
        keys.identity(),
        genesis.chain_id,
        peers,
        TransportConfig(listen_host=listen[0], listen_port=listen[1], fault_injection=fault_injection),
        protocol_version=PROTOCOL_VERSION,
        genesis_hash=genesis.hash,
    )
    await transport.start()
    started = time.monotonic()
    log.info("state_sync_started node=%s peers=%s", keys.node_id, ",".join(sorted(peers.ids())))
    try:
        asked_at = 0.0
        asked: set[str] = set()
        while not sync.done:
            now = time.monotonic()
            now_ms = int(now * 1000)
            if sync.snapshot is None:
                if sync.best_height() is None and now - started > discovery_s:
                    log.warning(
                        "state_sync_no_snapshot node=%s: no peer offered a snapshot in %.0f s; replaying "
                        "the chain from genesis",
                        keys.node_id,
                        discovery_s,
                    )
                    return None
                if now - asked_at >= ASK_OFFERS_EVERY_S:
                    asked_at = now
                    transport.broadcast(encode_snapshot_message(ListSnapshots(0)))
            # A peer that just connected is asked at once, also after the choice: it may serve the chosen snapshot.
            for peer in transport.connected_peers() - asked:
                asked.add(peer)
                transport.send(peer, encode_snapshot_message(ListSnapshots(0)))
            if now - started > JOIN_TIMEOUT_S:
                raise NodeError("state_sync_timeout", f"state sync did not finish in {JOIN_TIMEOUT_S:.0f} s")
            connected = sorted(transport.connected_peers())
            sync.expire(now_ms)
            # Choose once every peer we can dial has answered, or after OFFERS_WAIT_S with whoever did: the more
            # peers offer the chosen snapshot, the more serve its chunks.
            choosing = sync.snapshot is None and now - started < OFFERS_WAIT_S and len(sync.offers) < expected
            if not choosing:
                for peer, request in sync.next_requests(connected, now_ms):
                    if transport.send(peer, encode_snapshot_message(request)) != "queued":
                        sync.refuse(peer, "snapshot_unreachable", "the request could not be sent", now_ms)
            try:
                peer, data = await asyncio.wait_for(transport.receive(), 0.2)
            except TimeoutError:
                continue
            if not data or data[0] != CH_SNAPSHOTS:
                continue  # consensus, status and gossip of the chain being joined: not for us yet
            try:
                msg = decode_snapshot_message(data[1:])
            except MessageRefused:
                sync.refuse(peer, "malformed", "a malformed snapshot message", int(time.monotonic() * 1000))
                continue
            now_ms = int(time.monotonic() * 1000)
            if isinstance(msg, Snapshots):
                sync.on_offers(peer, msg.offers)
            elif isinstance(msg, SnapshotHead):
                await asyncio.to_thread(sync.on_head, peer, msg, now_ms)
            elif isinstance(msg, Chunk):
                await asyncio.to_thread(sync.on_chunk, peer, msg, now_ms)
        height = await asyncio.to_thread(sync.finish)
        log.info(
            "state_sync_done node=%s height=%d keys=%d seconds=%.1f refusals=%s",
            keys.node_id,
            height,
            sync.keys,
            time.monotonic() - started,
            sync.refusals or "-",
        )
        return height
    finally:
        await transport.close()
