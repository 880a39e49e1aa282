"""The snapshot channel: what a node joining by state sync asks its peers, and their answers (docs/transport.md,
"Channels"; docs/operations.md, "State sync, snapshots and pruning").

    channel 0x04  snapshots     msgpack arrays:
                  LIST_SNAPSHOTS [1, request_id]                                   which snapshots do you serve?
                  SNAPSHOTS      [2, request_id, [[height, manifest_digest, chunks], ...]]   at most MAX_OFFERS
                  GET_SNAPSHOT   [3, request_id, height]                           its manifest and certified block
                  SNAPSHOT       [4, request_id, height, manifest, block, cert, [epoch proofs]]  (manifest b"": none)
                  GET_CHUNK      [5, request_id, height, index]                    one chunk
                  CHUNK          [6, request_id, height, index, chunk]             (chunk b"": not served)

One chunk per request: a request never asks for more than MAX_CHUNK_BYTES (ledger/snapshot.py). Decoding is strict;
anything else is MessageRefused("malformed"). Sizes are checked by the receiver (an oversized chunk is refused with
its own code, never decoded into the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgpack

from node.net.messages import MAX_NODE_MESSAGE_BYTES, MessageRefused

__all__ = [
    "CH_SNAPSHOTS",
    "MAX_OFFERS",
    "Chunk",
    "GetChunk",
    "GetSnapshot",
    "ListSnapshots",
    "SnapshotHead",
    "SnapshotMessage",
    "Snapshots",
    "decode_snapshot_message",
    "encode_snapshot_message",
]

CH_SNAPSHOTS: Final = 4
# Snapshots one node offers in one answer (it keeps fewer: [sync] snapshot_keep).
MAX_OFFERS: Final = 16
# Epoch-change proofs in one SNAPSHOT answer (one per ended epoch).
MAX_SNAPSHOT_PROOFS: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class ListSnapshots:
    request_id: int


@dataclass(frozen=True, slots=True)
class Snapshots:
    request_id: int
    offers: tuple[tuple[int, bytes, int], ...]  # (height, manifest digest, chunks)


@dataclass(frozen=True, slots=True)
class GetSnapshot:
    request_id: int
    height: int


@dataclass(frozen=True, slots=True)
class SnapshotHead:
    request_id: int
    height: int
    manifest: bytes  # b"": not served
    block: bytes
    cert: bytes
    proofs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class GetChunk:
    request_id: int
    height: int
    index: int


@dataclass(frozen=True, slots=True)
class Chunk:
    request_id: int
    height: int
    index: int
    data: bytes  # b"": not served


SnapshotMessage = ListSnapshots | Snapshots | GetSnapshot | SnapshotHead | GetChunk | Chunk


def encode_snapshot_message(msg: SnapshotMessage) -> bytes:
    """The whole transport message: channel byte + msgpack body."""
    if isinstance(msg, ListSnapshots):
        body: list[object] = [1, msg.request_id]
    elif isinstance(msg, Snapshots):
        body = [2, msg.request_id, [list(o) for o in msg.offers]]
    elif isinstance(msg, GetSnapshot):
        body = [3, msg.request_id, msg.height]
    elif isinstance(msg, SnapshotHead):
        body = [4, msg.request_id, msg.height, msg.manifest, msg.block, msg.cert, list(msg.proofs)]
    elif isinstance(msg, GetChunk):
        body = [5, msg.request_id, msg.height, msg.index]
    else:
        body = [6, msg.request_id, msg.height, msg.index, msg.data]
    return bytes((CH_SNAPSHOTS,)) + msgpack.packb(body, use_bin_type=True)


def _uints(*xs: object) -> bool:
    return all(type(x) is int and 0 <= x < 1 << 63 for x in xs)


def decode_snapshot_message(body: bytes) -> SnapshotMessage:
    """A snapshot-channel body (after the channel byte); MessageRefused("malformed") for anything else."""
    try:
        m = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_bin_len=MAX_NODE_MESSAGE_BYTES,
            max_array_len=MAX_SNAPSHOT_PROOFS,
            max_map_len=0,
            max_str_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException):
        raise MessageRefused("malformed", "a snapshot message is not valid msgpack") from None
    if not isinstance(m, list) or not m or type(m[0]) is not int:
        raise MessageRefused("malformed", "a snapshot message is an array that starts with its kind")
    kind, n = m[0], len(m)
    if kind == 1 and n == 2 and _uints(m[1]):
        return ListSnapshots(m[1])
    if kind == 2 and n == 3 and _uints(m[1]) and isinstance(m[2], list) and len(m[2]) <= MAX_OFFERS:
        offers = []
        for o in m[2]:
            if not (
                isinstance(o, list)
                and len(o) == 3
                and _uints(o[0], o[2])
                and isinstance(o[1], bytes)
                and len(o[1]) == 32
            ):
                raise MessageRefused("malformed", "a snapshot offer is [height, digest, chunks]")
            offers.append((o[0], o[1], o[2]))
        return Snapshots(m[1], tuple(offers))
    if kind == 3 and n == 3 and _uints(m[1], m[2]):
        return GetSnapshot(m[1], m[2])
    if (
        kind == 4
        and n == 7
        and _uints(m[1], m[2])
        and all(isinstance(x, bytes) for x in m[3:6])
        and isinstance(m[6], list)
        and all(isinstance(p, bytes) for p in m[6])
    ):
        return SnapshotHead(m[1], m[2], m[3], m[4], m[5], tuple(m[6]))
    if kind == 5 and n == 4 and _uints(m[1], m[2], m[3]):
        return GetChunk(m[1], m[2], m[3])
    if kind == 6 and n == 5 and _uints(m[1], m[2], m[3]) and isinstance(m[4], bytes):
        return Chunk(m[1], m[2], m[3], m[4])
    raise MessageRefused("malformed", f"unknown snapshot message kind {kind} or wrong fields")
