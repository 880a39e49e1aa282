"""A signed read is valid at the node it is addressed to and nowhere else (docs/api.md 1.2-1.3), through real node
processes: the identical request that node-0 answers is refused by node-1 with AUTH_WRONG_NODE, not answered once
more within the window; the SDK addresses each node it talks to."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.api import errors as e
from node.api.auth import sign_request_headers
from node.chain.genesis import ChainParams
from node.client import AccountKey, LedgerClient
from node.tools.localnet import load_accounts
from node.tools.testnet import Testnet

USER = "user-0@m0"


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[Testnet]:
    net = Testnet.create(str(tmp_path / "net"), 2, chain_id="testnet-reads", users=2, seed=b"reads",
                         params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=200), open_reads=False)
    try:
        for i in range(2):
            net.start(i)
        net.wait_up(60)
        yield net
    finally:
        net.kill_all()


def get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_read_signed_for_node_0_is_refused_by_node_1(two_nodes: Testnet) -> None:
    net = two_nodes
    key = load_accounts(net.accounts_path)[USER]
    path = f"/v1/accounts/{USER}/balances"

    def signed_for(node_id: str, nonce: str) -> dict[str, str]:
        return sign_request_headers(lambda m: key.sign(m).signature, bytes(key.verify_key), chain_id="testnet-reads",
                                    node_id=node_id, account=USER, method="GET", path=path,
                                    timestamp=int(time.time()), nonce=nonce)

    assert [get(net.api_url(i) + "/v1/status", {})[1]["node_id"] for i in range(2)] == ["node-0", "node-1"]
    captured = signed_for("node-0", os.urandom(8).hex())
    status, body = get(net.api_url(0) + path, captured)
    assert status == 200 and body["balances"], body
    # The identical request at another node of the chain, within the window: refused, with its stable code.
    status, body = get(net.api_url(1) + path, captured)
    assert (status, body["code"], body["details"]) == (401, e.AUTH_WRONG_NODE, {"node_id": "node-1"}), body
    # Rewriting the node header does not help: the signature covers it.
    status, body = get(net.api_url(1) + path, {**captured, "X-Ledger-Node": "node-1"})
    assert (status, body["code"]) == (401, e.AUTH_BAD_SIGNATURE), body
    # At the node it was addressed to, a second send is a replay.
    status, body = get(net.api_url(0) + path, captured)
    assert (status, body["code"]) == (401, e.AUTH_REPLAYED), body
    # A request signed for node-1 is served by node-1.
    status, body = get(net.api_url(1) + path, signed_for("node-1", os.urandom(8).hex()))
    assert status == 200 and body["balances"], body
    # The SDK signs for whichever node it talks to.
    for i in range(2):
        with LedgerClient(net.api_url(i), AccountKey(USER, key)) as client:
            assert client.node_id() == f"node-{i}"
            assert client.balances(USER)["balances"]
