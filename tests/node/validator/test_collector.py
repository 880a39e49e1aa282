"""node.validator.collector: the cyclic collector's thresholds `node run` sets, the operator's override, the frozen
startup heap and the pause totals /metrics exports."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from node.validator.collector import (
    ENV_THRESHOLDS,
    GC_THRESHOLDS,
    collector_totals,
    freeze_startup_heap,
    parse_thresholds,
    tune_collector,
)
from node.validator.metrics import NodeMetrics


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_ledger_thresholds_unless_the_environment_sets_them() -> None:
    ours = tune_collector(environ={})
    assert ours.thresholds == GC_THRESHOLDS and ours.source == "ledger"
    assert gc.get_threshold() == GC_THRESHOLDS
    theirs = tune_collector(environ={ENV_THRESHOLDS: " 700, 10,10"})
    assert theirs.thresholds == (700, 10, 10) and theirs.source == "environment"
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("text", ["700,10", "700,10,10,10", "a,b,c", "0,10,10", "-1,10,10", "700,10,99999999", "",
                                  "7e2,10,10"])
def test_a_malformed_override_is_refused_and_changes_nothing(text: str) -> None:
    tune_collector(environ={})
    with pytest.raises(ValueError, match=ENV_THRESHOLDS):
        tune_collector(environ={ENV_THRESHOLDS: text})
    assert gc.get_threshold() == GC_THRESHOLDS


def test_parse_thresholds_bounds() -> None:
    assert parse_thresholds("1,1,1") == (1, 1, 1)
    assert parse_thresholds("10000000,1,1") == (10_000_000, 1, 1)


def test_pauses_are_counted_per_generation_and_exported() -> None:
    tune_collector(environ={})
    tune_collector(environ={})  # twice: one hook, not two
    before = collector_totals()
    assert before is not None
    gc.collect(2)
    gc.collect(0)
    after = collector_totals()
    assert after is not None
    assert after.collections[2] == before.collections[2] + 1
    assert after.collections[0] >= before.collections[0] + 1
    assert after.pause_seconds[2] > before.pause_seconds[2]
    text = NodeMetrics().render()
    full = [line for line in text.splitlines() if line.startswith('ledger_gc_collections_total{generation="2"}')]
    assert len(full) == 1 and float(full[0].split()[-1]) >= after.collections[2]
    assert 'ledger_gc_pause_seconds_total{generation="0"}' in text


def test_freezing_moves_what_is_alive_out_of_every_later_collection() -> None:
    kept = [[i] for i in range(10_000)]  # 10,001 container objects alive
    frozen = freeze_startup_heap()
    assert frozen >= len(kept) and gc.get_freeze_count() == frozen
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
