"""The indexer's PostgreSQL side: the checkpoint, the genesis seed, and the write of one verified block — its rows
and the new checkpoint in ONE transaction, so a crash (of the indexer or of PostgreSQL) at any point leaves the
database at the end of a whole block and the indexer resumes after it, without gaps or duplicates.

Bulk rows go through COPY (transactions, events, balance movements); positions, their snapshots and the supply
history are derived from the block's movements inside PostgreSQL; the rest are batched (executemany)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from node.indexer import errors as x
from node.indexer.errors import IndexerError
from node.indexer.rows import BlockRows

__all__ = ["Checkpoint", "IndexStore"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain_id: str
    genesis_hash: bytes
    height: int
    block_hash: bytes
    state_root: bytes


_POSITIONS = """
WITH d AS (
    SELECT asset, account,
           sum(delta) FILTER (WHERE bucket = 'available') AS a,
           sum(delta) FILTER (WHERE bucket = 'held') AS h,
           sum(delta) FILTER (WHERE bucket = 'frozen') AS f
    FROM balance_movements WHERE height = %(h)s GROUP BY asset, account
), u AS (
    INSERT INTO positions AS p (asset, account, available, held, frozen, height)
    SELECT asset, account, coalesce(a, 0), coalesce(h, 0), coalesce(f, 0), %(h)s FROM d
    ON CONFLICT (asset, account) DO UPDATE SET
        available = p.available + EXCLUDED.available,
        held = p.held + EXCLUDED.held,
        frozen = p.frozen + EXCLUDED.frozen,
        height = EXCLUDED.height
    RETURNING p.asset, p.account, p.available, p.held, p.frozen
)
INSERT INTO position_snapshots (asset, account, height, available, held, frozen)
SELECT asset, account, %(h)s, available, held, frozen FROM u
"""

_SUPPLY = """
INSERT INTO supply_history (asset, height, outstanding)
SELECT d.asset, %(h)s,
       coalesce((SELECT s.outstanding FROM supply_history s WHERE s.asset = d.asset
                 ORDER BY s.height DESC LIMIT 1), 0) + d.delta
