"""Authenticated, encrypted peer transport between consortium nodes: TCP on asyncio.

The transport is payload-agnostic. The node runtime calls `send(peer_id, payload)` / `broadcast(payload)` with bytes
(msgpack-encoded messages) and reads `(peer_id, payload)` pairs from `receive()`. Underneath:

- every connection starts with the station-to-station handshake of node/net/handshake.py; only identities in the peer set
  that run the same chain id, genesis (hash) and ledger protocol version are admitted, everything else is closed,
  counted and logged with a reason code;
- frames are encrypted and ordered as node/net/framing.py describes, with a payload limit checked before a body is read;
- one bounded send queue per peer (when full the oldest frame is dropped and counted: consensus re-sends on timeouts,
  and the newest messages are the live ones), one bounded receive queue (when full, readers stop reading, so TCP flow
  control pushes back on the senders, whose queues then drop their oldest frames);
- both sides dial every peer that has an address, with exponential backoff and jitter; when both connections succeed,
  the one dialled by the lower node id is kept (a re-dial by the same side replaces the older connection);
- keepalive pings and an idle timeout find dead connections; close() flushes queued frames and says goodbye;
- fault injection (block/unblock/set_delay) works only when the config enables it and the chain id starts with
  `testnet-`; a production chain refuses it.

This module dials, accepts, authenticates and keeps at most one link per peer. The rest lives beside it:
node/net/link.py (one connection: its send queue and I/O loops), node/net/faults.py (fault injection),
node/net/transport_config.py (the config, counters and error). docs/transport.md describes the bytes on the wire and
the fault commands; docs/limits.md the limits.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable

from node.net.faults import FaultInjector
from node.net.framing import KIND_CLOSE, KIND_DATA, KIND_PING, LENGTH_BYTES, FrameError, FrameSealer, body_length
from node.net.handshake import (
    AUDIENCE_ALL,
    AUDIENCE_FULL,
    AUDIENCE_PEERS,
    AUDIENCES,
    HELLO_BYTES,
    MAX_AUTH_PAYLOAD_BYTES,
    MAX_VERDICT_PAYLOAD_BYTES,
    Handshake,
    HandshakeError,
    Identity,
    PeerSet,
    Session,
    valid_chain_id,
    valid_genesis_hash,
    valid_protocol_version,
)
from node.net.link import MAX_CLOSE_REASON_BYTES, READ_BUFFER_BYTES, Link, LinkIO, PeerState, remote_address
from node.net.transport_config import LinkInfo, SendOutcome, TransportConfig, TransportCounters, TransportError

__all__ = ["AUDIENCES", "AUDIENCE_ALL", "AUDIENCE_FULL", "AUDIENCE_PEERS", "LinkInfo", "SendOutcome", "Transport", "TransportConfig", "TransportCounters", "TransportError"]

log = logging.getLogger("node.net.transport")

# A link that lived at least this long counts as healthy: the next dial after it drops starts without backoff.
STABLE_LINK_S = 1.0


class Transport:
    """The peer transport of one node. Create, `await start()`, use, `await close()`; all on one event loop."""

    def __init__(
        self,
        identity: Identity,
        chain_id: str,
        peer_set: PeerSet,
        config: TransportConfig | None = None,
        on_link_up: Callable[[str], None] | None = None,
        *,
        protocol_version: int,
        genesis_hash: bytes,
    ) -> None:
        """`on_link_up(peer_id)`: called on the event loop each time a link to a peer comes up (after both sides
        accepted the handshake), e.g. to greet the peer at once instead of at its next periodic message.
        Every handshake binds what the node runs, and a peer that signed something else is refused:
        `chain_id` (the genesis chain_id string; `wrong_chain`), `genesis_hash` (the 32-byte hash of the genesis the
        node runs, Genesis.hash; `wrong_genesis`), `protocol_version` (the ledger protocol this node executes,
        ledger.protocol.PROTOCOL_VERSION on a node; `wrong_protocol`)."""
        if not valid_chain_id(chain_id):
            raise TransportError("bad_config", f"bad chain id {chain_id!r}: 1 .. 64 bytes of UTF-8")
        if not valid_genesis_hash(genesis_hash):
            raise TransportError("bad_config", f"bad genesis hash {genesis_hash!r}: 32 bytes")
        if not valid_protocol_version(protocol_version):
            raise TransportError("bad_config", f"bad ledger protocol version {protocol_version!r}")
        self._on_link_up = on_link_up
        self._identity = identity
        self._chain_id = chain_id
        self._genesis_hash = genesis_hash
        self._protocol_version = protocol_version
        self._config = config if config is not None else TransportConfig()
        self.counters = TransportCounters()
        self._faults = FaultInjector(self._config, chain_id, self.counters, self._log)
        self._peer_set = peer_set
        self._check_self_entry(peer_set)
        self._peers: dict[str, PeerState] = {
            peer.node_id: PeerState(peer) for peer in peer_set.peers if peer.node_id != identity.node_id
        }
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=self._config.receive_queue_frames)
        self._io = LinkIO(self._config, self.counters, self._inbox, self._faults, self._drop_link, self._log)
        self._server: asyncio.Server | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._inbound_tasks: set[asyncio.Task[object]] = set()
        self._inbound_handshakes = 0
        self._started = False
        self._closing = False
        self._rng = random.Random(self._config.jitter_seed)

    # ----------------------------------------------------------------------------------------------- lifecycle

    @property
    def node_id(self) -> str:
        return self._identity.node_id

    @property
    def listen_address(self) -> tuple[str, int]:
        """The bound (host, port); with listen_port 0 the kernel picked the port."""
        assert self._server is not None and self._server.sockets, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Listen for peers and start dialling every peer with an address."""
        assert not self._started, "start() called twice"
        self._started = True
        cfg = self._config
        self._server = await asyncio.start_server(
            self._accept, cfg.listen_host, cfg.listen_port, limit=READ_BUFFER_BYTES
        )
        for state in self._peers.values():
            self._start_dialling(state)
        self._keepalive_task = asyncio.create_task(self._keepalive())
        self._log(logging.INFO, "transport_started", address="{}:{}".format(*self.listen_address))

    async def close(self) -> None:
        """Stop accepting and dialling, flush queued frames (bounded by close_flush_s), say goodbye, close."""
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        background: list[asyncio.Task[object]] = [*self._inbound_tasks]
        if self._keepalive_task is not None:
            background.append(self._keepalive_task)
        for state in self._peers.values():
            if state.dial_task is not None:
                background.append(state.dial_task)
        for task in background:
            task.cancel()
        links = [state.link for state in self._peers.values() if state.link is not None]
        writers = []
        for link in links:
            link.draining = True
            self._peers[link.peer_id].queue.event.set()
            if link.writer_task is not None:
                writers.append(link.writer_task)
        if writers:
            await asyncio.wait(writers, timeout=self._config.close_flush_s)
        for link in links:
            self._drop_link(link, "shutdown", notify=True)
        for link in links:
            background.extend(task for task in (link.reader_task, link.writer_task, link.deliver_task) if task)
        if background:
            await asyncio.gather(*background, return_exceptions=True)
        for link in links:
            try:
                await asyncio.wait_for(link.writer.wait_closed(), self._config.close_flush_s)
            except (OSError, TimeoutError):
                pass
        if self._server is not None:
            await self._server.wait_closed()
        self._log(logging.INFO, "transport_closed")

    @property
    def identity_key(self) -> bytes:
        """This node's current Ed25519 identity public key."""
        return self._identity.public_key

    def update_peer_set(self, peer_set: PeerSet, identity: Identity | None = None) -> None:
        """Adopt a new peer set (membership change): removed or re-keyed peers are disconnected, new ones dialled.
        With `identity` (same node id, another key: a rotated transport key) this node authenticates with the new
        key from now on: every link, authenticated with the old one, is closed and dialled again."""
        if identity is not None and identity.public_key != self._identity.public_key:
            if identity.node_id != self.node_id:
                raise TransportError("bad_config", "a new identity must keep the node id")
            self._check_self_entry(peer_set, identity)
            self._identity = identity
            for state in self._peers.values():
                if state.link is not None:
                    self._drop_link(state.link, "identity_rotated", notify=True, keep_queue=True)
            self._log(logging.INFO, "identity_rotated", key=identity.public_key.hex()[:16])
        self._check_self_entry(peer_set)
        self._peer_set = peer_set
        for peer_id, state in list(self._peers.items()):
            new = peer_set.get(peer_id)
            link = state.link
            if new is None or (new.identity_keys() != state.peer.identity_keys()
                               and (new.public_key != state.peer.public_key
                                    if link is None else not new.accepts(link.key))):
                self._remove_peer(state)
                continue
            moved = new.address != state.peer.address
            state.peer = new
            if moved:
                if state.dial_task is not None:
                    state.dial_task.cancel()
                    state.dial_task = None
                if self._started and not self._closing:
                    self._start_dialling(state)
        for peer in peer_set.peers:
            if peer.node_id != self.node_id and peer.node_id not in self._peers:
                state = PeerState(peer)
                self._peers[peer.node_id] = state
                if self._started and not self._closing:
                    self._start_dialling(state)

    # ----------------------------------------------------------------------------------------------- messages

    def send(self, peer_id: str, payload: bytes) -> SendOutcome:
        """Queue `payload` for `peer_id`. Never blocks; anything not queued is counted in `counters.drops`."""
        if self._closing:
            return SendOutcome.CLOSED
        if len(payload) > self._config.max_payload_bytes:
            self.counters.drops["too_large"] += 1
            return SendOutcome.TOO_LARGE
        state = self._peers.get(peer_id)
        if state is None:
            self.counters.drops["unknown_peer"] += 1
            return SendOutcome.UNKNOWN_PEER
        if state.link is None:
            self.counters.drops["not_connected"] += 1
            return SendOutcome.NOT_CONNECTED
        if peer_id in self._faults.blocked:
            self.counters.faults["blocked_send"] += 1
            return SendOutcome.BLOCKED
        self._io.enqueue(state, KIND_DATA, payload)
        return SendOutcome.QUEUED

    def broadcast(self, payload: bytes, audience: str = AUDIENCE_PEERS) -> int:
        """Queue `payload` for every peer of `audience` (AUDIENCE_PEERS: every peer but full nodes; AUDIENCE_FULL:
        full nodes only; AUDIENCE_ALL); returns how many queued it."""
        assert audience in AUDIENCES, audience
        queued = 0
        for peer_id, state in self._peers.items():
            if audience != AUDIENCE_ALL and state.peer.full != (audience == AUDIENCE_FULL):
                continue
            if self.send(peer_id, payload) is SendOutcome.QUEUED:
                queued += 1
        return queued

    async def receive(self) -> tuple[str, bytes]:
        """The next (peer_id, payload) received, in order per peer."""
        return await self._inbox.get()

    def connected_peers(self) -> frozenset[str]:
        return frozenset(peer_id for peer_id, state in self._peers.items() if state.link is not None)

    def links(self) -> dict[str, LinkInfo]:
        return {
            peer_id: LinkInfo(peer_id, state.link.dialer, state.link.outbound, state.link.remote)
            for peer_id, state in self._peers.items()
            if state.link is not None
        }

    def stats(self) -> dict[str, object]:
        """A plain snapshot of the counters and queue depths, for the metrics module."""
        c = self.counters
        return {
            "peers_known": len(self._peers),
            "peers_connected": sum(1 for state in self._peers.values() if state.link is not None),
            "frames_in": c.frames_in,
            "frames_out": c.frames_out,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "messages_in": c.messages_in,
            "messages_out": c.messages_out,
            "connects": c.connects,
            "dial_failures": c.dial_failures,
            "send_queue_frames": sum(len(state.queue.items) for state in self._peers.values()),
            "receive_queue_frames": self._inbox.qsize(),
            "drops": dict(c.drops),
            "handshake_failures": dict(c.handshake_failures),
            "disconnects": dict(c.disconnects),
            "faults": dict(c.faults),
        }

    # ----------------------------------------------------------------------------------------------- faults

    def block(self, peer_ids: Iterable[str]) -> None:
        """Testnet only: drop data frames to and from these peers (a partition as this node sees it)."""
        self._faults.block(peer_ids)

    def unblock(self, peer_ids: Iterable[str] | None = None) -> None:
        """Testnet only: stop dropping frames for these peers (None: heal all)."""
        self._faults.unblock(peer_ids)

    def set_delay(self, peer_id: str | None, ms: int) -> None:
        """Testnet only: hold frames to and from `peer_id` (None: every peer) for `ms` milliseconds each way.
        A per-peer delay overrides the all-peers one; 0 removes it."""
        self._faults.set_delay(peer_id, ms)

    def fault_state(self) -> dict[str, object]:
        return self._faults.state()

    # ----------------------------------------------------------------------------------------------- connections

    def _check_self_entry(self, peer_set: PeerSet, identity: Identity | None = None) -> None:
        """A peer set may omit this node (a node not, or not yet, in the validator set connects as itself), but one
        that lists it must list its own key."""
        identity = identity or self._identity
        own = peer_set.get(self.node_id)
        if own is not None and not own.accepts(identity.public_key):
            raise TransportError("bad_config", f"peer set lists {self.node_id!r} with a key that is not ours")

    def _start_dialling(self, state: PeerState) -> None:
        if state.peer.address is not None and state.dial_task is None:
            state.dial_task = asyncio.create_task(self._dial_loop(state))

    def _remove_peer(self, state: PeerState) -> None:
        peer_id = state.peer.node_id
        if state.dial_task is not None:
            state.dial_task.cancel()
            state.dial_task = None
        if state.link is not None:
            self._drop_link(state.link, "removed_from_peer_set", notify=True)
        self.counters.drops["disconnected"] += state.queue.clear()
        del self._peers[peer_id]
        self._faults.forget(peer_id)

    def _backoff(self, attempt: int) -> float:
        cfg = self._config
        ceiling = min(cfg.reconnect_max_s, cfg.reconnect_base_s * 2 ** min(attempt, 30))
        return ceiling / 2 + self._rng.random() * ceiling / 2

    async def _dial_loop(self, state: PeerState) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            await state.down.wait()
            if attempt:
                await asyncio.sleep(self._backoff(attempt))
            if state.link is not None or self._closing:
                continue
            address = state.peer.address
            assert address is not None
            try:
                async with asyncio.timeout(self._config.handshake_timeout_s):
                    reader, writer = await asyncio.open_connection(*address, limit=READ_BUFFER_BYTES)
            except (OSError, TimeoutError) as error:
                self.counters.dial_failures += 1
                self._log(logging.DEBUG, "dial_failed", peer=state.peer.node_id, error=type(error).__name__)
                attempt += 1
                continue
            session = await self._handshake(reader, writer, state.peer.node_id)
            if session is None or not self._register(session, reader, writer, outbound=True):
                attempt += 1
                continue
            linked_at = loop.time()
            await state.down.wait()
            attempt = 0 if loop.time() - linked_at >= STABLE_LINK_S else attempt + 1

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.close()
            return
        if self._inbound_handshakes >= self._config.max_inbound_handshakes:
            self._refused("too_many_handshakes", writer, None)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._inbound_tasks.add(task)
        self._inbound_handshakes += 1
        try:
            session = await self._handshake(reader, writer, None)
        except asyncio.CancelledError:
            # Only close() cancels these; the task ends quietly (asyncio logs a cancelled connection callback).
            return
        finally:
            self._inbound_handshakes -= 1
            self._inbound_tasks.discard(task)
        if session is not None:
            self._register(session, reader, writer, outbound=False)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, expected: str | None
    ) -> Session | None:
        handshake = Handshake(
            self._identity, self._chain_id, self._peer_set, expected, protocol_version=self._protocol_version,
            genesis_hash=self._genesis_hash,
        )
        try:
            async with asyncio.timeout(self._config.handshake_timeout_s):
                writer.write(handshake.hello())
                hello = await reader.readexactly(HELLO_BYTES)
                writer.write(handshake.receive_hello(hello))
                await writer.drain()
                prefix = await reader.readexactly(LENGTH_BYTES)
                body = await reader.readexactly(body_length(prefix, MAX_AUTH_PAYLOAD_BYTES))
                session = handshake.receive_auth(body)
                self._check_still_admitted(session)
                writer.write(handshake.accept())
                prefix = await reader.readexactly(LENGTH_BYTES)
                try:
                    length = body_length(prefix, MAX_VERDICT_PAYLOAD_BYTES)
                except FrameError as error:
                    raise HandshakeError(f"verdict_{error.code}", error.message) from None
                handshake.receive_verdict(await reader.readexactly(length))
                # The handshake checked the peer set of its start. If update_peer_set removed or re-keyed the peer
                # meanwhile (a revoked key), the identity is checked again against the current set: no await lies
                # between this check and _register, so what is admitted is what the current set allows.
                self._check_still_admitted(session)
                return session
        except HandshakeError as error:
            code, detail = error.code, error.message
            if code != "refused_by_peer":
                # Tell the peer why, so its operator reads the reason in its own log (refused_by_peer).
                refusal = handshake.refusal(code)
                if refusal is not None:
                    writer.write(refusal)
        except FrameError as error:
            code, detail = f"auth_{error.code}", error.message
        except TimeoutError:
            code, detail = "timeout", f"no complete handshake within {self._config.handshake_timeout_s}s"
        except asyncio.IncompleteReadError:
            code, detail = "eof", "connection closed during the handshake"
        except OSError as error:
            code, detail = "connection_lost", type(error).__name__
        except asyncio.CancelledError:
            writer.close()
            raise
        self._refused(code, writer, expected, detail)
        writer.close()
        return None

    def _check_still_admitted(self, session: Session) -> None:
        current = self._peer_set.get(session.peer.node_id)
        if current is None or not current.accepts(session.key):
            raise HandshakeError("peer_set_changed", f"{session.peer.node_id!r} left the peer set or got another key")

    def _refused(self, code: str, writer: asyncio.StreamWriter, expected: str | None, detail: str = "") -> None:
        self.counters.handshake_failures[code] += 1
        self._log(
            logging.WARNING, "peer_refused", reason=code, remote=remote_address(writer),
            dialled=expected or "-", detail=detail,
        )

    def _register(
        self,
        session: Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outbound: bool,
    ) -> bool:
        """Adopt an authenticated connection, applying the one-connection-per-pair rule. False: it was closed."""
        peer_id, sealer, opener = session.peer.node_id, session.sealer, session.opener
        state = self._peers.get(peer_id)
        loop = asyncio.get_running_loop()
        if self._closing or state is None:
            self._close_unregistered(writer, sealer, "not_in_peer_set" if state is None else "shutdown")
            return False
        dialer = self.node_id if outbound else peer_id
        existing = state.link
        if existing is not None:
            preferred = min(self.node_id, peer_id)
            if existing.dialer == dialer:
                self._drop_link(existing, "replaced", notify=True, keep_queue=True)
            elif existing.dialer == preferred:
                self._close_unregistered(writer, sealer, "duplicate")
                return False
            else:
                self._drop_link(existing, "duplicate", notify=True, keep_queue=True)
        link = Link(peer_id, dialer, outbound, reader, writer, sealer, opener, loop.time())
        link.key = session.key or state.peer.public_key
        state.link = link
        state.down.clear()
        link.reader_task = asyncio.create_task(self._io.read_loop(state, link))
        link.writer_task = asyncio.create_task(self._io.write_loop(state, link))
        self.counters.connects += 1
        self._log(logging.INFO, "peer_connected", peer=peer_id, dialer=dialer, remote=link.remote)
        if self._on_link_up is not None:
            self._on_link_up(peer_id)
        return True

    def _close_unregistered(self, writer: asyncio.StreamWriter, sealer: FrameSealer, reason: str) -> None:
        self.counters.disconnects[reason] += 1
        writer.write(sealer.seal(KIND_CLOSE, reason.encode()))
        writer.close()

    def _drop_link(self, link: Link, reason: str, notify: bool, keep_queue: bool = False) -> None:
        """Close one connection (idempotent). Unless it is being replaced, its peer's queued frames are dropped."""
        if link.closed:
            return
        link.closed = True
        if notify and not link.writer.is_closing():
            link.writer.write(link.sealer.seal(KIND_CLOSE, reason.encode()[:MAX_CLOSE_REASON_BYTES]))
        current = asyncio.current_task()
        for task in (link.reader_task, link.writer_task, link.deliver_task):
            if task is not None and task is not current:
                task.cancel()
        link.writer.close()
        if link.delay_line:
            self.counters.drops["disconnected"] += len(link.delay_line)
            link.delay_line.clear()
        self.counters.disconnects[reason] += 1
        state = self._peers.get(link.peer_id)
        if state is not None and state.link is link:
            state.link = None
            if not keep_queue:
                self.counters.drops["disconnected"] += state.queue.clear()
            state.down.set()
        self._log(logging.INFO, "peer_disconnected", peer=link.peer_id, reason=reason)

    # ----------------------------------------------------------------------------------------------- keepalive

    async def _keepalive(self) -> None:
        cfg = self._config
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(cfg.ping_interval_s)
            now = loop.time()
            inbox_full = self._inbox.full()
            for state in list(self._peers.values()):
                link = state.link
                if link is None:
                    continue
                if not inbox_full and now - link.last_received > cfg.idle_timeout_s:
                    self._drop_link(link, "idle_timeout", notify=True)
                elif now - link.last_sent >= cfg.ping_interval_s:
                    self._io.enqueue(state, KIND_PING, b"")

    def _log(self, level: int, event: str, **fields: object) -> None:
        if log.isEnabledFor(level):
            fields = {"node": self.node_id, **fields}
            text = " ".join(f"{key}={value}" for key, value in fields.items())
            log.log(level, "%s %s", event, text, extra={"event": event, "fields": fields})
