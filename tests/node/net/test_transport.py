"""The peer transport on real sockets (127.0.0.1, ephemeral ports). Waits are bounded polls, never timing asserts."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
from collections.abc import Awaitable, Callable

import nacl.signing
import pytest

from ledger.protocol import PROTOCOL_VERSION
from node.net.framing import BODY_OVERHEAD, KIND_CLOSE, KIND_DATA, LENGTH_BYTES
from node.net.handshake import HELLO_BYTES, MAGIC, Handshake, HandshakeError, Identity, PeerSet
from node.net.transport import SendOutcome, Transport, TransportConfig, TransportError
from tests.node.client.wire import MitmProxy, WireProxy, raw_peer, read_frame

CHAIN = "test-chain"
VERSION = PROTOCOL_VERSION
# The hash of the genesis these transports run (any 32 bytes: the transport only compares them).
GENESIS = hashlib.sha256(b"test-chain genesis").digest()
TESTNET_CHAIN = "testnet-transport"
# Short timers so reconnects are quick; the keepalive stays out of the way of frame-counting tests.
FAST = TransportConfig(
    handshake_timeout_s=2.0,
    ping_interval_s=5.0,
    idle_timeout_s=20.0,
    reconnect_base_s=0.02,
    reconnect_max_s=0.2,
    jitter_seed=7,
)
TESTNET = dataclasses.replace(FAST, fault_injection=True)
WAIT_S = 10.0


def identity(name: str) -> Identity:
    return Identity(name, nacl.signing.SigningKey(hashlib.sha256(name.encode()).digest()))


def run_async(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(asyncio.wait_for(test(), 30))

    return wrapper


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {WAIT_S}s: {what}")
        await asyncio.sleep(0.01)


async def receive(transport: Transport) -> tuple[str, bytes]:
    return await asyncio.wait_for(transport.receive(), WAIT_S)


async def mesh(names: list[str], config: TransportConfig = FAST, chain: str = CHAIN) -> list[Transport]:
    """Start one transport per name, then give each the full peer set with addresses; wait for the full mesh."""
    identities = [identity(name) for name in names]
    bare = PeerSet.of(ident.as_peer() for ident in identities)
    transports = [Transport(ident, chain, bare, config, protocol_version=VERSION, genesis_hash=GENESIS)
                  for ident in identities]
    for transport in transports:
        await transport.start()
    full = PeerSet.of(ident.as_peer(t.listen_address) for ident, t in zip(identities, transports, strict=True))
    for transport in transports:
        transport.update_peer_set(full)
    await wait_until(lambda: all(len(t.connected_peers()) == len(names) - 1 for t in transports), "full mesh")
    return transports


async def close_all(*transports: Transport) -> None:
    for transport in transports:
        await transport.close()


async def proxied_pair(
    config: TransportConfig, make_proxy: Callable[[tuple[str, int]], WireProxy | MitmProxy]
) -> tuple[Transport, Transport, WireProxy | MitmProxy]:
    """`a` dials `b` through a proxy; `b` does not dial `a` (it has no address for it)."""
    ident_a, ident_b = identity("a"), identity("b")
    b = Transport(ident_b, CHAIN, PeerSet.of([ident_a.as_peer(), ident_b.as_peer()]), config, protocol_version=VERSION,
                  genesis_hash=GENESIS)
    await b.start()
    proxy = make_proxy(b.listen_address)
    proxy_address = await proxy.start()
    a = Transport(ident_a, CHAIN, PeerSet.of([ident_a.as_peer(), ident_b.as_peer(proxy_address)]), config,
                  protocol_version=VERSION, genesis_hash=GENESIS)
    await a.start()
    return a, b, proxy


@run_async
async def test_handshake_and_encrypted_round_trip() -> None:
    a, b, proxy = await proxied_pair(FAST, WireProxy)
    try:
        await wait_until(lambda: a.connected_peers() == {"b"} and b.connected_peers() == {"a"}, "a-b link")
        secret = b"settle 100 BOND-A to holder H " * 4
        assert a.send("b", secret) is SendOutcome.QUEUED
        assert await receive(b) == ("a", secret)
        assert b.send("a", secret[::-1]) is SendOutcome.QUEUED
        assert await receive(a) == ("b", secret[::-1])
        wire = bytes(proxy.captured["up"]) + bytes(proxy.captured["down"])
        assert b"settle 100" not in wire and secret[::-1][:20] not in wire
        stats = a.stats()
        assert stats["peers_connected"] == 1 and stats["messages_out"] == 1 and stats["messages_in"] == 1
        assert a.links()["b"].outbound and not b.links()["a"].outbound
    finally:
        await close_all(a, b)
        await proxy.close()


@run_async
async def test_unknown_identity_and_garbage_are_refused_without_disturbing_the_node() -> None:
    a, b = await mesh(["a", "b"])
    mallory_id = identity("mallory")
    # Mallory knows a's address and key, but a's peer set does not list mallory.
    mallory = Transport(mallory_id, CHAIN, PeerSet.of([mallory_id.as_peer(), identity("a").as_peer(a.listen_address)]),
                        protocol_version=VERSION, genesis_hash=GENESIS)
    await mallory.start()
    try:
        await wait_until(lambda: a.counters.handshake_failures["unknown_peer"] >= 1, "a refuses mallory")
        reader, writer = await asyncio.open_connection(*a.listen_address)
        writer.write(b"GET / HTTP/1.1\r\nHost: node\r\n\r\n" + bytes(64))
        assert (await asyncio.wait_for(reader.read(), WAIT_S)).startswith(MAGIC), "a's hello, then a closes"
        await wait_until(lambda: a.counters.handshake_failures["bad_magic"] >= 1, "a refuses garbage")
        writer.close()
        assert a.connected_peers() == {"b"}
        assert a.send("b", b"still here") is SendOutcome.QUEUED
        assert await receive(b) == ("a", b"still here")
    finally:
        await close_all(mallory, a, b)


@run_async
async def test_a_dialer_the_other_side_refuses_never_counts_the_link_as_up() -> None:
    """Regression: the handshake is symmetric, so a node whose key its peer does not admit found the peer's auth
    valid, registered the link, and counted a connection for the moment before the peer hung up. A full node that
    was not admitted took client transactions in that moment, for a validator it could not reach. Now the link is
    up only once the peer's verdict frame accepts, and the refused side reads why (refused_by_peer)."""
    a, b = await mesh(["a", "b"])
    stale = Identity("c", nacl.signing.SigningKey(hashlib.sha256(b"c, not admitted").digest()))
    admitted_c = identity("c")
    a.update_peer_set(PeerSet.of([identity("a").as_peer(), identity("b").as_peer(b.listen_address),
                                  admitted_c.as_peer()]))
    links_up: list[str] = []
    c = Transport(stale, CHAIN, PeerSet.of([stale.as_peer(), identity("a").as_peer(a.listen_address)]), FAST,
                  on_link_up=links_up.append, protocol_version=VERSION, genesis_hash=GENESIS)
    await c.start()
    try:
        await wait_until(lambda: c.counters.handshake_failures["refused_by_peer"] >= 3, "c re-dials, refused each time")
        assert a.counters.handshake_failures["unknown_key"] >= 3
        assert c.counters.connects == 0 and c.connected_peers() == frozenset() and links_up == []
        assert c.stats()["peers_connected"] == 0
        assert a.connected_peers() == {"b"}
    finally:
        await close_all(c, a, b)


