"""`ledger bench index`: how fast `ledger index` writes a certified chain into PostgreSQL.

Builds a chain first (not timed): a fresh one-validator testnet (node process, open reads) receives `txs` signed
CASH-T transfers among `users` test accounts through POST /v1/tx/batch until all are committed. Then starts a
throwaway PostgreSQL (node/indexer/pgcluster.py) and times `ledger index` (in this process) from height 0 to the
head: fetch, verify (certificates, block bytes, receipts), write (COPY, derived positions and supply), with the
audits on (every `audit_every` blocks and at the end). Prints one JSON object: transactions and blocks indexed,
seconds, tx/s, blocks/s, balance movements written, and the machine's load average before and after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.chain.genesis import ChainParams, load_genesis
from node.client.aio import AsyncLedgerClient
from node.client.errors import LedgerClientError
from node.indexer.pgcluster import PgCluster
from node.indexer.run import Indexer, IndexerConfig
from node.tools.load import signed_transfer
from node.tools.localnet import load_accounts
from node.tools.testnet import Testnet

__all__ = ["IndexBenchConfig", "run_index_bench"]

BATCH = 256  # POST /v1/tx/batch maximum


@dataclass(frozen=True, slots=True)
class IndexBenchConfig:
    txs: int = 20_000
    users: int = 64
    audit_every: int = 100
    seed: int = 1


async def _build_chain(net: Testnet, txs: int, rng: random.Random) -> int:
    keys = load_accounts(net.accounts_path)
    users = sorted(a for a in keys if a.startswith("user-"))
    async with AsyncLedgerClient(net.api_url(0), timeout=120) as c:
        expiry = await c.head_height() + 10_000
        nonce = rng.randrange(1 << 40) << 20
        raws = []
        for _ in range(txs):
            sender, recipient = rng.sample(users, 2)
            nonce += 1
            raws.append(signed_transfer(net.chain_id, sender, keys[sender], recipient, nonce, expiry))
        last_id = ""
        for i in range(0, len(raws), BATCH):
            while True:
                results = await c.submit_batch(raws[i : i + BATCH])
                if all(r["code"] in (0, 3302) or r.get("duplicate") for r in results):
                    last_id = results[-1]["tx_id"]
                    break
                await asyncio.sleep(0.2)  # the mempool is full (3300): let blocks drain it, then resubmit
        while True:  # the last one committed: every earlier one did (one node, FIFO mempool) or was refused
            with contextlib.suppress(LedgerClientError):  # not known yet (between the mempool and the store)
                if (await c.tx(last_id)).get("status") == "committed":
                    break
            await asyncio.sleep(0.2)
        return await c.head_height()


def _cpu_seconds(pid: int | None, reaped_children: bool = False) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), with those of its exited, reaped children (for
    the PostgreSQL postmaster: the backends that ended), 0.0 when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _postmaster_pid(pg: PgCluster) -> int | None:
    try:
        return int((pg.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_index_bench(config: IndexBenchConfig, directory: str | None = None) -> dict[str, Any]:
    rng = random.Random(config.seed)
    root = Path(directory or tempfile.mkdtemp(prefix="ledger-bench-index-"))
    net = Testnet.create(
        str(root / "net"),
        1,
        chain_id="testnet-bench-index",
        users=config.users,
        seed=b"bench-index",
        params=ChainParams(base_timeout_ms=2000, empty_block_interval_ms=1000),
    )
    try:
        net.up(90)
        t_build = time.monotonic()
        head = asyncio.run(_build_chain(net, config.txs, rng))
        build_s = time.monotonic() - t_build
        with PgCluster() as pg:
            load_before = os.getloadavg()
            indexer = Indexer(
                IndexerConfig(
                    net.api_url(0),
                    pg.dsn,
                    load_genesis(net.genesis_path),
                    audit_every=config.audit_every,
                    until_height=head,
                    status=lambda line: None,
                )
            )
            node_pid, pg_pid = net.pid(0), _postmaster_pid(pg)
            t0, cpu0 = time.monotonic(), time.process_time()
            node0, pg0 = _cpu_seconds(node_pid), _cpu_seconds(pg_pid, True)
            asyncio.run(indexer.run())  # its connection (the backend) ends with it: counted in the postmaster's
            seconds, cpu = time.monotonic() - t0, time.process_time() - cpu0
            node_cpu = _cpu_seconds(node_pid) - node0
            pg_cpu = 0.0
            for _ in range(50):  # the backend ends after the connection closes; the postmaster then reaps it
                pg_cpu = _cpu_seconds(pg_pid, True) - pg0
                if pg_cpu > 0:
                    break
                time.sleep(0.1)
            load_after = os.getloadavg()
            import psycopg

            with psycopg.connect(pg.dsn) as conn:
                n_tx = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]  # type: ignore[index]
                n_moves = conn.execute("SELECT count(*) FROM balance_movements").fetchone()[0]  # type: ignore[index]
    finally:
        net.kill_all()
    return {
        "bench": "index",
        "command": f"ledger bench index --txs {config.txs} --users {config.users} --audit-every {config.audit_every}",
        "blocks": head,
        "transactions": n_tx,
        "balance_movements": n_moves,
        "index_seconds": round(seconds, 3),
        "tx_per_s": round(n_tx / seconds, 1),
        "blocks_per_s": round(head / seconds, 1),
        "indexer_cpu_seconds": round(cpu, 3),  # this process only (not the node, not PostgreSQL)
        "tx_per_indexer_cpu_s": round(n_tx / cpu, 1),
        "node_cpu_seconds": round(node_cpu, 3),  # the validator process serving the reads, during the indexing
        "postgres_cpu_seconds": round(pg_cpu, 3),  # the postmaster and its ended backends (the indexer's session)
        "tx_per_cpu_s_all_three": round(n_tx / max(1e-9, cpu + node_cpu + pg_cpu), 1),
        "audits": indexer.audits,
        "chain_build_seconds": round(build_s, 1),
        "chain_tx_per_s_while_building": round(n_tx / build_s, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }
