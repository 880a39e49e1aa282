"""Acceptance: a node joins a running network of real `ledger node run` processes by state sync, one validator
serving corrupted chunks (`[testing] byzantine = "corrupt_chunks"`), and then keeps the validators' state root at
every height; it prunes (`[pruning] keep_blocks`), so old block reads answer `pruned` while current reads and
custody statements work.

The default suite joins at a height of tens (snapshots every 15 heights); the soak version (`-m soak`) joins at a
height of thousands (snapshots every 500)."""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest

from node.chain.genesis import load_genesis
from node.chain.statement import verify_statement
from node.validator.config import load_config, write_config
from node.validator.keyfile import load_keys
from tests.node.tools.cluster import Cluster

VALIDATORS = [0, 1, 2, 3]
CORRUPT = 3


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _network(directory: str, interval: int, chunk_bytes: int, keep_blocks: int) -> tuple[Cluster, int]:
    """4 validators taking snapshots (node 3 corrupting the chunks it serves) and node 4, configured to join by
    state sync and to prune; the validators admit node 4's identity key ([p2p.peers])."""
    c = Cluster(directory, 4, chain_id="testnet-ssync")
    joiner = c.net.add_node()["index"]
    joiner_cfg = load_config(c.config_path(joiner))
    key = load_keys(joiner_cfg.keys_file).identity_key
    for i in VALIDATORS:
        cfg = load_config(c.config_path(i))
        cfg = dataclasses.replace(
            cfg,
            peer_addresses={**cfg.peer_addresses, joiner_cfg.node_id: joiner_cfg.p2p_listen},
            peer_keys={**cfg.peer_keys, joiner_cfg.node_id: key},
            snapshot_interval=interval,
            snapshot_chunk_bytes=chunk_bytes,
            byzantine="corrupt_chunks" if i == CORRUPT else None,
        )
        write_config(c.config_path(i), cfg)
    write_config(
        c.config_path(joiner),
        dataclasses.replace(joiner_cfg, state_sync=True, keep_blocks=keep_blocks, snapshot_interval=0),
    )
    return c, joiner


def _snapshot_heights(c: Cluster, i: int) -> list[int]:
    path = os.path.join(c.net.data_dir(i), "snapshots")
    return sorted(int(n) for n in os.listdir(path) if n.isdigit()) if os.path.isdir(path) else []


def _join_and_check(
    c: Cluster, joiner: int, interval: int, min_height: int, keep_blocks: int, timeout: float, wait_prune: bool
) -> None:
    c.start_all()
    c.wait_height(VALIDATORS, 2, 60)
    c.submit(0, 30)
    c.wait_height(VALIDATORS, min_height, timeout)
    c.wait(
        lambda: all(
            _snapshot_heights(c, i) and _snapshot_heights(c, i)[-1] >= min_height - interval for i in VALIDATORS
        ),
        60,
        "every validator to hold a recent snapshot",
    )
    assert len(_snapshot_heights(c, 0)) <= 2  # bounded on disk: snapshot_keep = 2
    c.net.start(joiner)
    log = c.net.log_path(joiner)

    def log_text() -> str:
        with open(log) as f:
            return f.read()

    c.wait(lambda: "state_sync_installed" in log_text(), 120, "the joiner to install a snapshot")
    text = log_text()
    installed = int(text.split("state_sync_installed height=")[1].split()[0])
    assert installed >= min_height - interval and installed % interval == 0
    # The corrupt peer was asked for chunks, caught (logged once, with the peer and the code), backed off.
    assert f"state_sync_refused peer={c.net.node_id(CORRUPT)} code=snapshot_chunk_invalid" in text
    assert text.count(f"state_sync_refused peer={c.net.node_id(CORRUPT)} code=snapshot_chunk_invalid") == 1
    # It follows: block sync from the snapshot height, then commits with the validators.
    c.submit(1, 20)
    target = max(c.height(i) for i in VALIDATORS) + 5
    c.wait(lambda: c.height(joiner) >= target, 120, f"the joiner to reach {target}")
    common = min(c.height(i) for i in [*VALIDATORS, joiner])
    reference = c.roots(0, installed, common)
    assert len(reference) == common - installed + 1
    # Equal state root at every height since the snapshot that the joiner still keeps (it prunes: with keep_blocks
    # well above the catch-up distance, that is every one of them).
    kept = {int(h): r for h, r in c.roots(joiner, installed, common).items()}
    assert kept and sorted(kept) == list(range(min(kept), common + 1)), sorted(kept)
    assert all(reference[str(h)] == r for h, r in kept.items())
    if keep_blocks >= common - installed + 1:
        assert min(kept) == installed

    # Pruning: below what the joiner keeps, `pruned` and the lowest height kept; current reads and statements work.
    api = c.net.api_url(joiner)
    status, body = _get(f"{api}/v1/blocks/1")
    assert status == 410 and body["details"]["reason"] == "pruned", body
    assert body["details"]["kept_from"] >= installed
    status, node_status = _get(f"{api}/v1/status")  # what the node keeps is in its status too
    assert status == 200 and node_status["node"]["kept_from"] >= installed, node_status
    assert _get(f"{c.net.api_url(0)}/v1/status")[1]["node"]["kept_from"] == 0  # an archive validator keeps all
    if wait_prune:
        c.wait(
            lambda: _get(f"{api}/v1/blocks/{installed}")[0] == 410,
            60 + 2 * keep_blocks,
            "the joiner to prune the blocks above its snapshot",
        )
    head = c.height(joiner)
    status, block = _get(f"{api}/v1/blocks/{head}")
    assert status == 200 and block["header"]["height"] == head
    user = c.users[0]
    status, balance = _get(f"{api}/v1/accounts/{user}/balances")
    assert status == 200, balance
    status, statement = _get(f"{api}/v1/accounts/{user}/statement")
    assert status == 200, statement
    verdict = verify_statement(statement, load_genesis(c.net.genesis_path))
    assert verdict.ok, verdict
    status, old = _get(f"{api}/v1/accounts/{user}/statement?height=1")
    assert status == 410 and old["details"]["reason"] == "pruned"
    status, stream = _get(f"{api}/v1/events/sse?from_height=1")
    assert status == 410 and stream["details"]["reason"] == "pruned", stream
    # The validators never noticed anything but a node that joined and left.
    c.net.kill(joiner)
    c.submit(2, 5)
    c.wait_height(VALIDATORS, c.height(0) + 3, 30)
    common = min(c.height(i) for i in VALIDATORS)
    window = c.roots(0, max(0, common - 200), common)  # the admin socket answers at most 1000 roots at a time
    assert window and all(c.roots(i, max(0, common - 200), common) == window for i in VALIDATORS[1:])


def test_a_node_joins_by_state_sync_past_a_corrupt_peer_and_prunes(tmp_path: Any) -> None:
    c, joiner = _network(str(tmp_path / "net"), interval=15, chunk_bytes=1024, keep_blocks=32)
    try:
        _join_and_check(c, joiner, interval=15, min_height=40, keep_blocks=32, timeout=120, wait_prune=True)
    finally:
        c.net.kill_all()


@pytest.mark.soak
def test_a_node_joins_by_state_sync_at_a_height_of_thousands(tmp_path: Any) -> None:
    c, joiner = _network(str(tmp_path / "net"), interval=500, chunk_bytes=1024, keep_blocks=1000)
    try:
        _join_and_check(c, joiner, interval=500, min_height=2100, keep_blocks=1000, timeout=1800, wait_prune=False)
    finally:
        c.net.kill_all()