@run_async
async def test_nodes_of_different_ledger_protocol_versions_never_link() -> None:
    """a runs the current ledger protocol, b the one before, same chain and genesis: every handshake is refused on
    both sides with wrong_protocol (each reads the other's signed version in its auth frame), before any verdict."""
    await never_link(CHAIN, GENESIS, "wrong_protocol", version_b=VERSION - 1)


async def never_link(chain_b: str, genesis_b: bytes, code: str, version_b: int = VERSION) -> None:
    """a runs CHAIN, GENESIS and ledger protocol VERSION, b `chain_b`, `genesis_b` and `version_b`, each in the other's
    peer set with an address: both dial, every handshake is refused on both sides with `code` (each reads the other's
    signed values in its auth frame), no link comes up and nothing is delivered. c, on a's chain, genesis and
    version, links with a."""
    ident_a, ident_b, ident_c = identity("a"), identity("b"), identity("c")
    heard: dict[str, list[str]] = {"a": [], "b": []}
    bare = PeerSet.of([ident_a.as_peer(), ident_b.as_peer(), ident_c.as_peer()])
    a = Transport(ident_a, CHAIN, bare, FAST, on_link_up=heard["a"].append, protocol_version=VERSION,
                  genesis_hash=GENESIS)
    b = Transport(ident_b, chain_b, bare, FAST, on_link_up=heard["b"].append, protocol_version=version_b,
                  genesis_hash=genesis_b)
    await a.start()
    await b.start()
    c: Transport | None = None
    try:
        linked = PeerSet.of([ident_a.as_peer(a.listen_address), ident_b.as_peer(b.listen_address), ident_c.as_peer()])
        a.update_peer_set(linked)
        b.update_peer_set(linked)
        await wait_until(lambda: a.counters.handshake_failures[code] >= 3
                         and b.counters.handshake_failures[code] >= 3, "both refuse, re-dial, refuse")
        for side in (a, b):
            assert side.counters.connects == 0 and side.connected_peers() == frozenset()
            assert set(side.counters.handshake_failures) == {code}  # each refuses before any verdict
        assert heard == {"a": [], "b": []}
        assert a.send("b", b"block") is SendOutcome.NOT_CONNECTED and b.send("a", b"vote") is SendOutcome.NOT_CONNECTED
        assert all(side.stats()["messages_in"] == side.stats()["receive_queue_frames"] == 0 for side in (a, b))
        c = Transport(ident_c, CHAIN, linked, FAST, protocol_version=VERSION, genesis_hash=GENESIS)
        await c.start()
        await wait_until(lambda: a.connected_peers() == {"c"} and c.connected_peers() == {"a"}, "a's equal links")
        assert heard["a"] == ["c"] and b.connected_peers() == frozenset()
        assert c.send("a", b"block") is SendOutcome.QUEUED and await receive(a) == ("c", b"block")
    finally:
        await close_all(*(t for t in (c, a, b) if t is not None))


