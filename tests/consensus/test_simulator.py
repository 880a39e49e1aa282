"""Cluster simulations: agreement, validity, certificates and liveness over many seeds and fault mixes. Seeds run
on both cores (tests/consensus/sim_pool.py) except where a test plants a bug with monkeypatch."""

from __future__ import annotations

import argparse
import json

import pytest

from consensus import simulator
from consensus.simulator import BEHAVIOURS, SimConfig, run_many, run_seed
from tests.consensus.sim_pool import merged


def _assert_clean(summary: dict) -> None:
    assert summary["safety_violations"] == 0, summary["failures"]
    assert summary["liveness_failures"] == 0, summary["failures"]
    assert summary["commits"] > 0


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_four_nodes_one_byzantine(behaviour, sim_pool):
    summary = sim_pool.run_many(16, seed_start=1000, nodes=4, byzantine=1, behaviours=(behaviour,))
    _assert_clean(summary)
    if behaviour in ("equivocate", "double_vote"):
        assert summary["evidence"] > 0, "equivocation must be detected and reported"


def test_four_nodes_crash_faults_and_partitions(sim_pool):
    _assert_clean(sim_pool.run_many(16, seed_start=2000, nodes=4, byzantine=0, all_restart=False))


def test_every_node_restarts_at_once(sim_pool):
    crash_only = sim_pool.submit(12, seed_start=3000, nodes=4, byzantine=0, all_restart=True)
    byzantine = sim_pool.submit(12, seed_start=3100, nodes=4, byzantine=1, all_restart=True)
    _assert_clean(merged(crash_only))
    _assert_clean(merged(byzantine))


def test_seven_nodes_two_byzantine(sim_pool):
    _assert_clean(sim_pool.run_many(10, seed_start=4000, nodes=7, byzantine=2))


def test_random_epoch_changes_with_byzantine_replicas(sim_pool):
    """Reconfiguration: each seed draws 1-3 epoch changes (add / remove a validator, rotate a BLS key) under the
    full fault mix; every epoch-change proof chains from the genesis set; nothing commits past an epoch's end."""
    four = sim_pool.submit(10, seed_start=5000, nodes=4, byzantine=1, reconfig=True)
    seven = sim_pool.submit(3, seed_start=6000, nodes=7, byzantine=2, reconfig=True)
    summary = merged(four)
    _assert_clean(summary)
    assert summary["epoch_changes"] >= 10
    _assert_clean(merged(seven))


def test_a_removed_validator_that_missed_the_end_of_its_epoch_catches_up():
    """Regression: seed 30011 removes validator 2 at the second change while it lags in epoch 1; the epoch-2
    replicas dropped its messages as from a non-validator and it never learned that epoch 1 had ended."""
    result = run_seed(SimConfig(seed=30011, nodes=4, byzantine=0, reconfig=True, all_restart=True))
    assert result.ok, (result.safety_violations, result.liveness_failures)
    assert result.epoch_changes == 2 and result.counters["epoch_change_learned"] >= 1


def test_reconfiguration_checks_detect_an_application_that_disagrees(monkeypatch):
    """Not vacuous: if one honest replica's application does not declare the epoch end, the run fails."""
    original = simulator.Simulation._next_set

    def forgetful(self, block):
        return original(self, block) if self.rng.random() < 0.5 else None

    monkeypatch.setattr(simulator.Simulation, "_next_set", forgetful)
    summary = run_many(4, seed_start=5000, nodes=4, byzantine=0, reconfig=True)
    assert summary["safety_violations"] + summary["liveness_failures"] >= 1


def test_runs_are_deterministic():
    a = run_seed(SimConfig(seed=77, nodes=4, byzantine=1))
    b = run_seed(SimConfig(seed=77, nodes=4, byzantine=1))
    assert (a.commits, a.rounds, a.virtual_ms, a.messages, a.counters) == (b.commits, b.rounds, b.virtual_ms,
                                                                          b.messages, b.counters)


