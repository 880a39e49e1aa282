"""`ledger bench --down N`: a real 4-validator network under a closed-loop load, healthy, with one validator killed,
and with it restarted; the report holds the three phases side by side. Numbers are not asserted beyond "the network
kept committing": no timing assertions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from node.cli import main


def test_bench_down_one_of_four_reports_the_phases_side_by_side(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "down.json"
    before = set(os.listdir("/tmp"))
    code = main(["bench", "--nodes", "4", "--down", "1", "--duration", "4", "--warmup", "1", "--clients", "4",
                 "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["validators"] == 4 and doc["down"] == 1 and doc["killed"] == [3]
    for phase in ("healthy", "degraded", "recovered"):
        for key in ("tps", "blocks_per_s", "committed", "p50_ms", "p99_ms", "max_ms", "blocks_each_second",
                    "committed_each_second", "by_validator", "timer_fired", "rounds_by_tc", "cpu_s_by_validator"):
            assert key in doc[phase], (phase, key)
    # Every validator running at the end of a phase has its CPU seconds; the killed one none in the degraded phase.
    assert doc["degraded"]["cpu_s_by_validator"]["3"] is None
    assert all(v is not None and v > 0 for v in doc["recovered"]["cpu_s_by_validator"].values())
    # The clients sent nothing to the killed validator while it was down.
    assert "3" not in doc["degraded"]["by_validator"]
    assert "back_to_healthy_s" in doc and doc["routed_to_restarted"] == "once back at the head"
    # One validator of four down does not stop the consortium.
    assert doc["healthy"]["committed"] > 0 and doc["degraded"]["committed"] > 0
    assert doc["degraded"]["blocks_per_s"] > 0
    assert set(doc["degraded_vs_healthy"]) == {"tps", "blocks_per_s"}
    assert doc["rejoined_head_s"] is not None
    assert doc["command"].startswith("ledger bench --nodes 4 --down 1")
    created = [d for d in set(os.listdir("/tmp")) - before if d.startswith("ledger-bench-down-")]
    assert created == []


def test_bench_down_refuses_more_than_f(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(os.listdir("/tmp"))
    assert main(["bench", "--nodes", "4", "--down", "2", "--duration", "1"]) == 1
    assert "--down must be 1..f = 1" in capsys.readouterr().err
    assert not [d for d in set(os.listdir("/tmp")) - before if d.startswith("ledger-bench-down-")]


# ---------------------------------------------------------------------------------------------------------------
# The recovered phase: when the clients send to a restarted validator, and when the network is back to healthy.


class _Net:
    """A stand-in for the testnet: validator 3 reports `modes` one after the other (then the last), at the head."""

    n = 4

    def __init__(self, modes: list[str], excluded: set[int]) -> None:
        self.modes, self.excluded, self.routed_while = modes, excluded, []

    def running(self, i: int) -> bool:
        return False

    def pid(self, i: int) -> int | None:
        return None

    def height(self, i: int) -> int:
        return 100

    def node_status(self, i: int) -> dict[str, object] | None:
        mode = self.modes.pop(0) if len(self.modes) > 1 else self.modes[0]
        self.routed_while.append((mode, 3 not in self.excluded))
        return None if mode == "down" else {"mode": mode, "height": 100}


def test_a_restarted_validator_gets_clients_only_once_it_is_back_in_consensus() -> None:
    from node.tools.bench_degraded import Phase, _measure

    load = SimpleNamespace(excluded=set(), done=[])
    net = _Net(["down", "starting", "syncing", "syncing", "consensus"], load.excluded)
    rejoined = _measure(net, load, Phase("recovered"), 3.0, 0, None, rejoining=[3], route_when_ready=True)
    assert rejoined is not None
    # Asked while down, starting or syncing: no client sent to it; back in consensus at the head: it gets clients.
    assert [routed for mode, routed in net.routed_while if mode != "consensus"] == [False] * 4
    assert 3 not in load.excluded


def test_without_readiness_the_clients_send_to_it_from_its_restart() -> None:
    from node.tools.bench_degraded import Phase, _measure

    load = SimpleNamespace(excluded=set(), done=[])
    net = _Net(["syncing", "syncing", "consensus"], load.excluded)
    _measure(net, load, Phase("recovered"), 1.0, 0, None, rejoining=[3], route_when_ready=False)
    assert all(routed for _, routed in net.routed_while)


def test_serving_needs_consensus_mode_within_two_blocks_of_the_head() -> None:
    from node.tools.bench_degraded import _serving

    class Net:
        def __init__(self, status: dict[str, object] | None) -> None:
            self.status = status

        def node_status(self, i: int) -> dict[str, object] | None:
            return self.status

    assert _serving(Net({"mode": "consensus", "height": 98}), 3, 100)
    assert not _serving(Net({"mode": "consensus", "height": 97}), 3, 100)
    assert not _serving(Net({"mode": "syncing", "height": 100}), 3, 100)
    assert not _serving(Net(None), 3, 100)


def test_back_to_healthy_is_the_first_window_at_ninety_percent_of_the_healthy_rate() -> None:
    from node.tools.bench_degraded import back_to_healthy_s

    # Healthy 100 tx/s: two seconds in a row must commit >= 180.
    assert back_to_healthy_s(100.0, [10, 50, 95, 92, 100]) == 2
    assert back_to_healthy_s(100.0, [100, 80, 30, 95]) == 0
    assert back_to_healthy_s(100.0, [10, 50, 60, 80]) is None
    assert back_to_healthy_s(100.0, [95]) is None  # shorter than the window


def test_process_cpu_counts_this_process_and_nothing_for_a_missing_pid() -> None:
    from node.tools.bench_degraded import process_cpu_s

    before = process_cpu_s(os.getpid())
    assert before is not None
    sum(i * i for i in range(3_000_000))  # burn some CPU
    after = process_cpu_s(os.getpid())
    assert after is not None and after > before
    assert process_cpu_s(None) is None and process_cpu_s(2**22 + 12345) is None


def test_round_timeouts_are_counted_per_phase_from_the_watched_timeline() -> None:
    from node.tools.bench_degraded import Phase, _round_timeouts
    from node.validator.round_timeline import ROUND, TIMEOUT

    # (seq, t_us, kind, height, round, a, b): a ROUND with a = 0 was entered by a TC.
    events = [[1, 1_000_000, ROUND, 1, 1, 1, 0], [2, 2_000_000, TIMEOUT, 1, 2, 0, 0], [3, 2_100_000, ROUND, 1, 3, 0, 0],
              [4, 5_000_000, TIMEOUT, 4, 9, 0, 0], [5, 6_500_000, ROUND, 5, 10, 1, 0]]

    class Net:
        def admin(self, i: int, request: dict[str, object]) -> dict[str, object]:
            return {"events": [e for e in events if e[0] > int(request["after"])][:2]}  # paged

    early, first, second = Phase("early"), Phase("first"), Phase("second")
    early.started, early.ended = 0.5, 1.0  # before the oldest event the ring holds: unknown
    first.started, first.ended = 1.0, 4.0
    second.started, second.ended = 4.0, 7.0
    _round_timeouts(Net(), 0, [early, first, second])
    assert (early.timer_fired, early.rounds_by_tc) == (None, None)
    assert (first.timer_fired, first.rounds_by_tc) == (1, 1)
    assert (second.timer_fired, second.rounds_by_tc) == (1, 0)
