"""The round timeline (node/validator/round_timeline.py), its report (node/tools/round_report.py), and the staging of
executing blocks in the safety store (SafetyStore.stage): a block is durable before its vote, written once."""

from __future__ import annotations

import asyncio
import glob
import os
import time

from consensus.messages import (
    Block,
    BlockHeader,
    SafetyState,
    Vote,
    encode_message,
    genesis_block,
    genesis_qc,
    payload_hash,
)
from node.chain.application import PendingExecution
from node.chain.sigverify import Ed25519Verifier
from node.tools.localnet import load_accounts
from node.tools.round_report import format_summary, summarize
from node.validator import round_timeline as tl
from node.validator.admin_socket import AdminServer
from node.validator.node import ValidatorNode
from node.validator.safety_store import SafetyStore
from tests.node.validator.test_node_runtime import _dev, _transfers
from tests.node.validator.test_pipeline import _SlowJob


def test_the_ring_keeps_the_last_events_in_order() -> None:
    now = iter(range(100, 1000, 10))
    timeline = tl.RoundTimeline(clock_us=lambda: next(now), capacity=4)
    for h in range(6):
        timeline.note(tl.PROPOSED, h, h + 10, a=h * 2, b=7)
    events = timeline.events()
    assert [e[0] for e in events] == [2, 3, 4, 5]  # the two oldest were overwritten
    assert events[0] == (2, 120, tl.PROPOSED, 2, 12, 4, 7)
    assert [e[0] for e in timeline.events(after=3)] == [4, 5]
    assert [e[0] for e in timeline.events(after=-1, limit=1)] == [2]
    assert timeline.events(after=5) == []
    timeline.note(tl.COMMIT, 9, 19, at_us=5)
    assert timeline.events(after=5) == [(6, 5, tl.COMMIT, 9, 19, 0, 0)]


def test_incoming_proposals_and_votes_are_told_apart_without_decoding() -> None:
    timeline = tl.RoundTimeline(clock_us=lambda: 1)
    vote = encode_message(Vote(0, 3, b"b" * 32, b"r" * 32, 1, b"s" * 96))
    tl.note_incoming(timeline, vote)
    tl.note_incoming(timeline, b"\x93\x01")  # a proposal's first bytes
    tl.note_incoming(timeline, b"")  # garbage: nothing noted, nothing raised
    tl.note_incoming(timeline, b"\xc1\x02")
    kinds = [e[2] for e in timeline.events()]
    assert kinds == [tl.VOTE_IN, tl.PROPOSAL_IN]


def _block(height: int, round_: int, payload: bytes) -> Block:
    genesis = genesis_block(b"c" * 32, 0)
    qc = genesis_qc(genesis, b"r" * 32)
    return Block(BlockHeader(b"c" * 32, 0, round_, height, genesis.id, 0, payload_hash(payload), qc), payload)


def _log_bytes(path: str) -> int:
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(path, "*.log")))


def test_a_staged_block_is_durable_and_the_vote_writes_only_the_safety_state(tmp_path) -> None:
    path = str(tmp_path / "consensus")
    store = SafetyStore(path)
    qc = genesis_qc(genesis_block(b"c" * 32, 0), b"r" * 32)
    big = _block(1, 1, os.urandom(200_000))
    try:
        assert store.stage([big, big], committed_height=0) == 1  # once, however often it is named
        assert store.stage([big], committed_height=0) == 0  # already durable: nothing written
        assert store.stage([_block(1, 2, b"old")], committed_height=1) == 0  # at or below the committed height
        before = _log_bytes(path)
        store.persist(SafetyState(0, 1, 0, 0, qc, None), [big], 0)  # the vote on it
        assert _log_bytes(path) - before < 10_000  # the safety state, not the 200 kB payload again
    finally:
        store.close()
    reopened = SafetyStore(path)
    try:
        state, blocks = reopened.load()
        assert state is not None and state.highest_vote_round == 1 and blocks == [big]
        reopened.persist(SafetyState(0, 2, 0, 0, qc, None), [big], 1)  # committed: pruned with the next write
        assert reopened.load()[1] == []
        other = _block(2, 3, b"x" * 100)
        assert reopened.stage([other], committed_height=1) == 1
        reopened.begin_epoch(1)  # the epoch ended: staged blocks go with the rest
        assert reopened.load() == (None, [])
    finally:
        reopened.close()


