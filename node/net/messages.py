"""What validators say to each other besides consensus: the channel byte of every transport message, and the
node-level messages (docs/transport.md, "Channels").

    channel 0x01  consensus     a consensus message (consensus/messages.py), handed to the replica
    channel 0x02  node          msgpack arrays:
                  STATUS     [1, genesis_hash, height, block_id]           every second (the hello)
                  GET_BLOCKS [2, request_id, from_height, max_count]       block sync request
                  BLOCKS     [3, request_id, [[block_bytes, cert_bytes], ...]]   block sync answer
                  PRUNED     [4, request_id, kept_from]                    block sync answer: "pruned", the blocks
                                                                           asked for are below what this node keeps
    channel 0x03  txs           a msgpack array of signed transaction bytes (gossip, at most GOSSIP_BATCH)
    channel 0x04  snapshots     state sync (node/net/snapshot_messages.py)

Decoding is strict and bounded; anything else is refused with a reason that the node counts (metrics) and drops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgpack

from ledger.schema import MAX_TX_BYTES
from node.errors import NodeError

__all__ = [
    "CH_CONSENSUS",
    "CH_NODE",
    "CH_TXS",
    "GOSSIP_BATCH",
    "MAX_NODE_MESSAGE_BYTES",
    "Blocks",
    "GetBlocks",
    "MessageRefused",
    "Pruned",
    "Status",
    "decode_gossip",
    "decode_node_message",
    "encode_gossip",
    "encode_node_message",
]

CH_CONSENSUS: Final = 1
CH_NODE: Final = 2
CH_TXS: Final = 3
MSG_STATUS: Final = 1
MSG_GET_BLOCKS: Final = 2
MSG_BLOCKS: Final = 3
MSG_PRUNED: Final = 4
# Signed transactions per gossip message.
GOSSIP_BATCH: Final = 512
# Bytes in one node message (a BLOCKS answer is bounded by its sender to 3 MiB plus one oversized block).
MAX_NODE_MESSAGE_BYTES: Final = 64 << 20
# Items in any array of a node message.
MAX_NODE_ARRAY: Final = 1 << 16


class MessageRefused(NodeError, ValueError):
    """A malformed message; `code` is the metric label it is counted under."""


@dataclass(frozen=True, slots=True)
class Status:
    genesis_hash: bytes
    height: int
    block_id: bytes


@dataclass(frozen=True, slots=True)
class GetBlocks:
    request_id: int
    start: int
    max_count: int


@dataclass(frozen=True, slots=True)
class Blocks:
    request_id: int
    items: list  # [[block_bytes, cert_bytes], ...] as received: checked by block sync


@dataclass(frozen=True, slots=True)
class Pruned:
    request_id: int
    kept_from: int


NodeMessage = Status | GetBlocks | Blocks | Pruned


def encode_node_message(msg: NodeMessage) -> bytes:
    """The whole transport message: channel byte + msgpack body."""
    if isinstance(msg, Status):
        body = [MSG_STATUS, msg.genesis_hash, msg.height, msg.block_id]
    elif isinstance(msg, GetBlocks):
        body = [MSG_GET_BLOCKS, msg.request_id, msg.start, msg.max_count]
    elif isinstance(msg, Pruned):
        body = [MSG_PRUNED, msg.request_id, msg.kept_from]
    else:
        body = [MSG_BLOCKS, msg.request_id, msg.items]
    return bytes((CH_NODE,)) + msgpack.packb(body, use_bin_type=True)


def decode_node_message(body: bytes) -> NodeMessage:
    """A node-channel body (after the channel byte); MessageRefused (code "malformed") for anything else."""
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=MAX_NODE_MESSAGE_BYTES,
                              max_array_len=MAX_NODE_ARRAY, max_map_len=0)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise MessageRefused("malformed", "a node message is not valid msgpack") from None
    if not isinstance(msg, list) or not msg or type(msg[0]) is not int:
        raise MessageRefused("malformed", "a node message is an array that starts with its kind")
    kind = msg[0]
    if kind == MSG_STATUS and len(msg) == 4 and isinstance(msg[1], bytes) and type(msg[2]) is int \
            and isinstance(msg[3], bytes):
        return Status(msg[1], msg[2], msg[3])
    if kind == MSG_GET_BLOCKS and len(msg) == 4 and all(type(x) is int for x in msg[1:]):
        return GetBlocks(msg[1], msg[2], msg[3])
    if kind == MSG_BLOCKS and len(msg) == 3 and type(msg[1]) is int and isinstance(msg[2], list):
        return Blocks(msg[1], msg[2])
    if kind == MSG_PRUNED and len(msg) == 3 and type(msg[1]) is int and type(msg[2]) is int:
        return Pruned(msg[1], msg[2])
    raise MessageRefused("malformed", f"unknown node message kind {kind} or wrong fields")


def encode_gossip(txs: list[bytes]) -> bytes:
    assert len(txs) <= GOSSIP_BATCH
    return bytes((CH_TXS,)) + msgpack.packb(txs, use_bin_type=True)


def decode_gossip(body: bytes) -> list[bytes]:
    try:
        txs = msgpack.unpackb(body, raw=True, max_bin_len=MAX_TX_BYTES, max_array_len=GOSSIP_BATCH, max_map_len=0,
                              max_str_len=0)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise MessageRefused("malformed", "a gossip message is not valid msgpack") from None
    if not isinstance(txs, list) or not all(type(raw) is bytes for raw in txs):
        raise MessageRefused("malformed", "a gossip message is an array of transaction bytes")
    return txs
