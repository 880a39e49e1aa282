"""A 4-validator testnet under transfer load plus the holds-and-freezes story, a throwaway PostgreSQL, and
`ledger index` run as a process that the test kills, together with PostgreSQL, at random moments."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from node.chain.genesis import ChainParams
from node.indexer.pgcluster import PgCluster
from node.tools.load import TransferLoad
from node.tools.testnet import Testnet
from tests.node.indexer.chain_story import change_params, pay_coupon, play_story


@dataclass
class IndexedChain:
    net: Testnet
    pg: PgCluster
    node: int  # the node the indexer follows
    height: int  # indexed up to here (the chain is quiet above it: no balance changes)
    holds: dict[str, str]
    kills: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def url(self) -> str:
        return self.net.api_url(self.node)


def start_indexer(net: Testnet, node: int, dsn: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`ledger index` as a process (the DSN in its environment), appending its output to `log`."""
    command = [sys.executable, "-m", "node.cli", "index", "--node", net.api_url(node), "--genesis", net.genesis_path,
               "--audit-every", "10", "--audit-sample", "8", *extra]  # fmt: skip
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=dict(os.environ, LEDGER_INDEX_DSN=dsn), stdout=out, stderr=out)


def checkpoint(pg: PgCluster) -> int:
    """The indexed height (-1 before the first seed, or while PostgreSQL does not answer)."""
    try:
        with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
            row = conn.execute("SELECT height FROM indexer_checkpoint").fetchone()
    except psycopg.Error:
        return -1
    return -1 if row is None else int(row[0])


def wait_checkpoint_beyond(pg: PgCluster, height: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = checkpoint(pg)
        if now > height:
            return now
        time.sleep(0.1)
    raise AssertionError(f"the indexer did not get past height {height} within {timeout} s")


def run_indexed_chain(directory: Path, pg: PgCluster, *, rounds: int, rate: int, seed: int) -> IndexedChain:
    """Build the network, index it while killing the indexer and PostgreSQL `rounds` times, then index to the quiet
    head with a last, clean run. The network is left running (the caller kills it)."""
    rng = random.Random(seed)
    net = Testnet.create(
        str(directory / "net"),
        4,
        chain_id="testnet-indexer",
        users=8,
        seed=b"indexer",
        params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=200),
    )
    net.up(90)
    node = 1
    log = directory / "indexer.log"
    load = TransferLoad(net, rate, rng)
    chain = IndexedChain(net, pg, node, 0, {})
    proc = start_indexer(net, node, pg.dsn, log)
    try:
        load.start()
        chain.holds = asyncio.run(play_story(net.api_url(0), net.chain_id, net.accounts_path))
        asyncio.run(change_params(net.api_url(2), net))
        asyncio.run(pay_coupon(net.api_url(3), net.chain_id, net.accounts_path))
        for _ in range(rounds):
            # A random moment while the indexer is working: once it has written a block more (the machine may be
            # slow: wait for that, with a generous bound), then a random pause.
            wait_checkpoint_beyond(pg, checkpoint(pg), 180)
            time.sleep(rng.uniform(0.0, 1.5))
            victim = rng.choice(("indexer", "postgres", "both"))
            chain.kills.append(victim)
            if victim in ("indexer", "both"):
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
            if victim in ("postgres", "both"):
                pg.stop("immediate")  # like a crash: in-flight transactions are lost, recovery from the WAL
                time.sleep(rng.uniform(0.1, 1.0))
                pg.start()
            if victim in ("indexer", "both"):
                proc = start_indexer(net, node, pg.dsn, log)
        # The node the indexer follows goes away (kill -9) and comes back: the indexer retries, then resumes.
        wait_checkpoint_beyond(pg, checkpoint(pg), 180)
        net.kill(node)
        chain.kills.append("node")
        time.sleep(rng.uniform(0.5, 1.5))
        net.start(node)
        net.wait_up(120, [node], min_height=0)
        wait_checkpoint_beyond(pg, checkpoint(pg), 180)
        load.finish()
        time.sleep(1.0)  # let the last admitted transfers commit
        chain.height = net.height(node)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        final = start_indexer(net, node, pg.dsn, log, "--until-height", str(chain.height))
        rc = final.wait(300)
        chain.log = log.read_text(errors="replace")
        assert rc == 0, chain.log[-3000:]
        return chain
    except BaseException:
        load.finish()
        if proc.poll() is None:
            proc.kill()
        net.kill_all()
        raise