def test_the_report_joins_the_timelines_of_all_nodes() -> None:
    t = tl
    timelines = {
        # node-0 leads round 7 (height 5); node-1 leads round 8 (height 6) on the QC of round 7.
        "node-0": [
            (900, t.PAYLOAD_ASKED, 5, 7, 0, 0),
            (1_400, t.PROPOSED, 5, 7, 300_000, 400),
            (2_000, t.PROPOSAL_OUT, 5, 7, 300_000, 0),
            (2_100, t.EXEC_ASKED, 5, 7, 300_000, 0),
            (9_100, t.EXEC_DONE, 5, 7, 7_000, 6_000),
            (9_200, t.PERSIST, 4, 7, 150, 0),
            (9_300, t.VOTE_OUT, 4, 7, 0, 0),
            (30_000, t.COMMIT, 5, 7, 4_000, 1_000),
        ],
        "node-1": [
            (2_500, t.EXEC_ASKED, 5, 7, 300_000, 0),
            (3_000, t.STAGED, 4, 7, 1_000, 300_000),
            (10_500, t.EXEC_DONE, 5, 7, 8_000, 5_000),
            (10_800, t.PERSIST, 4, 7, 200, 0),
            (11_000, t.ROUND, 4, 8, 1, 0),
            (11_100, t.PAYLOAD_ASKED, 6, 8, 0, 0),
            (11_600, t.PROPOSED, 6, 8, 1_000, 500),
            (12_000, t.PROPOSAL_OUT, 6, 8, 1_000, 0),
            (31_000, t.COMMIT, 5, 7, 5_000, 1_000),
            (31_500, t.TIMEOUT, 5, 9, 0, 0),
        ],
    }
    summary = summarize(timelines)
    phases = summary["phases"]
    assert summary["proposals"] == 2 and summary["timeouts"] == 1
    assert phases["transfer_ms"] == {"median": 0.5, "p90": 0.5, "n": 1}  # node-1 asked 0.5 ms after it left
    assert phases["build_ms"]["n"] == 2 and phases["build_ms"]["median"] == 0.45
    assert phases["leader_wait_ms"]["median"] == 0.05  # 0.9 -> 1.0 ms (node-0) and 11.1 -> 11.1 ms (node-1)
    assert phases["exec_queue_ms"]["median"] == 0.0 and phases["exec_wall_ms"]["median"] == 7.5
    assert phases["exec_cpu_ms"]["median"] == 5.5
    assert phases["vote_after_exec_ms"] == {"median": 0.2, "p90": 0.2, "n": 1}  # node-0: 9.1 -> 9.3 ms
    assert phases["qc_after_proposal_ms"]["median"] == 9.0  # 2.0 -> 11.0 ms at the next leader
    assert phases["next_proposal_ms"]["median"] == 1.0
    assert phases["round_ms"]["median"] == 10.0
    assert phases["commit_after_proposal_ms"]["median"] == 28.5
    assert phases["persist_ms"]["n"] == 0  # both votes wrote the safety state only: the block was staged
    assert "transfer_ms" in format_summary(summary)


def test_a_pipelined_node_stages_what_it_executes_and_reports_its_timeline(tmp_path) -> None:
    layout, cfg, genesis, keys = _dev(tmp_path)
    accounts = load_accounts(layout.accounts_path)
    verifier = Ed25519Verifier(workers=0)

    async def run() -> dict:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=verifier, never_signed=True)
        begin = node.app.begin_execution

        def slow(block, parent_root, now_ms, certificate=None):
            # Blocks with transactions take a while, as big blocks do: their staging surely comes first.
            started = begin(block, parent_root, now_ms, certificate)
            if isinstance(started, PendingExecution) and started.job.txs:
                return PendingExecution(_SlowJob(started.job, 0.3), started.vote_refusal)
            return started

        node.app.begin_execution = slow  # type: ignore[method-assign]
        await node.start()
        try:
            results = await node.submit_many(_transfers(genesis.chain_id, accounts, 4))
            assert all(r.ok for r in results), results
            deadline = time.monotonic() + 30
            while any(node.app.store.get_tx(r.tx_id) is None for r in results) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert all(node.app.store.get_tx(r.tx_id) is not None for r in results)
            return await AdminServer(node, str(tmp_path / "unused.sock")).handle({"op": "round_timeline"})
        finally:
            await node.stop()

    try:
        answer = asyncio.run(run())
    finally:
        verifier.close()
    events = answer["events"]
    assert answer["kinds"][tl.STAGED] == "staged" and [e[0] for e in events] == list(range(len(events)))
    kinds = {e[2] for e in events}
    assert {tl.PROPOSED, tl.PROPOSAL_OUT, tl.EXEC_ASKED, tl.EXEC_DONE, tl.STAGED, tl.PERSIST, tl.COMMIT} <= kinds
    staged = [e for e in events if e[2] == tl.STAGED]
    assert any(e[6] > 0 for e in staged), "the blocks with transactions were staged while they executed"
    committed_rounds = {e[4] for e in events if e[2] == tl.COMMIT}
    for _, t_us, _, _, round_, _, _ in (e for e in staged if e[4] in committed_rounds):  # committed, so voted
        # The vote that follows in that round (its PersistSafety) writes no block bytes again.
        votes = [e for e in events if e[2] == tl.PERSIST and e[4] == round_ and e[1] >= t_us]
        assert votes and all(e[6] == 0 for e in votes)
    committed = [e for e in events if e[2] == tl.COMMIT]
    assert sum(e[6] for e in committed) >= 4 and all(e[5] > 0 for e in committed)