@run_async
async def test_nodes_of_different_genesis_under_one_chain_id_never_link() -> None:
    """A re-created network: same chain id, another genesis file, nodes that kept their keys. Refused with
    wrong_genesis on both sides during the handshake, not only later by STATUS (genesis_mismatch)."""
    await never_link(CHAIN, hashlib.sha256(b"test-chain genesis, re-created").digest(), "wrong_genesis")


@run_async
async def test_nodes_of_different_chains_never_link() -> None:
    """The chain id is signed (not in the key derivation): both sides name the mismatch, wrong_chain."""
    await never_link("other-chain", hashlib.sha256(b"other-chain genesis").digest(), "wrong_chain")


@run_async
async def test_man_in_the_middle_is_refused() -> None:
    a, b, proxy = await proxied_pair(FAST, lambda target: MitmProxy(identity("m"), CHAIN, PeerSet.of(
        [identity("a").as_peer(), identity("b").as_peer()]), target, genesis_hash=GENESIS))
    try:
        await wait_until(lambda: a.counters.handshake_failures["bad_signature"] >= 1, "a refuses relayed auth")
        assert isinstance(proxy, MitmProxy) and proxy.relayed >= 1
        assert a.connected_peers() == frozenset()
    finally:
        await close_all(a, b)
        await proxy.close()


def tamper_first_data_frame(direction: str, connection: int, index: int, frame: bytes) -> list[bytes]:
    if direction == "up" and connection == 0 and index == 2:  # frames 0 and 1: auth and verdict
        return [frame[:-1] + bytes([frame[-1] ^ 0x01])]
    return [frame]


def replay_first_data_frame(direction: str, connection: int, index: int, frame: bytes) -> list[bytes]:
    if direction == "up" and connection == 0 and index == 2:
        return [frame, frame]
    return [frame]


