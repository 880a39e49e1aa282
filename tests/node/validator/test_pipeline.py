"""The execution pipeline: blocks execute on the node's execution thread while its event loop goes on, in the order
the replica asked, with commits waiting for their block's execution (node/validator/pipeline.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from node.chain.application import PendingExecution
from node.chain.sigverify import Ed25519Verifier
from node.tools.localnet import load_accounts
from node.validator.node import ValidatorNode
from node.validator.pipeline import ExecutionPipeline
from tests.node.validator.test_node_runtime import _dev, _transfers


def _action(block_id: bytes, height: int):
    return SimpleNamespace(block=SimpleNamespace(id=block_id, header=SimpleNamespace(height=height)))


def _pending(txs: int):
    return SimpleNamespace(job=SimpleNamespace(txs=(b"",) * txs))


def test_executions_run_one_at_a_time_in_order_and_commits_wait_for_their_block() -> None:
    pipe, replica, old = ExecutionPipeline(), object(), object()
    a, b, c = _action(b"a", 5), _action(b"b", 6), _action(b"c", 7)
    assert not pipe.should_queue_execute()
    running = _pending(10)
    pipe.start(replica, a, running, now_ms=0)
    assert pipe.busy and pipe.should_queue_execute() and pipe.executing(b"a")
    pipe.queue_execute(old, _action(b"x", 6))  # of a replica that stopped meanwhile: dropped when its turn comes
    pipe.queue_execute(replica, b)
    pipe.queue_execute(replica, c)
    # A commit of a block that executes waits, and so does every later one; a commit of another block does not.
    assert pipe.should_queue_commit(_action(b"a", 5))
    assert not pipe.should_queue_commit(_action(b"z", 4))
    pipe.queue_commit(replica, _action(b"a", 5))
    assert pipe.should_queue_commit(_action(b"y", 6))  # behind the waiting commit of height 5
    assert pipe.ready_commit(replica) is None
    assert pipe.next_execute(replica) is None  # one at a time
    assert pipe.finish(_pending(10), now_ms=5) is None  # not the running one
    assert pipe.finish(running, now_ms=5).action is a
    ready = pipe.ready_commit(replica)
    assert ready is not None and ready[1].block.id == b"a"
    assert pipe.next_execute(replica) == (replica, b)
    pipe.start(replica, b, _pending(1), now_ms=5)
    pipe.clear()
    assert not pipe.busy and pipe.next_execute(replica) is None and pipe.ready_commit(replica) is None


def test_a_leader_sizes_its_block_by_the_execution_speed_it_measured() -> None:
    pipe = ExecutionPipeline()
    assert pipe.block_budget(2000, 2000) == 2000  # nothing measured yet: the epoch's limit
    first = _pending(1000)
    pipe.start(object(), _action(b"a", 1), first, now_ms=0)
    pipe.finish(first, now_ms=1000)  # 1 ms per transaction
    assert pipe.ms_per_ktx == 1000
    assert pipe.block_budget(2000, 2000) == 500  # a quarter of the 2 s round
    assert pipe.block_budget(2000, 300) == 300  # never above the epoch's limit
    small = _pending(10)
    pipe.start(object(), _action(b"b", 2), small, now_ms=0)
    pipe.finish(small, now_ms=500)  # a small block measures overheads: not counted
    assert pipe.ms_per_ktx == 1000
    fast = _pending(1000)
    pipe.start(object(), _action(b"c", 3), fast, now_ms=0)
    pipe.finish(fast, now_ms=200)
    assert pipe.ms_per_ktx == (3 * 1000 + 200) // 4
    # The CPU time the host measured counts, not the wall time (inflated when the loop shares the interpreter).
    busy = _pending(1000)
    before = pipe.ms_per_ktx
    pipe.start(object(), _action(b"d", 4), busy, now_ms=0)
    pipe.finish(busy, now_ms=5000, cost_ms=before)
    assert pipe.ms_per_ktx == before


SLOW_S = 1.0  # far above any scheduling hiccup of a busy machine


class _SlowJob:
    """The real job, slowed down like a big block (time.sleep releases the GIL, as libsodium and LevelDB do)."""

    def __init__(self, job, seconds: float) -> None:
        self._job, self._seconds = job, seconds

    def __getattr__(self, name):
        return getattr(self._job, name)

    def run(self):
        time.sleep(self._seconds)
        return self._job.run()


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_slow_block_does_not_block_the_event_loop_when_pipelined(tmp_path, pipelined) -> None:
    layout, cfg, genesis, keys = _dev(tmp_path)
    accounts = load_accounts(layout.accounts_path)
    verifier = Ed25519Verifier(workers=0)

    async def run() -> tuple[float, int]:
        node = ValidatorNode(genesis, keys, cfg.data_dir, sig_verifier=verifier, never_signed=True,
                             pipelined=pipelined)
        begin = node.app.begin_execution
        slowed: list[int] = []

        def slow(block, parent_root, now_ms, certificate=None):
            started = begin(block, parent_root, now_ms, certificate)
            if isinstance(started, PendingExecution) and started.job.txs:
                slowed.append(block.header.height)
                return PendingExecution(_SlowJob(started.job, SLOW_S), started.vote_refusal)
            return started

        node.app.begin_execution = slow  # type: ignore[method-assign]
        await node.start()
        gaps: list[float] = []

        async def ticker() -> None:
            # Ticks every 10 ms: the worst gap between ticks is how long the loop was blocked.
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.get_running_loop().create_task(ticker())
        await asyncio.sleep(0.05)  # the ticker runs
        try:
            for raw in _transfers(genesis.chain_id, accounts, 3):
                height = node.app.head.height
                results = await node.submit_many([raw])
                assert results[0].ok, results[0]
                deadline = time.monotonic() + (20 if pipelined else 3 * SLOW_S)
                while node.app.store.get_tx(results[0].tx_id) is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                # Pipelined, it commits although a block takes as long as the round timeout (the timeout waits for
                # the execution). Unpipelined, the round may time out under every proposal: only the blocked loop
                # is asserted.
                assert node.app.head.height > height or not pipelined
            assert node.fatal is None
        finally:
            tick.cancel()
            await node.stop()
        worst = max(gaps, default=0.0)
        return worst, len(slowed)

    try:
        worst, slowed = asyncio.run(run())
    finally:
        verifier.close()
    assert slowed >= (3 if pipelined else 1)
    if pipelined:
        assert worst < SLOW_S / 2, f"the loop was blocked for {worst:.3f} s"
    else:
        assert worst >= SLOW_S, f"an unpipelined node executes on its loop: {worst:.3f} s"


def test_commits_wait_while_a_block_executes_unless_too_many_wait() -> None:
    from node.validator.pipeline import MAX_COMMITS_WAITING

    pipe, replica = ExecutionPipeline(), object()
    assert not pipe.commits_due()  # nothing waits
    pipe.queue_commit(replica, _action(b"a", 5))
    assert pipe.commits_due()  # the execution thread is idle: commit now
    running = _pending(10)
    pipe.start(replica, _action(b"b", 7), running, now_ms=0)
    assert not pipe.commits_due()  # a block executes: the commit would compete with it
    for height in range(6, 5 + MAX_COMMITS_WAITING):
        pipe.queue_commit(replica, _action(b"c%d" % height, height))
    assert pipe.commits_due()  # too many wait: they run beside the execution
    assert pipe.ready_commit(replica)[1].block.id == b"a"
    pipe.finish(running, now_ms=1)
    assert pipe.commits_due()