FROM (SELECT asset, sum(delta) AS delta FROM balance_movements WHERE height = %(h)s GROUP BY asset) d
WHERE d.delta <> 0
"""


class IndexStore:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn

    async def checkpoint(self) -> Checkpoint | None:
        cur = await self.conn.execute(
            "SELECT chain_id, genesis_hash, height, block_hash, state_root FROM indexer_checkpoint WHERE id = 1"
        )
        row = await cur.fetchone()
        await self.conn.commit()
        return None if row is None else Checkpoint(row[0], bytes(row[1]), int(row[2]), bytes(row[3]), bytes(row[4]))

    async def seed_genesis(
        self,
        chain_id: str,
        genesis_hash: bytes,
        block_hash: bytes,
        state_root: bytes,
        genesis_time: int,
        validators: Sequence[tuple[str, int]],
        balances: Sequence[tuple[str, str, int, int, int]],
        assets: Sequence[tuple[str, str]],
    ) -> None:
        """Height 0: the genesis block, epoch 0, the genesis assets and balances (as movements of the block's own
        step), and the checkpoint — one transaction; nothing when another indexer seeded first."""
        from node.indexer.rows import utc

        zero = bytes(32)
        async with self.conn.transaction():
            await self.conn.execute("LOCK TABLE indexer_checkpoint IN EXCLUSIVE MODE")
            if await (await self.conn.execute("SELECT 1 FROM indexer_checkpoint")).fetchone():
                return
            await self.conn.execute(
                "INSERT INTO blocks (height, block_hash, time, epoch, round, proposer, state_root, tx_count, signers,"
                " signer_power, certificate) VALUES (0, %s, %s, 0, 0, '', %s, 0, '{}', 0, NULL)",
                (block_hash, utc(genesis_time), state_root),
            )
            await self.conn.execute(
                "INSERT INTO epochs (epoch, start_height, validators, powers) VALUES (0, 0, %s, %s)",
                ([v for v, _ in validators], [p for _, p in validators]),
            )
            cur = self.conn.cursor()
            await cur.executemany("INSERT INTO assets (asset, issuer, defined_height) VALUES (%s, %s, 0)", assets)
            moves = []
            for asset, account, *amounts in balances:
                for bucket, amount in zip(("available", "held", "frozen"), amounts, strict=True):
                    if amount:
                        moves.append((0, len(moves), zero, asset, account, bucket, amount))
            await self._copy(
                "balance_movements", ("height", "seq", "tx_id", "asset", "account", "bucket", "delta"), moves
            )
            await self.conn.execute(_POSITIONS, {"h": 0})
            await self.conn.execute(_SUPPLY, {"h": 0})
            await self.conn.execute(
                "INSERT INTO indexer_checkpoint (id, chain_id, genesis_hash, height, block_hash, state_root)"
                " VALUES (1, %s, %s, 0, %s, %s)",
                (chain_id, genesis_hash, block_hash, state_root),
            )

    async def _copy(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        cur = self.conn.cursor()
        async with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                await copy.write_row(row)

    async def write_blocks(self, blocks: Sequence[tuple[BlockRows, tuple[int, list[str], list[int]] | None]]) -> None:
        """Consecutive verified blocks' rows and the checkpoint at the last of them, atomically (one transaction).
        The checkpoint must be at the first block's parent (else another writer got here first: IndexerError
        indexer_block_invalid, nothing written)."""
        first = blocks[0][0].block[0]
        conn = self.conn
        async with conn.transaction():
            cur = await conn.execute("SELECT height FROM indexer_checkpoint WHERE id = 1 FOR UPDATE")
            row = await cur.fetchone()
            if row is None or int(row[0]) != first - 1:
                raise IndexerError(
                    x.BLOCK_INVALID,
                    f"the database checkpoint is at {None if row is None else row[0]}"
                    ", not at the parent: another indexer writes here?",
                    first,
                )
            c = conn.cursor()
            await c.executemany(
                "INSERT INTO blocks (height, block_hash, time, epoch, round, proposer, state_root, tx_count, signers,"
                " signer_power, certificate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [rows.block for rows, _ in blocks],
            )
            await self._copy(
                "transactions",
                ("tx_id", "height", "idx", "code", "reason", "failed_op", "detail"),
                [t for rows, _ in blocks for t in rows.transactions],
            )
            await self._copy(
                "events",
                ("height", "seq", "tx_id", "op_index", "kind", "attrs"),
                [e for rows, _ in blocks for e in rows.events],
            )
            await self._copy(
                "balance_movements",
                ("height", "seq", "tx_id", "asset", "account", "bucket", "delta"),
                [m for rows, _ in blocks for m in rows.movements],
            )
            for rows, new_epoch in blocks:
                await self._derive(rows, new_epoch)
            last = blocks[-1][0].block
            await conn.execute(
                "UPDATE indexer_checkpoint SET height = %s, block_hash = %s, state_root = %s WHERE id = 1",
                (last[0], last[1], last[6]),
            )

    async def _derive(self, rows: BlockRows, new_epoch: tuple[int, list[str], list[int]] | None) -> None:
        """One block's derived rows (positions, snapshots, supply) and lifecycle tables, in block order."""
        conn = self.conn
        h = rows.block[0]
        if rows.movements:
            await conn.execute(_POSITIONS, {"h": h})
            await conn.execute(_SUPPLY, {"h": h})
        c = conn.cursor()
        if rows.assets:
            await c.executemany(
                "INSERT INTO assets (asset, issuer, defined_height) VALUES (%s, %s, %s) ON CONFLICT (asset) DO NOTHING",
                rows.assets,
            )
        if rows.holds_created:
            await c.executemany(
                "INSERT INTO holds (hold_id, asset, sender, recipient, notary, amount, expires_at, status,"
                " created_height, created_tx) VALUES (%s, %s, %s, %s, %s, %s, %s, 'open', %s, %s)",
                rows.holds_created,
            )
        if rows.holds_closed:
            await c.executemany(
                "UPDATE holds SET status = %s, closed_how = %s, closed_height = %s, closed_tx = %s WHERE hold_id = %s",
                rows.holds_closed,
            )
        if rows.freezes:
            await c.executemany(
                "INSERT INTO freezes (height, seq, tx_id, kind, account, asset, amount, actor, reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows.freezes,
            )
        if rows.actions:
            await c.executemany(
                "INSERT INTO corporate_actions (action, action_kind, asset, pay_asset, payer, remainder_account,"
                " record_height, rate_num, rate_den, announced_height, announced_tx)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows.actions,
            )
        if rows.payments:
            await c.executemany(
                "INSERT INTO corporate_action_payments (height, seq, tx_id, action, kind, asset, payer, recipient,"
                " amount, frozen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows.payments,
            )
        if rows.proposals_created:
            await c.executemany(
                "INSERT INTO proposals (proposal_id, proposer, actions, expiry_height, created_height, status,"
                " approvals) VALUES (%s, %s, %s, %s, %s, 'open', 0)",
                rows.proposals_created,
            )
        for status, approvals, closed, pid in rows.proposal_updates:
            await conn.execute(
                "UPDATE proposals SET status = coalesce(%s, status), approvals = coalesce(%s, approvals),"
                " closed_height = coalesce(%s, closed_height) WHERE proposal_id = %s",
                (status, approvals, closed, pid),
            )
        if rows.proposal_events:
            await c.executemany(
                "INSERT INTO proposal_events (height, seq, tx_id, proposal_id, kind, attrs)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                rows.proposal_events,
            )
        if new_epoch is not None:
            epoch, validators, powers = new_epoch
            await conn.execute("UPDATE epochs SET end_height = %s WHERE epoch = %s", (h - 1, epoch - 1))
            await conn.execute(
                "INSERT INTO epochs (epoch, start_height, validators, powers) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (epoch) DO NOTHING",
                (epoch, h, validators, powers),
            )