@run_async
async def test_tampered_frame_closes_the_connection_and_is_never_delivered() -> None:
    a, b, proxy = await proxied_pair(FAST, lambda target: WireProxy(target, tamper_first_data_frame))
    try:
        await wait_until(lambda: a.connected_peers() == {"b"}, "first link")
        a.send("b", b"m1")
        await wait_until(lambda: b.counters.disconnects["decrypt_failed"] == 1, "b refuses the tampered frame")
        await wait_until(lambda: a.connected_peers() == {"b"} and b.connected_peers() == {"a"}, "re-dialled link")
        assert isinstance(proxy, WireProxy) and proxy.connections >= 2
        a.send("b", b"m2")
        assert await receive(b) == ("a", b"m2")
    finally:
        await close_all(a, b)
        await proxy.close()


@run_async
async def test_replayed_frame_is_rejected() -> None:
    a, b, proxy = await proxied_pair(FAST, lambda target: WireProxy(target, replay_first_data_frame))
    try:
        await wait_until(lambda: a.connected_peers() == {"b"}, "first link")
        a.send("b", b"m1")
        assert await receive(b) == ("a", b"m1")
        await wait_until(lambda: b.counters.disconnects["replayed_frame"] == 1, "b refuses the replay")
        await wait_until(lambda: a.connected_peers() == {"b"} and b.connected_peers() == {"a"}, "re-dialled link")
        a.send("b", b"m2")
        assert await receive(b) == ("a", b"m2")  # not a second m1
    finally:
        await close_all(a, b)
        await proxy.close()


@run_async
async def test_oversized_frame_is_refused_from_its_prefix() -> None:
    config = dataclasses.replace(FAST, max_payload_bytes=1000, send_queue_bytes=4000)
    ident_a, ident_c = identity("a"), identity("c")
    peers = PeerSet.of([ident_a.as_peer(), ident_c.as_peer()])
    a = Transport(ident_a, CHAIN, peers, config, protocol_version=VERSION, genesis_hash=GENESIS)
    await a.start()
    try:
        assert a.send("c", b"x" * 1001) is SendOutcome.TOO_LARGE
        reader, writer, session = await raw_peer(ident_c, CHAIN, peers, a.listen_address, genesis_hash=GENESIS)
        await wait_until(lambda: a.connected_peers() == {"c"}, "raw peer admitted")
        # Announce a 2 GiB frame and send nothing else: a must refuse it without waiting for (or allocating) it.
        writer.write((2**31).to_bytes(LENGTH_BYTES, "big"))
        goodbye = await asyncio.wait_for(read_frame(reader), WAIT_S)
        assert session.opener.open(goodbye[LENGTH_BYTES:]) == (KIND_CLOSE, b"frame_too_large")
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
        assert a.counters.disconnects["frame_too_large"] == 1
        writer.close()
        # The largest allowed payload still passes.
        reader, writer, session = await raw_peer(ident_c, CHAIN, peers, a.listen_address, genesis_hash=GENESIS)
        writer.write(session.sealer.seal(KIND_DATA, b"y" * 1000))
        assert await receive(a) == ("c", b"y" * 1000)
        assert len(session.sealer.seal(KIND_DATA, b"")) == LENGTH_BYTES + BODY_OVERHEAD
        writer.close()
    finally:
        await a.close()


@run_async
async def test_full_send_queue_drops_the_oldest_frames() -> None:
    config = dataclasses.replace(FAST, send_queue_frames=4, max_payload_bytes=1000, send_queue_bytes=2500)
    a, b = await mesh(["a", "b"], config)
    try:
        # send() never yields, so the writer cannot run during the burst: only the newest 4 fit.
        for n in range(10):
            assert a.send("b", b"m%d" % n) is SendOutcome.QUEUED
        assert a.counters.drops["send_queue_full"] == 6
        assert [(await receive(b))[1] for _ in range(4)] == [b"m6", b"m7", b"m8", b"m9"]
        # The byte bound: three 1000-byte payloads exceed 2500 bytes, so the oldest goes.
        for n in range(3):
            a.send("b", bytes([n]) * 1000)
        assert a.counters.drops["send_queue_full"] == 7
        assert [(await receive(b))[1][:1] for _ in range(2)] == [b"\x01", b"\x02"]
        assert a.stats()["send_queue_frames"] == 0
    finally:
        await close_all(a, b)


