"""node.chain.sigverify: the process pool answers exactly like the synchronous path, never raises on malformed input,
coalesces concurrent callers, survives a killed worker, and its workers end with their owner."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from node.chain.sigverify import Ed25519Verifier, VerifyItem, verify_items, verify_one

ROOT = Path(__file__).resolve().parents[3]


def key(i: int) -> SigningKey:
    return SigningKey(hashlib.sha256(b"sigverify-test/%d" % i).digest())


def valid(i: int) -> VerifyItem:
    k = key(i % 7)
    message = b"message %d " % i * (1 + i % 5)
    return (bytes(k.verify_key), message, k.sign(message).signature)


def mixed_items() -> list[VerifyItem]:
    """Valid, tampered and malformed items, interleaved."""
    items: list[VerifyItem] = []
    for i in range(60):
        pk, msg, sig = valid(i)
        kind = i % 10
        if kind == 1:
            msg = msg + b"!"  # tampered message
        elif kind == 2:
            sig = bytes([sig[0] ^ 1]) + sig[1:]  # tampered signature
        elif kind == 3:
            pk = bytes(key(99).verify_key)  # someone else's key
        elif kind == 4:
            sig = sig[:63]  # short signature
        elif kind == 5:
            pk = pk + b"\x00"  # long key
        elif kind == 6:
            pk = b"\xff" * 32  # not a curve point
        elif kind == 7:
            sig = sig[:32] + b"\xff" * 32  # non-canonical s
        items.append((pk, msg, sig))
    return items


@pytest.fixture(scope="module")
def verifier() -> Iterator[Ed25519Verifier]:
    v = Ed25519Verifier(workers=2, batch_size=8)
    v.warm_up()
    yield v
    v.close()


def test_verify_one_accepts_valid_and_refuses_tampered() -> None:
    pk, msg, sig = valid(1)
    assert verify_one(pk, msg, sig) is True
    assert verify_one(pk, msg + b"x", sig) is False
    assert verify_one(bytes(key(3).verify_key), msg, sig) is False


@pytest.mark.parametrize(
    "item",
    [
        (b"", b"m", b""),
        (b"\x00" * 32, b"m", b"\x00" * 64),
        ("not bytes", b"m", b"\x00" * 64),
        (None, None, None),
        (b"\x01" * 32, 12, b"\x00" * 64),
        (bytearray(32), b"m", bytes(64)),
    ],
)
def test_malformed_items_are_false_never_exceptions(item: tuple) -> None:
    assert verify_one(*item) is False
    assert verify_items([item]) == [False]


def test_items_that_are_not_triples_are_false() -> None:
    assert verify_items([(b"a", b"b"), b"abc", valid(0)]) == [False, False, True]  # type: ignore[list-item]


def test_sync_verifier_matches_reference() -> None:
    items = mixed_items()
    expected = [verify_one(*item) for item in items]
    assert True in expected and False in expected
    sync = Ed25519Verifier(workers=0)
    assert sync.verify_sync(items) == expected
    assert asyncio.run(sync.verify_batch(items)) == expected
    assert sync.stats.verified == 2 * len(items)


def test_pool_equals_synchronous_on_mixed_batches(verifier: Ed25519Verifier) -> None:
    items = mixed_items()
    expected = verifier.verify_sync(items)
    assert asyncio.run(verifier.verify_batch(items)) == expected
    assert asyncio.run(verifier.verify_batch([])) == []


def test_thread_backend_equals_synchronous() -> None:
    items = mixed_items()
    with Ed25519Verifier(workers=2, batch_size=8, backend="thread") as threads:
        assert asyncio.run(threads.verify_batch(items)) == verify_items(items)


def test_concurrent_callers_are_coalesced_and_get_their_own_answers(verifier: Ed25519Verifier) -> None:
    items = mixed_items()
    expected = verify_items(items)
    calls = [items[i : i + 3] for i in range(0, len(items), 3)] + [items[:1]] * 5

    async def run() -> list[list[bool]]:
        return await asyncio.gather(*(verifier.verify_batch(call) for call in calls))

    before = verifier.stats.tasks
    results = asyncio.run(run())
    assert results == [expected[i : i + 3] for i in range(0, len(items), 3)] + [expected[:1]] * 5
    total = sum(len(c) for c in calls)
    # 65 items from 25 callers travel in ceil(65 / 8) = 9 pool tasks, not 25.
    assert verifier.stats.tasks - before == (total + verifier.batch_size - 1) // verifier.batch_size
    assert verifier.stats.pending == 0


def test_waits_for_room_when_max_pending_is_reached() -> None:
    items = [valid(i) for i in range(12)]
    with Ed25519Verifier(workers=1, batch_size=2, max_pending=4) as small:

        async def run() -> list[list[bool]]:
            return await asyncio.gather(*(small.verify_batch(items[i : i + 3]) for i in range(0, 12, 3)))

        assert asyncio.run(run()) == [[True] * 3] * 4
        assert small.stats.pending == 0


def test_killed_worker_is_replaced_and_answers_stay_correct() -> None:
    items = mixed_items()
    expected = verify_items(items)
    with Ed25519Verifier(workers=1, batch_size=16) as v:
        v.warm_up()
        pool = v._pool
        assert pool is not None
        for pid in list(pool._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        assert asyncio.run(v.verify_batch(items)) == expected
        assert asyncio.run(v.verify_batch(items)) == expected
        assert v.stats.pool_restarts >= 1


def test_closed_verifier_refuses_work() -> None:
    v = Ed25519Verifier(workers=0)
    v.close()
    with pytest.raises(RuntimeError):
        asyncio.run(v.verify_batch([valid(0)]))


OWNER_SCRIPT = """
import sys, time
from node.chain.sigverify import Ed25519Verifier
v = Ed25519Verifier(workers=2)
v.warm_up()
print(" ".join(str(pid) for pid in v._pool._processes), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_exit_when_the_owner_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert owner.stdout is not None
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


class _FailingPool(ThreadPoolExecutor):
    """A pool whose tasks end with an error other than BrokenProcessPool."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        future: Future[list[bool]] = Future()
        future.set_exception(MemoryError("worker ran out of memory"))
        return future


def test_a_failed_pool_task_still_answers_every_caller() -> None:
    """Regression: an error other than BrokenProcessPool left the callers waiting forever (and their items counted
    against max_pending for good)."""
    items = mixed_items()
    verifier = Ed25519Verifier(workers=1, batch_size=4, backend="thread")
    real_pool = verifier._pool
    verifier._pool = _FailingPool(max_workers=1)
    try:

        async def run() -> list[bool]:
            return await asyncio.wait_for(verifier.verify_batch(items), 30)  # a guard against a hang, not a timing

        assert asyncio.run(run()) == verify_items(items)
        assert verifier.stats.pending == 0
    finally:
        verifier._pool.shutdown()
        verifier._pool = real_pool
        verifier.close()


def test_close_answers_items_still_buffered() -> None:
    """Regression: close() between a call and the end of its loop iteration made the flush fail on an assertion
    (no pool) inside a loop callback, so the call never returned."""
    items = mixed_items()[:3]
    verifier = Ed25519Verifier(workers=2, batch_size=64, backend="thread")

    async def run() -> list[bool]:
        task = asyncio.create_task(verifier.verify_batch(items))
        await asyncio.sleep(0)  # the call has buffered its items; the flush is scheduled, not run
        assert verifier.stats.pending == len(items)
        verifier.close()
        return await asyncio.wait_for(task, 30)  # a guard against a hang, not a timing

    assert asyncio.run(run()) == verify_items(items)


class _HeldPool(ThreadPoolExecutor):
    """A pool whose tasks finish only when the test says so (`finish`), so "every worker is busy" is a state the
    test controls instead of a race."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.tasks: list[tuple[Future[list[bool]], list[VerifyItem]]] = []

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        future: Future[list[bool]] = Future()
        self.tasks.append((future, args[0]))
        return future

    def finish(self, k: int) -> None:
        future, items = self.tasks[k]
        future.set_result(verify_items(items))


def test_items_arriving_while_every_worker_is_busy_leave_in_one_task() -> None:
    """Under load a task carried the few items of one loop iteration (one gossip frame, one HTTP batch), paying the
    pool's fixed cost per task; now what arrives while the workers are busy waits and leaves in one task."""
    items = mixed_items()[:8]
    expected = verify_items(items)
    verifier = Ed25519Verifier(workers=1, batch_size=64, backend="thread")
    real_pool = verifier._pool
    held = _HeldPool()
    verifier._pool = held

    async def run() -> list[list[bool]]:
        first = asyncio.create_task(verifier.verify_batch(items[:2]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first call's flush sent its task: the only worker is busy
        assert len(held.tasks) == 1
        later = []
        for i in range(2, 8, 2):  # three more calls, each flushed in its own loop iteration
            later.append(asyncio.create_task(verifier.verify_batch(items[i : i + 2])))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        assert len(held.tasks) == 1 and verifier.stats.pending == 8  # held back, not sent one task each
        held.finish(0)  # the worker is free: the six held items leave together
        answers = [await asyncio.wait_for(first, 30)]  # a guard against a hang, not a timing
        for _ in range(20):
            if len(held.tasks) == 2:
                break
            await asyncio.sleep(0)
        assert len(held.tasks) == 2 and len(held.tasks[1][1]) == 6
        held.finish(1)
        answers += [await asyncio.wait_for(t, 30) for t in later]
        return answers

    try:
        answers = asyncio.run(run())
        assert answers == [expected[i : i + 2] for i in range(0, 8, 2)]
        assert verifier.stats.tasks == 2 and verifier.stats.pending == 0
    finally:
        verifier._pool = real_pool
        verifier.close()


def test_items_held_behind_a_task_of_an_ended_loop_still_leave() -> None:
    """A task sent from a loop that has ended answers to that loop, never here: a flush held back behind it arms a
    wake-up of its own, or its callers would wait forever."""
    items = mixed_items()[:4]
    verifier = Ed25519Verifier(workers=1, batch_size=64, backend="thread")
    real_pool = verifier._pool
    held = _HeldPool()
    verifier._pool = held

    async def first() -> None:
        abandoned = asyncio.create_task(verifier.verify_batch(items[:2]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(held.tasks) == 1
        abandoned.cancel()  # its loop ends with the task in flight

    async def second() -> list[bool]:
        call = asyncio.create_task(verifier.verify_batch(items[2:]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(held.tasks) == 1  # the only worker is busy with the first loop's task: held back
        held.finish(0)
        for _ in range(20):
            if len(held.tasks) == 2:
                break
            await asyncio.sleep(0)
        assert len(held.tasks) == 2 and held.tasks[1][1] == items[2:]
        held.finish(1)
        return await asyncio.wait_for(call, 30)  # a guard against a hang, not a timing

    try:
        asyncio.run(first())
        assert asyncio.run(second()) == verify_items(items[2:])
    finally:
        verifier._pool = real_pool
        verifier.close()
