"""`ledger index`: follow one node and write what it certified into PostgreSQL (docs/indexer.md).

One session: connect to PostgreSQL, apply the migrations, seed the genesis (once), read the checkpoint; then index
every height after it — fetch GET /v1/blocks/{h}/changes (a few heights ahead), verify (node/indexer/verify.py),
write the rows with the checkpoint in one transaction (node/indexer/store.py), and every `audit_every` blocks audit
PostgreSQL against state proofs (node/indexer/audit.py). At the node's head it waits on the event stream's block
checkpoints. A node or database that goes away ends the session; the indexer retries with exponential backoff (a
clear status line per attempt) and resumes from the checkpoint. A verification or audit failure is fatal: nothing of
that block is written and the indexer stops with the error naming the height."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg

from consensus.messages import EpochChangeProof
from ledger.records import AssetDefinition, Balance
from ledger.state import decode_value
from ledger.state_keys import parse_balance_key
from node.chain.genesis import Genesis, genesis_state
from node.chain.statement import TrustAnchor
from node.client.aio import AsyncLedgerClient
from node.client.errors import ApiError, ClientError
from node.client.keys import AccountKey
from node.indexer import errors as x
from node.indexer.audit import audit
from node.indexer.errors import IndexerError
from node.indexer.rows import block_rows
from node.indexer.schema import migrate
from node.indexer.store import IndexStore
from node.indexer.verify import ChainVerifier, VerifiedBlock

__all__ = ["Indexer", "IndexerConfig", "redact_dsn"]

log = logging.getLogger("node.indexer")

PREFETCH: Final = 16  # heights fetched ahead of the one being written
# Refusals that may pass: unavailable, rate limited, too many streams, halted (another node or a restart), and a
# height the node does not have yet (a node restarted behind, or a full node catching up).
TRANSIENT_API_CODES: Final = frozenset({3106, 3109, 3114, 3116, 3131, 3303})
WRITE_BATCH: Final = 16  # blocks written in one SQL transaction at most (catching up: those already fetched)
BACKOFF_MAX: Final = 30.0  # seconds between reconnection attempts, at most


def redact_dsn(dsn: str) -> str:
    """The DSN with any password removed (key=value and URL forms): what logs and errors may show."""
    out = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn, flags=re.IGNORECASE)
    return re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", out)


def _password(dsn: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(dsn).get("password") or None  # type: ignore[return-value]
    except psycopg.ProgrammingError:
        return None


@dataclass(slots=True)
class IndexerConfig:
    node_url: str
    dsn: str
    genesis: Genesis
    key: AccountKey | None = None
    audit_every: int = 100  # blocks between audits (0: never, except `final_audit`)
    audit_sample: int = 16  # positions checked per audit
    until_height: int | None = None  # stop once this height is indexed (tests, benchmarks)
    final_audit: bool = True  # audit once more when stopping at until_height
    max_attempts: int | None = None  # reconnection attempts before giving up (None: forever)
    timeout: float = 30.0  # seconds per request to the node
    status: Callable[[str], None] = field(default=lambda line: log.info("%s", line))


class Indexer:
    def __init__(self, config: IndexerConfig) -> None:
        self.config = config
        self.anchor = TrustAnchor.from_genesis(config.genesis)
        self.verifier = ChainVerifier(self.anchor)
        self.height = -1  # the checkpoint, once read
        self.audits = 0
        self.blocks_written = 0
        self._secret = _password(config.dsn)
        self._head_seen = asyncio.Event()
        self._known_head = -1

    # -- messages -----------------------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """A message that may quote the DSN or the password, without them."""
        text = text.replace(self.config.dsn, redact_dsn(self.config.dsn))
        return text.replace(self._secret, "***") if self._secret else text

    def _status(self, line: str) -> None:
        self.config.status(self.scrub(line))

    # -- the loop -----------------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Index until `until_height` (or forever); the last indexed height. IndexerError when fatal or when the
        attempts are exhausted."""
        attempt = 0
        while True:
            try:
                await self._session()
                return self.height
            except IndexerError as exc:
                if exc.fatal:
                    self._status(f"stopped: {exc}")
                    raise IndexerError(exc.code, self.scrub(exc.message)) from None
                what = exc
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                what = IndexerError(
                    x.DATABASE_UNAVAILABLE, f"PostgreSQL ({redact_dsn(self.config.dsn)}): {type(exc).__name__}: {exc}"
                )
            except psycopg.Error as exc:
                err = IndexerError(x.DATABASE_REFUSED, f"{type(exc).__name__}: {exc}", self.height + 1)
                self._status(f"stopped: {err}")
                raise IndexerError(err.code, self.scrub(err.message)) from None
            except (TimeoutError, ClientError, OSError) as exc:
                what = IndexerError(x.NODE_UNREACHABLE, f"node {self.config.node_url}: {exc}")
            except ApiError as exc:
                if exc.code in TRANSIENT_API_CODES:
                    what = IndexerError(x.NODE_UNREACHABLE, f"node {self.config.node_url}: {exc}")
                else:
                    err = IndexerError(
                        x.NODE_REFUSED,
                        f"node {self.config.node_url} refused a read: {exc} (private "
                        "reads need an auditor's key, --key)",
                        self.height + 1,
                    )
                    self._status(f"stopped: {err}")
                    raise IndexerError(err.code, self.scrub(err.message)) from None
            attempt = 0 if self.blocks_written else attempt + 1
            self.blocks_written = 0
            if self.config.max_attempts is not None and attempt >= self.config.max_attempts:
                raise IndexerError(what.code, self.scrub(what.message)) from None
            delay = min(BACKOFF_MAX, 0.2 * 2 ** min(attempt, 8))
            self._status(
                f"{what.code}: {what.message}; retrying in {delay:.1f}s (attempt {attempt}, "
                f"indexed height {self.height})"
            )
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.config.dsn, connect_timeout=10)
        try:
            async with AsyncLedgerClient(self.config.node_url, self.config.key, timeout=self.config.timeout) as client:
                await self._index(conn, client)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _index(self, conn: psycopg.AsyncConnection, client: AsyncLedgerClient) -> None:
        cfg = self.config
        await migrate(conn)
        store = IndexStore(conn)
        cp = await store.checkpoint()
        if cp is None:
            await self._seed(store)
            cp = await store.checkpoint()
            assert cp is not None
        if cp.genesis_hash != self.anchor.consensus_chain_id:
            raise IndexerError(
                x.WRONG_CHAIN, f"the database indexes another chain (genesis hash {cp.genesis_hash.hex()[:16]}…)"
            )
        self.height = cp.height
        parent = cp.block_hash
        status = await client.status()
        if status.get("chain_id") != self.anchor.chain_id:
            raise IndexerError(
                x.WRONG_CHAIN,
                f"the node serves chain {status.get('chain_id')!r}, the genesis is {self.anchor.chain_id!r}",
            )
        self._known_head = await client.head_height()
        self._status(f"indexing from height {self.height + 1} (node head {self._known_head})")
        since_audit = 0
        follower: asyncio.Task[None] | None = None  # the event stream, opened once the indexer reaches the head
        pending: dict[int, asyncio.Task[Any]] = {}
        try:
            while cfg.until_height is None or self.height < cfg.until_height:
                nxt = self.height + 1
                if follower is not None and follower.done():
                    follower.result()  # the stream failed: end the session (retried)
                if nxt > self._known_head:
                    self._head_seen.clear()
                    self._known_head = max(self._known_head, await client.head_height())
                    if nxt > self._known_head:
                        if follower is None:
                            follower = asyncio.create_task(self._follow(client, nxt))
                        waiter = asyncio.ensure_future(self._head_seen.wait())
                        await asyncio.wait({waiter, follower}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
                        waiter.cancel()
                        continue
                last = min(self._known_head, nxt + PREFETCH - 1)
                if cfg.until_height is not None:
                    last = min(last, cfg.until_height)
                for h in range(nxt, last + 1):
                    if h not in pending:
                        pending[h] = asyncio.create_task(client.block_changes(h))
                # Verify the next block, and those after it already fetched (up to WRITE_BATCH, never past an
                # audit point), then write them in one transaction with the checkpoint.
                batch: list[VerifiedBlock] = []
                h = nxt
                while True:
                    vb = await self.verifier.verify(await pending.pop(h), h, parent, self._epoch_source(client))
                    batch.append(vb)
                    parent = vb.block_hash
                    h += 1
                    full = len(batch) >= WRITE_BATCH or (
                        cfg.audit_every and since_audit + len(batch) >= cfg.audit_every
                    )
                    if full or h > last or not pending[h].done():
                        break
                await self._write(store, batch)
                self.height = h - 1
                self.blocks_written += len(batch)
                since_audit += len(batch)
                if cfg.audit_every and since_audit >= cfg.audit_every:
                    await self._audit(conn, client)
                    since_audit = 0
            if cfg.final_audit and since_audit:
                await self._audit(conn, client)
        finally:
            tasks = [*pending.values(), *([follower] if follower is not None else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, client: AsyncLedgerClient, start: int) -> None:
        """Block checkpoints of the event stream wake the indexer at the head (the stream resumes by itself)."""
        async for item in client.events(kinds=("epoch_scheduled",), from_height=start, checkpoints=True):
            if item.type == "block" and item.height > self._known_head:
                self._known_head = item.height
                self._head_seen.set()

    def _epoch_source(self, client: AsyncLedgerClient) -> Callable[[int], Any]:
        async def proofs(after_epoch: int) -> list[EpochChangeProof]:
            del after_epoch  # the node's list is short (one proof per epoch change): read it whole
            return list(await client.epoch_proofs())

        return proofs

    async def _write(self, store: IndexStore, batch: list[VerifiedBlock]) -> None:
        blocks = []
        for vb in batch:
            try:
                rows = block_rows(vb)
            except (KeyError, TypeError, ValueError) as exc:
                raise IndexerError(
                    x.BLOCK_INVALID, f"the node's receipts or balance changes are malformed: {exc!r}", vb.height
                ) from None
            new_epoch = None
            ends = self.verifier.epoch_ends
            if vb.epoch > 0 and ends.get(vb.epoch - 1) == vb.height - 1:
                vs = self.verifier.sets[vb.epoch]
                new_epoch = (vb.epoch, [v.id.decode() for v in vs.validators], [v.power for v in vs.validators])
            blocks.append((rows, new_epoch))
        await store.write_blocks(blocks)

    async def _audit(self, conn: psycopg.AsyncConnection, client: AsyncLedgerClient) -> None:
        async def read(key: bytes, height: int) -> dict[str, Any]:
            return await client.get("proofs", signed=True, key=key.hex(), height=height)

        report = await audit(conn, read, self.config.audit_sample)
        self.audits += 1
        self._status(
            f"audit at height {report.height}: supply of {report.assets} assets and "
            f"{report.balances} sampled balances match the chain's proofs"
        )

    async def _seed(self, store: IndexStore) -> None:
        g = self.config.genesis
        state = genesis_state(g)
        balances: list[tuple[str, str, int, int, int]] = []
        assets: list[tuple[str, str]] = []
        for key, raw in state.changes.items():
            if raw is None:
                continue
            if key[:1] == b"B":
                asset, account = parse_balance_key(key)
                b: Balance = decode_value(key, raw)
                balances.append((asset, account, b.available, b.held, b.frozen))
            elif key[:1] == b"A":
                d: AssetDefinition = decode_value(key, raw)
                assets.append((key[1:].decode(), d.issuer))
        vs = self.anchor.validator_set
        await store.seed_genesis(
            g.chain_id,
            self.anchor.consensus_chain_id,
            state.block.id,
            state.state_root,
            g.genesis_time,
            [(v.id.decode(), v.power) for v in vs.validators],
            balances,
            assets,
        )