@run_async
async def test_reconnects_after_the_remote_restarts() -> None:
    a, b = await mesh(["a", "b"])
    port = b.listen_address[1]
    full = PeerSet.of([identity("a").as_peer(a.listen_address), identity("b").as_peer(b.listen_address)])
    await b.close()
    await wait_until(lambda: a.connected_peers() == frozenset(), "a notices b is gone")
    assert a.counters.disconnects["remote_closed"] == 1
    assert a.send("b", b"lost") is SendOutcome.NOT_CONNECTED
    b2 = Transport(identity("b"), CHAIN, full, dataclasses.replace(FAST, listen_port=port), protocol_version=VERSION,
                   genesis_hash=GENESIS)
    await b2.start()
    try:
        await wait_until(lambda: a.connected_peers() == {"b"} and b2.connected_peers() == {"a"}, "re-linked")
        a.send("b", b"welcome back")
        assert await receive(b2) == ("a", b"welcome back")
        b2.send("a", b"thanks")
        assert await receive(a) == ("b", b"thanks")
    finally:
        await close_all(a, b2)


@run_async
async def test_four_nodes_mesh_once_per_pair_and_broadcast_reaches_all() -> None:
    nodes = await mesh(["n1", "n2", "n3", "n4"])
    try:
        for node in nodes:
            for peer_id, link in node.links().items():
                other = next(n for n in nodes if n.node_id == peer_id)
                assert other.links()[node.node_id].dialer == link.dialer, "both ends keep the same connection"
        for node in nodes:
            assert node.broadcast(node.node_id.encode()) == 3
        for node in nodes:
            got = sorted([await receive(node) for _ in range(3)])
            assert got == sorted((n.node_id, n.node_id.encode()) for n in nodes if n is not node)
    finally:
        await close_all(*nodes)


@run_async
async def test_partition_heal_and_delay_on_a_testnet() -> None:
    a, b, c, d = nodes = await mesh(["a", "b", "c", "d"], TESTNET, TESTNET_CHAIN)
    try:
        for node, other_side in ((a, "cd"), (b, "cd"), (c, "ab"), (d, "ab")):
            node.block(other_side)
        assert a.send("c", b"p1") is SendOutcome.BLOCKED
        assert a.broadcast(b"p2") == 1
        assert await receive(b) == ("a", b"p2")
        assert a.counters.faults["blocked_send"] == 3
        for node in nodes:
            node.unblock()
        a.broadcast(b"p3")
        for node in (b, c, d):
            assert await receive(node) == ("a", b"p3")

        # Receive side: only d blocks a; what a sends meanwhile is dropped at d.
        d.block(["a"])
        a.send("d", b"q1")
        await wait_until(lambda: d.counters.faults["blocked_receive"] == 1, "d drops q1 on receipt")
        d.unblock(["a"])
        a.send("d", b"q2")
        assert await receive(d) == ("a", b"q2")

        # Slow link, send side then receive side: frames are held, then delivered in order.
        a.set_delay("b", 100)
        for n in range(3):
            a.send("b", b"s%d" % n)
        assert [(await receive(b))[1] for _ in range(3)] == [b"s0", b"s1", b"s2"]
        assert a.counters.faults["delayed_send"] >= 1
        a.set_delay("b", 0)
        c.set_delay(None, 2000)
        frames_before = c.counters.frames_in
        a.send("c", b"r0")
        a.send("c", b"r1")
        await wait_until(lambda: c.counters.frames_in >= frames_before + 2, "frames reach c")
        assert c.stats()["receive_queue_frames"] == 0, "held in the delay line, not yet delivered"
        assert [await receive(c) for _ in range(2)] == [("a", b"r0"), ("a", b"r1")]
        assert c.counters.faults["delayed_receive"] == 2
        assert c.fault_state()["delay_all_ms"] == 2000
    finally:
        await close_all(*nodes)


