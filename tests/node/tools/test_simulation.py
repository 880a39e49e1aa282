"""The whole node under deterministic simulation (node/tools/simulation/): real Applications, LevelDB stores, block
sync, epochs and validator drivers over a simulated network and clock. A short run of seeds in CI (the long one is
`-m soak`), determinism (same seed, same run, whatever the hash seed), and proof that the invariants can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from node.cli import main
from node.tools.simulation.run import NodeSimConfig, run_seed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _simulate(capsys, *args: str) -> dict:
    code = main(["simulate", "--app", "--json", *args])
    summary = json.loads(capsys.readouterr().out)
    assert code == (1 if summary["failed_seeds"] else 0)
    return summary


def test_seeds_with_a_byzantine_validator_crashes_wipes_and_reconfiguration_keep_every_invariant(capsys) -> None:
    summary = _simulate(capsys, "--seeds", "8", "--seed-start", "0", "--nodes", "4", "--byzantine", "1",
                        "--jobs", "2")
    assert summary["failures"] == [] and summary["runs"] == 8
    counters = summary["counters"]
    # The runs exercised what they claim to: faults, epochs, clients, catch-up; and the checks ran.
    assert counters["crashes"] > 0 and counters["wipes"] > 0 and counters["partitions"] > 0
    assert summary["epoch_changes"] > 0 and counters["proposals_executed"] > 0 and counters["sync_blocks"] > 0
    assert counters["submitted_transfer"] > 0 and counters["submitted_hold"] > 0 and counters["submitted_issue"] > 0
    assert counters["heights_checked"] > 0 and counters["acknowledged_checked"] > 0 and counters["supply_audits"] > 0
    assert summary["evidence"] > 0  # Byzantine equivocation or double votes were seen and reported


def test_validator_wipes_and_skewed_clocks_within_the_fault_budget(capsys) -> None:
    summary = _simulate(capsys, "--seeds", "4", "--seed-start", "100", "--nodes", "4", "--byzantine", "0",
                        "--jobs", "2")
    assert summary["failures"] == []
    assert summary["counters"]["wiped_validators"] > 0 and summary["counters"]["skewed_far"] > 0


@pytest.mark.soak
def test_a_thousand_seeds(capsys) -> None:
    summary = _simulate(capsys, "--seeds", "1000", "--seed-start", "0", "--nodes", "4", "--byzantine", "1",
                        "--jobs", "2")
    assert summary["failures"] == [] and summary["runs"] == 1000


def test_the_same_seed_gives_the_same_run_whatever_the_hash_seed() -> None:
    """Every block id and state root of every height, and every counter, are equal across runs of one seed, also
    in processes with different PYTHONHASHSEED (no set or dict order of strings leaks into a run)."""
    probe = ("import json, logging; logging.disable(50); from node.tools.simulation.run import NodeSimConfig, run_seed;"
             "r = run_seed(NodeSimConfig(seed=3, byzantine=1)); print(json.dumps([r.digest, r.counters]))")
    # Two processes with different hash seeds run while this one runs the same seed (3 runs, 2 cores).
    runs = [subprocess.Popen([sys.executable, "-c", probe], cwd=ROOT, env=dict(os.environ, PYTHONHASHSEED=hash_seed),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for hash_seed in ("1", "2")]
    try:
        first = run_seed(NodeSimConfig(seed=3, byzantine=1))
        outputs = set()
        for run in runs:
            out, err = run.communicate(timeout=300)
            assert run.returncode == 0, err[-4000:]
            outputs.add(out.strip())
    finally:
        for run in runs:
            run.kill()
    assert first.ok and first.counters["heights_checked"] > 0
    assert outputs == {json.dumps([first.digest, first.counters])}


def test_the_checks_catch_a_node_that_forgets_its_votes(monkeypatch) -> None:
    """Plant a bug -- the safety store's PersistSafety writes nothing, so a restarted validator forgets what it
    signed -- and the simulator reports a double signature with the command that replays it."""
    from node.validator.safety_store import SafetyStore

    monkeypatch.setattr(SafetyStore, "persist", lambda self, state, blocks, committed_height: None)
    failed = []
    for seed in range(40):
        result = run_seed(NodeSimConfig(seed=seed, byzantine=0, all_restart=True, reconfig=False))
        if result.safety_violations:
            failed.append(result)
            break
    assert failed, "40 seeds of crash-restarts with forgetful validators and not one double signature found"
    assert any("DOUBLE SIGN" in v for v in failed[0].safety_violations)
    assert failed[0].config.command().startswith("ledger simulate --app --seeds 1 --seed-start ")


QUIET = {"byzantine": 0, "crashes": False, "wipes": False, "partitions": False, "skew": False, "reconfig": False}


def test_the_checks_catch_a_store_that_disagrees(monkeypatch) -> None:
    """Plant a bug -- node-1's store answers another state root for height 5 -- and the end-of-run check of every
    stored height reports the disagreement."""
    from ledger.store import LedgerStore

    real = LedgerStore.state_root_at

    def wrong_at_5(self, height):
        return bytes(32) if height == 5 and self.path.endswith("node-1/ledger") else real(self, height)

    monkeypatch.setattr(LedgerStore, "state_root_at", wrong_at_5)
    result = run_seed(NodeSimConfig(seed=1, **QUIET))
    assert any("AGREEMENT at rest: node-1" in v for v in result.safety_violations), result.safety_violations


def test_the_checks_catch_a_node_that_halts(monkeypatch) -> None:
    """Plant a bug -- node-2 finds the certified root of height 6 wrong -- and the simulator reports the halt."""
    from node.chain.execution import Executor
    from node.errors import NodeError

    real = Executor.finalize

    def refusing(self, block, cert):
        if block.header.height == 6 and self.store.path.endswith("node-2/ledger"):
            raise NodeError("state_root_mismatch", "planted")
        return real(self, block, cert)

    monkeypatch.setattr(Executor, "finalize", refusing)
    result = run_seed(NodeSimConfig(seed=1, **QUIET))
    assert any("node-2 halted: state_root_mismatch" in v for v in result.safety_violations), result.safety_violations


def test_the_recovery_check_catches_a_wiped_node_that_signs_below_its_old_rounds() -> None:
    """The node simulator's RECOVERY check (docs/consensus.md §13): once a machine is wiped, a vote, timeout or
    proposal of an epoch it signed in before, at or below the highest round it signed there, is a violation; a vote
    above it counts as voting again in the epoch."""
    from types import SimpleNamespace

    from consensus.messages import QuorumCert, Timeout, Vote, encode_message
    from node.net.messages import CH_CONSENSUS
    from node.tools.simulation.checks import Checks

    checks = Checks(None, lambda: 0)  # type: ignore[arg-type]
    machine = SimpleNamespace(node_id="node-3")

    def send(message: object) -> None:
        checks.outgoing(machine, bytes((CH_CONSENSUS,)) + encode_message(message))  # type: ignore[arg-type]

    def vote(round_: int, epoch: int = 0) -> Vote:
        return Vote(epoch, round_, bytes([round_]) * 32, bytes(32), 3, bytes(96))

    qc = QuorumCert(0, 4, bytes(32), bytes(32), b"\xe0", bytes(96))
    send(vote(5))
    send(Timeout(0, 6, qc, None, 3, bytes(96)))  # the highest round it signed in: 6 (a timeout)
    assert checks.violations == []
    checks.wiped(machine)  # type: ignore[arg-type]
    send(vote(6))
    assert len(checks.violations) == 1 and "RECOVERY" in checks.violations[0]
    send(vote(3, epoch=1))  # another epoch: nothing signed there before the wipe
    send(vote(7))
    assert len(checks.violations) == 1 and checks.counters["wiped_voted_again_in_epoch"] == 1