def test_checks_detect_a_replica_that_forgets_its_safety_state(monkeypatch):
    """The simulator's checks are not vacuous: restarting replicas without their persisted state is caught."""
    boot = simulator.Simulation._boot

    def amnesiac_boot(self, node):
        node.disk.safety = None
        node.disk.blocks = {}
        return boot(self, node)

    monkeypatch.setattr(simulator.Simulation, "_boot", amnesiac_boot)
    summary = run_many(3, seed_start=0, nodes=4, byzantine=0, all_restart=True)
    assert summary["safety_violations"] >= 1
    assert summary["failed_seeds"]


def test_wiped_replicas_recover_and_vote_again_in_their_epoch(sim_pool):
    """Crashes before GST wipe the safety state (within the budget f - Byzantine), at any moment: in the middle of
    an action list too, right after a vote was persisted and before it was sent. Every wiped replica recovers in its
    epoch (consensus/recovery.py) and never signs in a round at or below one it signed in before the wipe."""
    four = sim_pool.submit(12, seed_start=2500, nodes=4, byzantine=0)
    seven = sim_pool.submit(3, seed_start=2600, nodes=7, byzantine=1)
    summary = merged(four)
    _assert_clean(summary)
    assert summary["recovery_wipes"] >= 4
    assert summary["recovery_wiped_recovered_in_epoch"] >= 4
    _assert_clean(merged(seven))


def test_the_recovery_check_catches_a_replica_that_resumes_too_low(monkeypatch):
    """Not vacuous: a recovery that resumes at the highest claim instead of above it (off by two) signs again in a
    round it signed in before the wipe, and the simulator says so."""
    from consensus import recovery

    monkeypatch.setattr(recovery.Recovery, "bound", property(
        lambda self: None if self.vs.power_of(list(self.claims)) < self.vs.quorum_power
        else max(max(self.claims.values(), default=0) - 1, 0)))
    monkeypatch.setattr(recovery, "resume_state", lambda epoch, bound, high_qc, high_tc: recovery.SafetyState(
        epoch, bound, high_qc.round, bound, high_qc, high_tc))
    summary = run_many(12, seed_start=2500, nodes=4, byzantine=0)
    assert summary["safety_violations"] >= 1
    assert any("RECOVERY" in v or "two votes" in v for f in summary["failures"] for v in f["safety"])


def test_simulate_command_prints_json(capsys):
    from node.cli import simulate

    parser = argparse.ArgumentParser(prog="ledger")
    simulate.register(parser.add_subparsers())
    args = parser.parse_args(["simulate", "--seeds", "3", "--nodes", "4", "--byzantine", "1", "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("runs", "safety_violations", "liveness_failures", "commits", "seconds"):
        assert key in out
    assert out["runs"] == 3 and out["safety_violations"] == 0 and out["liveness_failures"] == 0
    bad = parser.parse_args(["simulate", "--seeds", "1", "--nodes", "4", "--byzantine", "2"])
    assert bad.func(bad) == 2
    reconfig = parser.parse_args(["simulate", "--seeds", "2", "--seed-start", "500", "--reconfig", "--json"])
    assert reconfig.func(reconfig) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"] == 2 and out["epoch_changes"] >= 2 and out["safety_violations"] == 0


@pytest.mark.soak
@pytest.mark.parametrize("nodes,byzantine", [(4, 1), (7, 2), (10, 3)])
def test_soak(nodes, byzantine):
    _assert_clean(run_many(300, seed_start=10_000, nodes=nodes, byzantine=byzantine))


@pytest.mark.soak
@pytest.mark.parametrize("nodes,byzantine", [(4, 1), (4, 0), (7, 2)])
def test_soak_reconfiguration(nodes, byzantine):
    _assert_clean(run_many(200, seed_start=20_000, nodes=nodes, byzantine=byzantine, reconfig=True))


@pytest.mark.soak
def test_soak_wipes():
    """1,000 seeds with wiped replicas recovering in their epoch (docs/consensus.md §13): 0 double votes, 0 forks."""
    summary = run_many(1000, seed_start=50_000, nodes=4, byzantine=0)
    _assert_clean(summary)
    assert summary["recovery_wipes"] > 300