def test_fault_injection_is_refused_without_the_testnet_flag() -> None:
    transport = Transport(identity("a"), CHAIN, PeerSet.of([identity("a").as_peer(), identity("b").as_peer()]),
                          protocol_version=VERSION, genesis_hash=GENESIS)
    for call in (lambda: transport.block(["b"]), lambda: transport.unblock(), lambda: transport.set_delay(None, 5)):
        with pytest.raises(TransportError) as refused:
            call()
        assert refused.value.code == "fault_injection_disabled"
    assert transport.fault_state() == {"blocked": [], "delay_ms": {}, "delay_all_ms": 0}
    # The flag alone is not enough: a chain id without the testnet prefix refuses it outright.
    with pytest.raises(TransportError) as refused:
        Transport(identity("a"), "consortium-main", PeerSet.of([identity("a").as_peer()]), TESTNET,
                  protocol_version=VERSION, genesis_hash=GENESIS)
    assert refused.value.code == "fault_injection_not_testnet"


def test_bad_config_is_a_typed_error() -> None:
    with pytest.raises(TransportError) as refused:
        TransportConfig(max_payload_bytes=10, send_queue_bytes=5)
    assert refused.value.code == "bad_config"
    other_key = identity("mallory").as_peer()
    with pytest.raises(TransportError) as refused:
        Transport(identity("a"), CHAIN, PeerSet.of([dataclasses.replace(other_key, node_id="a")]),
                  protocol_version=VERSION, genesis_hash=GENESIS)
    assert refused.value.code == "bad_config"
    for genesis in (bytes(31), bytes(33), GENESIS.hex(), bytearray(GENESIS)):
        with pytest.raises(TransportError) as refused:
            Transport(identity("a"), CHAIN, PeerSet.of([identity("a").as_peer()]), protocol_version=VERSION,
                      genesis_hash=genesis)  # type: ignore[arg-type]
        assert refused.value.code == "bad_config"
    for chain in ("", "c" * 65):
        with pytest.raises(TransportError) as refused:
            Transport(identity("a"), chain, PeerSet.of([identity("a").as_peer()]), protocol_version=VERSION,
                      genesis_hash=GENESIS)
        assert refused.value.code == "bad_config"
    for version in (0, 2**32, True):
        with pytest.raises(TransportError) as refused:
            Transport(identity("a"), CHAIN, PeerSet.of([identity("a").as_peer()]), protocol_version=version,
                      genesis_hash=GENESIS)
        assert refused.value.code == "bad_config"


@run_async
async def test_graceful_close_flushes_queued_frames() -> None:
    a, b = await mesh(["a", "b"])
    try:
        for n in range(200):
            a.send("b", b"f%d" % n)
        await a.close()
        assert [(await receive(b))[1] for _ in range(200)] == [b"f%d" % n for n in range(200)]
        await wait_until(lambda: b.counters.disconnects["remote_closed"] == 1, "b hears the goodbye")
    finally:
        await close_all(a, b)


@run_async
async def test_idle_peer_is_dropped_and_removed_peer_is_refused() -> None:
    config = dataclasses.replace(FAST, ping_interval_s=0.1, idle_timeout_s=0.5)
    ident_a, ident_c = identity("a"), identity("c")
    peers = PeerSet.of([ident_a.as_peer(), ident_c.as_peer()])
    a = Transport(ident_a, CHAIN, peers, config, protocol_version=VERSION, genesis_hash=GENESIS)
    await a.start()
    try:
        _reader, writer, _session = await raw_peer(ident_c, CHAIN, peers, a.listen_address, genesis_hash=GENESIS)
        await wait_until(lambda: a.connected_peers() == {"c"}, "raw peer admitted")
        # The raw peer never answers pings: a closes the link as idle.
        await wait_until(lambda: a.counters.disconnects["idle_timeout"] == 1, "idle link dropped")
        writer.close()
        a.update_peer_set(PeerSet.of([ident_a.as_peer()]))
        with pytest.raises(HandshakeError) as refused:  # a says why in its verdict, and closes
            await raw_peer(ident_c, CHAIN, peers, a.listen_address, genesis_hash=GENESIS)
        assert refused.value.code == "refused_by_peer" and "unknown_peer" in refused.value.message
        await wait_until(lambda: a.counters.handshake_failures["unknown_peer"] == 1, "removed peer refused")
        assert a.send("c", b"gone") is SendOutcome.UNKNOWN_PEER
    finally:
        await a.close()


