"""On a node without open reads (a consortium node), the indexer's private reads (block changes, state proofs) need
an auditor's key: without one it stops at once with `indexer_node_refused`; with the admin account's key (auditor
role) it indexes and audits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.chain.genesis import load_genesis
from node.client.keys import AccountKey
from node.indexer import errors as x
from node.indexer.errors import IndexerError
from node.indexer.pgcluster import PgCluster
from node.indexer.run import Indexer, IndexerConfig
from node.tools.localnet import ADMIN_ACCOUNT, load_accounts
from node.tools.testnet import Testnet
from tests.node.api.live_node import one_node_testnet


@pytest.fixture(scope="module")
def closed_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    with one_node_testnet(
        Path(tmp_path_factory.mktemp("signed")), "indexer-signed", open_reads=False, empty_block_interval_ms=100
    ) as net:
        net.wait_height([0], 6, 60)
        yield net


def test_private_reads_need_an_auditor_key(closed_net: Testnet) -> None:
    genesis = load_genesis(closed_net.genesis_path)
    admin = AccountKey.from_seed(ADMIN_ACCOUNT, bytes(load_accounts(closed_net.accounts_path)[ADMIN_ACCOUNT]))
    with PgCluster() as pg:
        lines: list[str] = []
        unsigned = IndexerConfig(closed_net.api_url(0), pg.dsn, genesis, until_height=5, status=lines.append)
        with pytest.raises(IndexerError) as info:
            asyncio.run(Indexer(unsigned).run())
        assert info.value.code == x.NODE_REFUSED and "height 1:" in str(info.value) and "3200" in str(info.value)
        signed = IndexerConfig(
            closed_net.api_url(0), pg.dsn, genesis, admin, audit_every=2, until_height=5, status=lines.append
        )
        indexer = Indexer(signed)
        assert asyncio.run(indexer.run()) == 5
        assert indexer.audits >= 2
