"""The block payload: what consensus orders and the ledger executes (docs/operations.md, "Block payload").

    payload = msgpack [1, time_ms, [tx_bytes, ...]]      (canonical: shortest ints, bin for bytes)

- time_ms: the proposer's clock in milliseconds since the Unix epoch when it built the block. The ledger executes
  the block at time `time_ms // 1000` seconds. Voters refuse (no vote) a payload whose time is below its parent's
  or more than `max_clock_drift_ms` ahead of their own clock; so block time is monotonic and close to real time,
  and execution never reads a local clock (a block synced later executes at its own recorded time).
- each tx_bytes is a signed transaction exactly as submitted (docs/protocol.md, "Transactions"); the order is the
  execution order. Invalid transactions stay in the payload and get a rejection receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgpack

from ledger.schema import MAX_TX_BYTES
from node.errors import NodeError

PAYLOAD_VERSION: Final = 1
MAX_TIME_MS: Final = (1 << 53) - 1


class PayloadError(NodeError, ValueError):
    """A block payload that is malformed, not canonical or over the limits."""


@dataclass(frozen=True, slots=True)
class Payload:
    time_ms: int
    txs: tuple[bytes, ...]


def encode_payload(time_ms: int, txs: list[bytes] | tuple[bytes, ...]) -> bytes:
    assert 0 <= time_ms <= MAX_TIME_MS
    return msgpack.packb([PAYLOAD_VERSION, time_ms, list(txs)], use_bin_type=True)


def decode_payload(data: bytes, max_txs: int, max_bytes: int) -> Payload:
    """Strict decode; PayloadError on anything malformed, non-canonical or over the limits."""
    if len(data) > max_bytes:
        raise PayloadError("payload_too_large", f"{len(data)} bytes > {max_bytes}")
    if data == b"":
        raise PayloadError("payload_empty", "a block payload is never empty")
    try:
        items = msgpack.unpackb(data, use_list=True, raw=True, strict_map_key=True,
                                max_bin_len=MAX_TX_BYTES, max_array_len=max(max_txs + 1, 3), max_map_len=0,
                                max_str_len=0, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise PayloadError("payload_malformed", f"not a msgpack payload: {exc}") from None
    if not (isinstance(items, list) and len(items) == 3 and items[0] == PAYLOAD_VERSION):
        raise PayloadError("payload_malformed", "payload must be [1, time_ms, txs]")
    _, time_ms, txs = items
    if type(time_ms) is not int or not 0 <= time_ms <= MAX_TIME_MS:
        raise PayloadError("payload_bad_time", "time_ms must be an integer in range")
    if not isinstance(txs, list) or len(txs) > max_txs or not all(type(t) is bytes for t in txs):
        raise PayloadError("payload_bad_txs", f"txs must be a list of at most {max_txs} byte strings")
    if encode_payload(time_ms, txs) != data:
        raise PayloadError("payload_not_canonical", "payload is not in canonical form")
    return Payload(time_ms, tuple(txs))
