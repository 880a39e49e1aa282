"""Observability: node.validator.metrics (Prometheus exposition, per-node registries, bounded labels) and node.validator.logs
(key=value and JSON lines)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger import codes
from node.chain.mempool import MEMPOOL_FULL, Admission, MempoolStats
from node.chain.sigverify import VerifierStats
from node.validator.logs import log_event, setup_logging
from node.validator.metrics import MAX_LABEL_VALUES, NodeMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, metric: str, /, **labels: str) -> float:
    return samples(text)[(metric, tuple(sorted(labels.items())))]


def test_render_contains_every_metric_with_the_values_set() -> None:
    clock = Clock()
    m = NodeMetrics(window_seconds=10, clock=clock)
    m.set_height(42)
    m.set_round(57)
    m.view_change()
    m.view_change()
    m.local_timeout()
    m.set_peers(3)
    m.set_mempool(MempoolStats(txs=120, bytes=36_000, verifying=7, lanes=9, height=42))
    m.set_sigverify(VerifierStats(workers=2, batch_size=256, verified=900, tasks=30, pending=4, pool_restarts=0))
    m.committed(300, [0.04, 0.15, 0.9])
    clock.now += 1
    m.committed(200, [2.5])
    m.rejected_message("malformed")
    m.rejected_message("malformed")
    m.rejected_message("unknown_channel")
    m.admission(Admission(MEMPOOL_FULL, "busy"))
    m.admission(Admission(codes.BAD_SIGNATURE, "bad"))
    m.admission(Admission(codes.OK, "allowed"))
    m.sync_applied(16)
    m.sync_executed_ahead()
    for signatures in ("skipped", "skipped", "rechecked"):
        m.certified_execution(signatures)
    text = m.render()
    assert "# TYPE ledger_commit_latency_seconds histogram" in text
    assert value(text, "ledger_height") == 42
    assert value(text, "ledger_round") == 57
    assert value(text, "ledger_view_changes_total") == 2
    assert value(text, "ledger_local_timeouts_total") == 1
    assert value(text, "ledger_peers_connected") == 3
    assert value(text, "ledger_mempool_txs") == 120
    assert value(text, "ledger_mempool_bytes") == 36_000
    assert value(text, "ledger_mempool_verifying") == 7
    assert value(text, "ledger_sigverify_items") == 900
    assert value(text, "ledger_sigverify_tasks") == 30
    assert value(text, "ledger_committed_txs_total") == 500
    assert value(text, "ledger_committed_blocks_total") == 2
    assert value(text, "ledger_committed_tps") == 50.0  # 500 txs in the last 10 s
    assert value(text, "ledger_commit_latency_seconds_count") == 4
    assert value(text, "ledger_commit_latency_seconds_bucket", le="0.05") == 1
    assert value(text, "ledger_commit_latency_seconds_bucket", le="0.2") == 2
    assert value(text, "ledger_commit_latency_seconds_bucket", le="1.0") == 3
    assert value(text, "ledger_commit_latency_seconds_bucket", le="+Inf") == 4
    assert value(text, "ledger_commit_latency_seconds_sum") == pytest.approx(3.59)
    assert value(text, "ledger_rejected_messages_total", reason="malformed") == 2
    assert value(text, "ledger_rejected_messages_total", reason="unknown_channel") == 1
    assert value(text, "ledger_mempool_rejections_total", code=str(MEMPOOL_FULL), name="MEMPOOL_FULL") == 1
    assert value(text, "ledger_mempool_rejections_total", code="104", name="BAD_SIGNATURE") == 1
    assert ("ledger_mempool_rejections_total", (("code", "0"), ("name", "OK"))) not in samples(text)
    assert value(text, "ledger_sync_blocks_applied_total") == 16
    assert value(text, "ledger_sync_blocks_executed_ahead_total") == 1
    assert value(text, "ledger_sync_certified_blocks_executed_total", signatures="skipped") == 2
    assert value(text, "ledger_sync_certified_blocks_executed_total", signatures="rechecked") == 1


def test_tps_window_decays_when_commits_stop() -> None:
    clock = Clock()
    m = NodeMetrics(window_seconds=5, clock=clock)
    m.committed(100)
    assert m.committed_tps() == 20.0
    clock.now += 6
    assert m.committed_tps() == 0.0
    assert value(m.render(), "ledger_committed_tps") == 0.0


def test_two_nodes_in_one_process_have_separate_registries() -> None:
    a, b = NodeMetrics(), NodeMetrics()
    a.set_height(5)
    b.set_height(9)
    assert value(a.render(), "ledger_height") == 5
    assert value(b.render(), "ledger_height") == 9


def test_label_values_are_bounded() -> None:
    m = NodeMetrics()
    for i in range(MAX_LABEL_VALUES + 10):
        m.rejected_message(f"reason_{i}")
    text = m.render()
    reasons = {dict(k[1]).get("reason") for k in samples(text) if k[0] == "ledger_rejected_messages_total"}
    assert len(reasons) == MAX_LABEL_VALUES + 1 and "other" in reasons
    assert value(text, "ledger_rejected_messages_total", reason="other") == 10


# -- logs ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_text_logs_are_key_value(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("info", "text", out, node_id="n1")
    log = logging.getLogger("node.test")
    log_event(log, logging.INFO, "block_committed", height=12, block=b"\xab\xcd", note="two words")
    log_event(log, logging.DEBUG, "hidden_below_level")
    log.warning("plain %s", "message")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert " level=info logger=node.test node=n1 event=block_committed height=12 block=abcd " in lines[0]
    assert lines[0].endswith('note="two words"') and lines[0].startswith("ts=")
    assert 'event=message msg="plain message"' in lines[1]


def test_json_logs_are_one_object_per_line(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("debug", "json", out)
    log = logging.getLogger("node.test")
    log_event(log, logging.DEBUG, "peer_refused", reason=3001, peer=None, ok=False)
    try:
        raise ValueError("boom")
    except ValueError:
        log_event(log, logging.ERROR, "handler_failed", exc_info=True, route="/tx")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "peer_refused" and first["level"] == "debug"
    assert first["reason"] == 3001 and first["peer"] is None and first["ok"] is False
    assert second["event"] == "handler_failed" and "ValueError: boom" in second["exc"] and second["route"] == "/tx"


def test_setup_refuses_unknown_format_and_level(restore_logging: None) -> None:
    with pytest.raises(ValueError, match="log format"):
        setup_logging("info", "xml")
    with pytest.raises(ValueError, match="log level"):
        setup_logging("loud", "text")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_hostile_value_cannot_forge_a_log_line(restore_logging: None, fmt: str) -> None:
    """Regression: \\r, U+0085, U+2028 and other non-printing characters were written raw (text format: \\r was not
    even quoted), so a peer- or client-supplied value could start a fake line for str.splitlines or a terminal."""
    out = io.StringIO()
    setup_logging("info", fmt, out, node_id="n1")
    log = logging.getLogger("node.test")
    forged = "x\rts=2026 level=error event=forged\x85a\u2028b\u2029c\x1b[2Jd\x7fe"
    log_event(log, logging.INFO, "peer_said_goodbye", reason=forged)
    log.warning("plain %s", forged)
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2 and all(line.isprintable() for line in lines)
    if fmt == "json":
        assert json.loads(lines[0])["reason"] == forged and json.loads(lines[1])["msg"] == "plain " + forged
    else:
        assert "reason=" + json.dumps(forged) in lines[0]
