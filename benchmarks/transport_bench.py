"""Loopback throughput of the peer transport: one sender, one receiver, both in this process (one core).

    python benchmarks/transport_bench.py [--seconds S]     (from the repository root, with the project installed)

Prints frames/s and MB/s (payload bytes, 1 MB = 10^6 bytes) for 1 KiB and 64 KiB payloads. End to end: seal, write,
TCP over 127.0.0.1, read, open, hand to receive(). No frame may be dropped (asserted)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time

import nacl.signing

from ledger.protocol import PROTOCOL_VERSION
from node.net.handshake import Identity, PeerSet
from node.net.transport import SendOutcome, Transport, TransportConfig


def identity(name: str) -> Identity:
    return Identity(name, nacl.signing.SigningKey(hashlib.sha256(name.encode()).digest()))


async def measure(size: int, seconds: float) -> tuple[float, float, int]:
    ids = [identity("a"), identity("b")]
    cfg = TransportConfig(send_queue_frames=1024, send_queue_bytes=256 * 1024 * 1024)
    bare = PeerSet.of(i.as_peer() for i in ids)
    genesis_hash = hashlib.sha256(b"transport bench genesis").digest()  # no genesis file: any 32 bytes, both sides
    a, b = (Transport(i, "bench", bare, cfg, protocol_version=PROTOCOL_VERSION, genesis_hash=genesis_hash)
            for i in ids)
    await a.start()
    await b.start()
    full = PeerSet.of([ids[0].as_peer(a.listen_address), ids[1].as_peer(b.listen_address)])
    a.update_peer_set(full)
    b.update_peer_set(full)
    while not (a.connected_peers() and b.connected_peers()):
        await asyncio.sleep(0.01)
    payload = b"\xab" * size
    window = max(8, min(512, (8 * 1024 * 1024) // size))
    received = 0

    async def consume() -> None:
        nonlocal received
        while True:
            await b.receive()
            received += 1

    consumer = asyncio.create_task(consume())
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        if sent - received < window:
            for _ in range(window - (sent - received)):
                assert a.send("b", payload) is SendOutcome.QUEUED
                sent += 1
        await asyncio.sleep(0)
    while received < sent:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    consumer.cancel()
    assert a.counters.drops.get("send_queue_full", 0) == 0, a.counters.drops
    await a.close()
    await b.close()
    return received / elapsed, received * size / elapsed / 1e6, received


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    for size in (1024, 64 * 1024):
        fps, mbps, n = asyncio.run(measure(size, args.seconds))
        print(f"payload {size:>6} B: {fps:>9,.0f} frames/s  {mbps:>7.1f} MB/s  ({n} frames in ~{args.seconds}s)")


if __name__ == "__main__":
    main()
