"""Acceptance: a 4-validator network of real `ledger node run` processes on loopback.

One network for the whole module (tests run in file order and build on each other): commits with equal state roots,
kill -9 of the leader and of a follower with restart and catch-up, all four killed and restarted, a wiped node
rejoining from scratch and voting again in its epoch, SIGTERM shutting a node down cleanly, a 2|2 partition (transport fault injection) that stops
commits without a fork and heals, and a validator in the Byzantine test mode (equivocating proposals and votes)
whose evidence is recorded without a fork. Every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request

import pytest

from consensus.messages import CommitCertificate
from consensus.validators import bitmap_indexes
from node.validator.config import load_config, write_config
from tests.node.tools.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = Cluster(str(tmp_path_factory.mktemp("net")), 4)
    c.start_all()
    try:
        yield c
    finally:
        c.stop_all()


def _commit_some(c: Cluster, via: int, count: int, nodes: list[int]) -> None:
    before = max(c.height(i) for i in nodes)
    ids = c.submit(via, count)
    assert len(set(ids)) == count
    # Two more blocks after everything was admitted: the transactions are committed by then (or the pool is
    # non-empty, which the status shows).
    c.wait(
        lambda: all((s := c.status(i)) is not None and s["mempool"] == 0 for i in nodes),
        30,
        "the submitted transactions to commit",
    )
    c.wait_height(nodes, before + 2, 20)


def test_network_commits_with_equal_state_roots(cluster: Cluster) -> None:
    c = cluster
    c.wait_height([0, 1, 2, 3], 2, 40)
    _commit_some(c, 0, 40, [0, 1, 2, 3])
    common = c.assert_same_roots([0, 1, 2, 3])
    assert common >= 3
    # The transactions are in blocks: some block above 0 carries them.
    total = sum(c.request(0, {"op": "block", "height": h})["tx_count"] for h in range(1, common + 1))
    assert total >= 40


def _leader(c: Cluster) -> int:
    status = c.status(0)
    assert status is not None and status["round"] is not None
    return status["round"] % c.n


@pytest.mark.parametrize("who", ["leader", "follower"])
def test_kill_9_then_restart_catches_up(cluster: Cluster, who: str) -> None:
    c = cluster
    victim = _leader(c) if who == "leader" else (_leader(c) + 2) % c.n
    c.kill(victim)
    others = [i for i in range(c.n) if i != victim]
    via = others[0]
    start = max(c.height(i) for i in others)
    _commit_some(c, via, 20, others)
    c.wait_height(others, start + 3, 30)
    c.start(victim)
    target = max(c.height(i) for i in others)
    c.wait_height([victim], target, 40)
    # It takes part again: the network keeps committing with everyone.
    _commit_some(c, victim, 10, list(range(c.n)))
    c.assert_same_roots(list(range(c.n)))


def test_all_four_killed_then_resume(cluster: Cluster) -> None:
    c = cluster
    before = max(c.height(i) for i in range(c.n))
    for i in range(c.n):
        c.kill(i)
    c.start_all()
    c.wait_height(list(range(c.n)), before + 3, 60)
    _commit_some(c, 1, 10, list(range(c.n)))
    c.assert_same_roots(list(range(c.n)))


def test_sigterm_stops_cleanly_and_restarts(cluster: Cluster) -> None:
    c = cluster
    assert c.terminate(2) == 0
    c.start(2)
    target = max(c.height(i) for i in (0, 1, 3))
    c.wait_height([2], target, 40)
    c.assert_same_roots(list(range(c.n)))


def test_partition_2_2_stops_commits_without_fork_and_heals(cluster: Cluster) -> None:
    c = cluster
    groups = [[0, 1], [2, 3]]
    for group, other in (groups, groups[::-1]):
        for i in group:
            assert c.request(i, {"op": "fault", "action": "block", "peers": [f"node-{j}" for j in other]})["ok"]
    try:
        time.sleep(2.0)  # a commit already in flight may still land
        frozen = [c.height(i) for i in range(c.n)]
        c.submit(0, 5)
        c.submit(2, 5)
        time.sleep(4.0)
        # No side has a quorum (3 of 4): no new height anywhere, so nothing can fork (a node may still learn,
        # from its side, of a commit made before the partition).
        assert max(c.height(i) for i in range(c.n)) == max(frozen)
    finally:
        for i in range(c.n):
            c.request(i, {"op": "fault", "action": "unblock"})
    c.wait_height(list(range(c.n)), max(frozen) + 2, 60)
    c.wait(lambda: all((s := c.status(i)) is not None and s["mempool"] == 0 for i in range(c.n)), 30,
           "the transactions submitted during the partition to commit")
    c.assert_same_roots(list(range(c.n)))


def test_equivocating_validator_causes_no_fork_and_is_recorded(cluster: Cluster) -> None:
    c = cluster
    byz = 3
    path = c.config_path(byz)
    honest_config = load_config(path)
    assert c.terminate(byz) == 0
    write_config(path, dataclasses.replace(honest_config, byzantine="equivocate"))
    try:
        c.start(byz)
        start = max(c.height(i) for i in range(c.n))
        c.wait_height([byz], start, 40)
        # Rounds rotate leaders: within a few rounds node 3 leads and votes; its twins reach the honest nodes.
        _commit_some(c, 0, 20, [0, 1, 2])
        c.wait(lambda: sum((c.status(i) or {}).get("evidence", 0) for i in range(3)) > 0, 40,
               "equivocation evidence on an honest node")
        _commit_some(c, 1, 10, [0, 1, 2])
        c.assert_same_roots(list(range(c.n)))
    finally:
        if c.running(byz):
            c.kill(byz)
        write_config(path, honest_config)


def _signers_of_certificates(c: Cluster, via: int, lo: int, hi: int) -> dict[int, set[int]]:
    """Height -> the validator indexes that signed the QCs of its commit certificate (GET /v1/blocks/{height})."""
    out: dict[int, set[int]] = {}
    for height in range(lo, hi + 1):
        with urllib.request.urlopen(f"{c.net.api_url(via)}/v1/blocks/{height}", timeout=10) as answer:
            body = json.loads(answer.read())
        if body.get("certificate"):
            cert = CommitCertificate.decode(bytes.fromhex(body["certificate"]))
            out[height] = {i for qc in (cert.headers[1].qc, cert.qc) for i in bitmap_indexes(qc.signers)}
    return out


def test_wiped_node_rejoins_and_votes_again_in_its_epoch(cluster: Cluster) -> None:
    """Runs last in this module: a validator's data directory is wiped while the network runs. Restarted, it
    catches up from scratch (through blocks of hundreds of transfers), finds its safety state lost, recovers it from the others' signed statements
    (docs/consensus.md §13) and votes again in the same epoch: certificates committed after its recovery carry its
    signature. State roots agree everywhere."""
    c = cluster
    c.wait_height([i for i in range(c.n) if c.running(i)], 2, 40)
    # Blocks of hundreds of transactions for node 3 to catch up through (block sync executes each block with its
    # verified certificate, so without checking the signatures the certified root vouches for).
    raws = [c.transfer(k).hex() for k in range(1200)]
    assert c.request(1, {"op": "submit_many", "txs": raws}, timeout=60)["codes"] == [0] * len(raws)
    c.wait(lambda: all((s := c.status(i)) is not None and s["mempool"] == 0 for i in range(c.n) if c.running(i)),
           60, "the bulk of transfers to commit")
    if c.running(3):
        c.kill(3)
    epoch = c.status(0)["epoch"]
    c.wipe(3)
    c.start(3)
    target = max(c.height(i) for i in range(3))
    c.wait_height([3], target, 60)
    # It caught up through multi-block batches: blocks were executed while the one before them was written.
    metrics = c.request(3, {"op": "metrics"})["text"]
    ahead = [line.split()[-1] for line in metrics.splitlines()
             if line.startswith("ledger_sync_blocks_executed_ahead_total")]
    assert ahead and float(ahead[0]) > 0, "no block was executed ahead during the catch-up"
    # Every block came with its certificate and every signature in them was valid: none was checked again.
    certified = {line.split('"')[1]: float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith("ledger_sync_certified_blocks_executed_total{")}
    assert certified.get("skipped", 0) > 0 and "rechecked" not in certified, certified
    with open(c.log_path(3), encoding="utf-8") as f:
        assert "sync_execute_ahead_failed" not in f.read()
    c.wait(lambda: (s := c.status(3)) is not None and s["mode"] == "consensus" and s["round"] is not None
           and not s["safety_lost"], 60, "node 3 to recover its safety state")
    with urllib.request.urlopen(f"{c.net.api_url(0)}/v1/validators", timeout=10) as answer:
        names = [v["name"] for v in json.loads(answer.read())["validators"]]
    me = names.index(c.status(3)["node_id"])
    rejoined = max(c.height(i) for i in range(c.n))
    signed: list[int] = []
    for _ in range(6):  # a QC holds the first 3 of 4 votes: node 3's is in most of them, not in every one
        _commit_some(c, 0, 5, list(range(c.n)))
        certificates = _signers_of_certificates(c, 0, rejoined + 3, c.height(0))
        signed = [h for h, signers in certificates.items() if me in signers]
        if signed:
            break
    assert signed, f"no certificate above height {rejoined + 2} carries node 3's vote"
    assert all(c.status(i)["epoch"] == epoch for i in range(c.n)), "still the epoch it was wiped in"
    _commit_some(c, 3, 10, list(range(c.n)))
    c.assert_same_roots(list(range(c.n)))
