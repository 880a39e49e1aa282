"""One validator process of a fresh testnet, serving the HTTP API, for tests that need the real node process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from node.chain.genesis import ChainParams
from node.tools.testnet import Testnet


@contextlib.contextmanager
def one_node_testnet(directory: Path, name: str, *, open_reads: bool, empty_block_interval_ms: int,
                     users: int = 4) -> Iterator[Testnet]:
    """Create and start `testnet-<name>` (one validator) in `directory`; killed on exit."""
    net = Testnet.create(str(directory / "net"), 1, chain_id=f"testnet-{name}", users=users, seed=name.encode(),
                         params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=empty_block_interval_ms),
                         open_reads=open_reads)
    try:
        net.start(0)
        net.wait_up(30)
        yield net
    finally:
        net.kill_all()