@run_async
async def test_pending_handshakes_are_bounded_and_time_out() -> None:
    config = dataclasses.replace(FAST, max_inbound_handshakes=1, handshake_timeout_s=0.5)
    ident_a, ident_b = identity("a"), identity("b")
    peers = PeerSet.of([ident_a.as_peer(), ident_b.as_peer()])
    a = Transport(ident_a, CHAIN, peers, config, protocol_version=VERSION, genesis_hash=GENESIS)
    await a.start()
    try:
        _silent_reader, silent = await asyncio.open_connection(*a.listen_address)  # says nothing: holds the slot
        await wait_until(lambda: a._inbound_handshakes == 1, "first handshake pending")
        reader, writer = await asyncio.open_connection(*a.listen_address)
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b"", "closed before any hello"
        assert a.counters.handshake_failures["too_many_handshakes"] == 1
        writer.close()
        # The silent connection runs out of handshake time and is closed, which frees the slot.
        await wait_until(lambda: a.counters.handshake_failures["timeout"] == 1, "silent peer timed out")
        assert a._inbound_handshakes == 0
        silent.close()
        _reader, writer, _session = await raw_peer(ident_b, CHAIN, peers, a.listen_address, genesis_hash=GENESIS)
        await wait_until(lambda: a.connected_peers() == {"b"}, "admitted once the slot is free")
        writer.close()
    finally:
        await a.close()


@run_async
async def test_a_key_revoked_during_the_handshake_is_refused() -> None:
    """Regression: a handshake checked the peer set of its start, so a peer whose key update_peer_set replaced
    (revoked) while the handshake was in flight was still admitted with the old key."""
    ident_a, old_c = identity("a"), identity("c")
    new_c = Identity("c", nacl.signing.SigningKey(hashlib.sha256(b"c, rotated").digest()))
    peers = PeerSet.of([ident_a.as_peer(), old_c.as_peer()])
    a = Transport(ident_a, CHAIN, peers, FAST, protocol_version=VERSION, genesis_hash=GENESIS)
    await a.start()
    try:
        reader, writer = await asyncio.open_connection(*a.listen_address)
        handshake = Handshake(old_c, CHAIN, peers, protocol_version=VERSION, genesis_hash=GENESIS)
        writer.write(handshake.hello())
        auth = handshake.receive_hello(await reader.readexactly(HELLO_BYTES))
        auth_of_a = await read_frame(reader)  # a's auth: a now waits for ours
        handshake.receive_auth(auth_of_a[LENGTH_BYTES:])
        a.update_peer_set(PeerSet.of([ident_a.as_peer(), new_c.as_peer()]))  # c's old key is revoked
        writer.write(auth)
        verdict = await asyncio.wait_for(read_frame(reader), WAIT_S)  # a refuses, says why, and closes
        with pytest.raises(HandshakeError) as refused:
            handshake.receive_verdict(verdict[LENGTH_BYTES:])
        assert refused.value.code == "refused_by_peer" and "peer_set_changed" in refused.value.message
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b"", "a closes the connection"
        writer.close()
        await wait_until(lambda: a.counters.handshake_failures["peer_set_changed"] == 1, "old key refused")
        assert a.connected_peers() == frozenset() and a.counters.connects == 0
        # The new key is admitted.
        _reader, writer, _ = await raw_peer(new_c, CHAIN, PeerSet.of([ident_a.as_peer(), new_c.as_peer()]),
                                            a.listen_address, genesis_hash=GENESIS)
        await wait_until(lambda: a.connected_peers() == {"c"}, "new key admitted")
        writer.close()
    finally:
        await a.close()


