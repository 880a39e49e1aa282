"""The balance movements of a committed block, kept beside it for indexers (docs/indexer.md).

Execution records every balance write as (tx_id, asset, account, Δavailable, Δheld, Δfrozen)
(ledger.transition.BlockOutcome.balance_changes); the commit stores them under the extra key
`balance-changes/<height u64 BE>` in the block's synced batch (absent when the block moved nothing), encoded as

    msgpack [[tx_id bin32, asset str, account str, Δavailable int, Δheld int, Δfrozen int], ...]

in execution order (the block's own step, tx id 32 zero bytes, first). They are not part of any hash: a reader that
must not trust the node checks their sums against state proofs (node/indexer/audit.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgpack

from ledger.schema import MAX_AMOUNT
from node.errors import NodeError

__all__ = ["BalanceChange", "balance_changes_key", "decode_balance_changes", "encode_balance_changes"]

BALANCE_CHANGES_PREFIX: Final = b"balance-changes/"

BalanceChange = tuple[bytes, str, str, int, int, int]


def balance_changes_key(height: int) -> bytes:
    return BALANCE_CHANGES_PREFIX + height.to_bytes(8, "big")


def encode_balance_changes(changes: Sequence[BalanceChange]) -> bytes:
    return msgpack.packb([list(c) for c in changes], use_bin_type=True)


def decode_balance_changes(raw: bytes) -> list[BalanceChange]:
    """The stored list; NodeError `balance_changes_corrupt` when the bytes are not what encode wrote."""
    try:
        items = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise NodeError("balance_changes_corrupt", f"undecodable balance changes: {exc}") from None
    out: list[BalanceChange] = []
    if not isinstance(items, list):
        raise NodeError("balance_changes_corrupt", "balance changes are not a list")
    for item in items:
        ok = (
            isinstance(item, list)
            and len(item) == 6
            and type(item[0]) is bytes
            and len(item[0]) == 32
            and type(item[1]) is str
            and type(item[2]) is str
            and all(type(x) is int and -MAX_AMOUNT <= x <= MAX_AMOUNT for x in item[3:])
        )
        if not ok:
            raise NodeError("balance_changes_corrupt", "malformed balance change entry")
        out.append((item[0], item[1], item[2], item[3], item[4], item[5]))
    return out
