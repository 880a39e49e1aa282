"""The periodic check of PostgreSQL against the chain's provable state, at the indexer's checkpoint height H:

- supply: for every asset the database knows, the sum of its positions equals the asset's outstanding supply, read
  from the node with a state proof of its AssetStatus record verified offline against the certified state root of H
  (the root the indexer verified with the block's commit certificate);
- balances: for a random sample of (asset, account) positions, the available/held/frozen buckets equal the Balance
  record read with a state proof (absent = zero) under the same root.

Any difference stops the indexer (IndexerError indexer_audit_mismatch, naming H, the asset and the account)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.records import AssetStatus, Balance
from ledger.state import decode_value
from ledger.state_keys import asset_status_key, balance_key
from node.client.verify import verify_state_proof
from node.indexer import errors as x
from node.indexer.errors import IndexerError

__all__ = ["AuditReport", "audit"]

ProofReader = Callable[[bytes, int], Awaitable[dict[str, Any]]]  # (key, height) -> GET /v1/proofs answer


@dataclass(frozen=True, slots=True)
class AuditReport:
    height: int
    assets: int
    balances: int


async def _proved(read: ProofReader, key: bytes, height: int, root: bytes) -> Any:
    doc = await read(key, height)
    value = doc.get("value")
    if doc.get("state_root") != root.hex() or not verify_state_proof(root, key, value, doc.get("proof")):
        raise IndexerError(
            x.AUDIT_MISMATCH,
            f"the node's proof of key {key.hex()} does not verify under the certified state root",
            height,
        )
    return None if value is None else decode_value(key, bytes.fromhex(value))


async def audit(conn: psycopg.AsyncConnection, read: ProofReader, sample: int) -> AuditReport:
    """Check supply of every asset and `sample` random positions (drawn by PostgreSQL) at the checkpoint."""
    async with conn.transaction():
        cur = await conn.execute("SELECT height, state_root FROM indexer_checkpoint WHERE id = 1")
        row = await cur.fetchone()
        assert row is not None, "audit before the genesis seed"
        height, root = int(row[0]), bytes(row[1])
        cur = await conn.execute(
            "SELECT a.asset, coalesce(sum(p.available + p.held + p.frozen), 0) FROM assets a"
            " LEFT JOIN positions p ON p.asset = a.asset GROUP BY a.asset ORDER BY a.asset"
        )
        supplies = [(r[0], int(r[1])) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT asset, account, available, held, frozen FROM positions ORDER BY random() LIMIT %s", (sample,)
        )
        positions = [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in await cur.fetchall()]
    for asset, total in supplies:
        status: AssetStatus | None = await _proved(read, asset_status_key(asset), height, root)
        chain = 0 if status is None else status.outstanding
        if chain != total:
            raise IndexerError(
                x.AUDIT_MISMATCH, f"supply of {asset}: the chain proves {chain}, the database sums {total}", height
            )
    for asset, account, available, held, frozen in positions:
        bal: Balance | None = await _proved(read, balance_key(asset, account), height, root)
        chain_b = (0, 0, 0) if bal is None else (bal.available, bal.held, bal.frozen)
        if chain_b != (available, held, frozen):
            raise IndexerError(
                x.AUDIT_MISMATCH,
                f"balance of {account} in {asset}: the chain proves "
                f"{chain_b}, the database holds {(available, held, frozen)}",
                height,
            )
    return AuditReport(height, len(supplies), len(positions))