@run_async
async def test_identity_rotation_keeps_links_with_the_previous_key_then_reconnects_with_the_new_one() -> None:
    """An epoch change rotates b's identity key: a admits both keys while b may not have switched (its link with the
    old key stays up), b then switches its own identity (every link is re-dialled with the new key), and a later
    set without the previous key keeps the new link. A node that is not in its own peer set (a validator added
    later) connects as itself once the others list it."""
    a, b = await mesh(["a", "b"])
    try:
        ident_a, old_b = identity("a"), identity("b")
        new_b = Identity("b", nacl.signing.SigningKey(hashlib.sha256(b"b, rotated").digest()))
        addr_a, addr_b = a.listen_address, b.listen_address
        rotating = PeerSet.of([ident_a.as_peer(addr_a),
                               dataclasses.replace(new_b.as_peer(addr_b), previous_key=old_b.public_key)])
        connects = a.counters.connects
        a.update_peer_set(rotating)
        assert a.connected_peers() == {"b"} and a.counters.connects == connects, "old-key link kept"
        b.update_peer_set(rotating, new_b)
        assert b.identity_key == new_b.public_key
        await wait_until(lambda: a.counters.connects > connects and a.connected_peers() == {"b"}, "re-dialled")
        assert a._peers["b"].link.key == new_b.public_key
        a.update_peer_set(PeerSet.of([ident_a.as_peer(addr_a), new_b.as_peer(addr_b)]))
        assert a.connected_peers() == {"b"}
        # A node outside its own peer set: c dials a, refused until a lists it, then admitted.
        ident_c = identity("c")
        c = Transport(ident_c, CHAIN, PeerSet.of([ident_a.as_peer(addr_a)]), FAST, protocol_version=VERSION,
                      genesis_hash=GENESIS)
        await c.start()
        try:
            await wait_until(lambda: a.counters.handshake_failures["unknown_peer"] >= 1, "c refused")
            a.update_peer_set(PeerSet.of([ident_a.as_peer(addr_a), new_b.as_peer(addr_b), ident_c.as_peer()]))
            await wait_until(lambda: "c" in a.connected_peers() and c.connected_peers() == {"a"}, "c admitted")
        finally:
            await c.close()
    finally:
        await close_all(a, b)


def test_a_peer_set_may_omit_this_node_but_never_list_it_with_another_key() -> None:
    ident_a, other = identity("a"), Identity("a", nacl.signing.SigningKey(hashlib.sha256(b"not a").digest()))
    Transport(ident_a, CHAIN, PeerSet.of([identity("b").as_peer()]), FAST, protocol_version=VERSION,
              genesis_hash=GENESIS)
    with pytest.raises(TransportError):
        Transport(ident_a, CHAIN, PeerSet.of([other.as_peer(), identity("b").as_peer()]), FAST,
                  protocol_version=VERSION, genesis_hash=GENESIS)


@run_async
async def test_each_side_hears_of_each_link_it_registers() -> None:
    """on_link_up(peer) runs once per registered link, on both sides, and again after a re-dial."""
    ident_a, ident_b = identity("a"), identity("b")
    heard: dict[str, list[str]] = {"a": [], "b": []}
    b = Transport(ident_b, CHAIN, PeerSet.of([ident_a.as_peer(), ident_b.as_peer()]), FAST,
                  on_link_up=heard["b"].append, protocol_version=VERSION, genesis_hash=GENESIS)
    await b.start()
    a = Transport(ident_a, CHAIN, PeerSet.of([ident_a.as_peer(), ident_b.as_peer(b.listen_address)]), FAST,
                  on_link_up=heard["a"].append, protocol_version=VERSION, genesis_hash=GENESIS)
    await a.start()
    try:
        await wait_until(lambda: heard == {"a": ["b"], "b": ["a"]}, "both sides hear of the link")
        b.update_peer_set(PeerSet.of([ident_b.as_peer()]))  # b drops a; a re-dials and is refused until a is back
        await wait_until(lambda: a.connected_peers() == frozenset(), "link dropped")
        b.update_peer_set(PeerSet.of([ident_a.as_peer(), ident_b.as_peer()]))
        await wait_until(lambda: heard == {"a": ["b", "b"], "b": ["a", "a"]}, "the re-dialled link is heard of")
    finally:
        await close_all(a, b)
