"""Ed25519 signature verification off the event loop, on every core.

    verifier = Ed25519Verifier()                 # process pool, os.cpu_count() workers
    results = await verifier.verify_batch(items) # items: [(public_key, message, signature), ...] -> [bool, ...]
    results = verifier.verify_sync(items)        # the same answers, computed in the calling thread
    verifier.close()

Why this shape (docs/mempool.md, "Signature verification"):

- A verification costs about 60 µs of libsodium time. The admission of one transaction from one HTTP request has one
  or two signatures, far too little to pay a round trip to another process (pickling, a pipe write, a wake-up, the
  result back). So the verifier *coalesces*: `verify_batch` appends the caller's items to a shared buffer and
  returns a future; the buffer is cut into chunks of `batch_size` items and sent to the pool as soon as it holds a
  full chunk, and at the end of the current event-loop iteration (call_soon) what is left is spread over the
  workers (at least MIN_SPLIT items per chunk). Many concurrent submissions therefore travel to the workers in a few
  tasks, and every core gets a share.
- A pool task costs a fixed ~300 µs of CPU besides its verifications (the executor's manager and queue-feeder threads,
  pickling both ways, the loop's wake-up), as much as five verifications. So the end-of-iteration flush only sends
  while fewer than `workers` tasks are in flight: what arrives while every worker is busy waits in the buffer and
  leaves, in one task per free worker, when a task completes (a full `batch_size` chunk still leaves at once). Under
  load, the tasks grow with the load instead of carrying the few transactions of one gossip frame or HTTP request;
  an idle node still sends its first items at the end of the iteration.
- Answers never depend on the path: the pool, the synchronous fallback and a rebuilt pool all run `verify_items`,
  which answers False (never raises) for malformed keys, signatures or argument types.
- Workers start with the forkserver method (nothing forks a process that runs threads and an event loop). As with
  any spawn-style start, the program's main module must be importable and its entry guarded by
  `if __name__ == "__main__"` (the `ledger` console script and pytest are); `warm_up()` starts them ahead of time.
- Limits: at most `max_pending` items are buffered or in flight; a caller beyond that waits for room (admission
  control in the mempool keeps callers far below it). One chunk is at most `batch_size` items.

The check is ledger.transaction.verify_signature (libsodium through pynacl), the one a block's execution runs, so the
mempool and the ledger agree on every signature.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Self

from nacl.exceptions import CryptoError

from ledger.transaction import verify_signature

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_PENDING",
    "Ed25519Verifier",
    "VerifierStats",
    "VerifyItem",
    "verify_items",
    "verify_one",
]

log = logging.getLogger("node.chain.sigverify")

VerifyItem = tuple[bytes, bytes, bytes]  # (public_key 32 bytes, message, signature 64 bytes)

MIN_SPLIT = 16  # a flush does not split fewer items than this across workers (about 1 ms of work)
DEFAULT_BATCH_SIZE = 256  # items per pool task (measured: `python -m node.chain.sigverify`, docs/mempool.md)
BACKENDS = ("process", "thread")  # thread: libsodium runs without the GIL (cffi), no pickling, no processes
DEFAULT_MAX_PENDING = 65_536  # items buffered or in flight across all callers
MAX_MESSAGE_BYTES = 1 << 20  # longer messages are refused (False) without being hashed
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def verify_one(public_key: object, message: object, signature: object) -> bool:
    """True iff `signature` is a valid Ed25519 signature of `message` by `public_key` (the ledger's own check,
    ledger.transaction.verify_signature). Never raises: anything malformed (wrong types, wrong lengths, a point
    that does not decode, a non-canonical signature) is False."""
    if type(public_key) is not bytes or type(message) is not bytes or type(signature) is not bytes:
        return False
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES or len(message) > MAX_MESSAGE_BYTES:
        return False
    try:
        return verify_signature(public_key, message, signature)
    except (CryptoError, ValueError, TypeError):
        return False


def verify_items(items: Sequence[VerifyItem]) -> list[bool]:
    """Verify each (public_key, message, signature); the function every path runs (also inside pool workers)."""
    out: list[bool] = []
    for item in items:
        if type(item) is tuple and len(item) == 3:
            out.append(verify_one(item[0], item[1], item[2]))
        else:
            out.append(False)
    return out


def _warm_up(_: int) -> int:
    return os.getpid()


def _exit_with_owner() -> None:
    """Pool-worker initializer: end the worker when the process that owns the pool dies, even by SIGKILL.

    ProcessPoolExecutor workers hold both ends of their task queue, so they never see it close; with the forkserver
    start they are children of the fork server, so their parent does not change either. Without this, every kill -9
    of a node would leave its workers (and the fork server, which waits for them) running."""
    owner = multiprocessing.parent_process()
    if owner is None:
        return

    def watch() -> None:
        owner.join()
        os._exit(0)

    threading.Thread(target=watch, name="ed25519-owner-watch", daemon=True).start()


@dataclass(frozen=True, slots=True)
class VerifierStats:
    workers: int  # 0 = synchronous (no pool)
    batch_size: int
    verified: int  # items answered since start
    tasks: int  # chunks sent to the pool
    pending: int  # items buffered or in flight now
    pool_restarts: int


class _Request:
    __slots__ = ("future", "items", "remaining", "results")

    def __init__(self, items: list[VerifyItem], future: asyncio.Future[list[bool]]) -> None:
        self.items = items
        self.future = future
        self.results: list[bool] = [False] * len(items)
        self.remaining = len(items)


_Segment = tuple[_Request, int, int]  # (request, start, end): request.items[start:end]


class Ed25519Verifier:
    """Batched Ed25519 verification on a process pool; `workers=0` verifies in the calling thread (tests, tools).

    Create it once per node (or test module) and `close()` it on shutdown. The asyncio API must be used from one
    event loop."""

    def __init__(
        self,
        workers: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        start_method: str = "forkserver",
        backend: str = "process",
    ) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        assert workers >= 0, "workers must be >= 0"
        assert 1 <= batch_size <= max_pending, "batch_size must be between 1 and max_pending"
        assert backend in BACKENDS, f"backend must be one of {BACKENDS}"
        self.backend = backend
        self.workers = workers
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._start_method = start_method if start_method in multiprocessing.get_all_start_methods() else None
        self._pool: Executor | None = None
        # pool tasks sent and not yet done -> the loop that sent them (at most `workers` at a flush; full chunks may
        # add more, up to max_pending / batch_size)
        self._in_flight: dict[Future[list[bool]], asyncio.AbstractEventLoop] = {}
        self._wake_loop: asyncio.AbstractEventLoop | None = None  # a held flush there waits on another loop's task
        self._buffer: list[_Segment] = []  # request segments waiting for a pool task, in arrival order
        self._buffered = 0  # items in _buffer
        self._flush_scheduled = False
        self._pending = 0
        self._room_waiters: list[asyncio.Future[None]] = []
        self._verified = 0
        self._tasks = 0
        self._restarts = 0
        self._closed = False
        if workers > 0:
            self._pool = self._new_pool()

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def _new_pool(self) -> Executor:
        if self.backend == "thread":
            return ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ed25519")
        ctx = multiprocessing.get_context(self._start_method) if self._start_method else None
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_exit_with_owner)

    def worker_pids(self) -> list[int]:
        """The process ids of the pool's workers (none without a process pool)."""
        return list(getattr(self._pool, "_processes", None) or {})

    def warm_up(self) -> None:
        """Start every worker process now, so the first verification does not pay for process start-up."""
        if self._pool is not None:
            list(self._pool.map(_warm_up, range(self.workers * 2)))

    def close(self) -> None:
        """Stop the workers. Calls already waiting get their answers first; later calls raise RuntimeError."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> VerifierStats:
        return VerifierStats(self.workers, self.batch_size, self._verified, self._tasks, self._pending, self._restarts)

    # -- synchronous path ----------------------------------------------------------------------------------------

    def verify_sync(self, items: Sequence[VerifyItem]) -> list[bool]:
        """Verify in the calling thread (blocks it): the reference answers and the fallback."""
        out = verify_items(items)
        self._verified += len(out)
        return out

    # -- asynchronous path ---------------------------------------------------------------------------------------

    async def verify_batch(self, items: Sequence[VerifyItem]) -> list[bool]:
        """One bool per item, in order. Without a pool the work runs inline (still correct, but on the loop)."""
        if self._closed:
            raise RuntimeError("verifier is closed")
        batch = items if isinstance(items, list) else list(items)
        if not batch:
            return []
        if self._pool is None:
            return self.verify_sync(batch)
        loop = asyncio.get_running_loop()
        # Wait for room (a batch larger than max_pending passes alone once nothing else is pending).
        while self._pending > 0 and self._pending + len(batch) > self.max_pending:
            waiter: asyncio.Future[None] = loop.create_future()
            self._room_waiters.append(waiter)
            await waiter
        request = _Request(batch, loop.create_future())
        self._pending += len(batch)
        self._buffer.append((request, 0, len(batch)))
        self._buffered += len(batch)
        while self._buffered >= self.batch_size:
            self._dispatch(loop)
        if self._buffered and not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, loop)
        return await request.future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """End of a loop iteration, or a task completed: send what is buffered, spread over the free workers (chunks
        of at least MIN_SPLIT items, at most batch_size). While every worker has a task in flight the items wait:
        the first task to complete sends them (`_completed`), so under load they travel in fewer, larger tasks."""
        self._flush_scheduled = False
        while self._buffered:
            free = self._free_workers()
            if free == 0:
                # A task sent from this loop flushes when it completes (`_completed`, no extra wake-up). Tasks sent
                # from another loop (one that has ended) answer there: then one wake-up is armed here.
                if all(sent is not loop for sent in self._in_flight.values()) and self._wake_loop is not loop:
                    self._wake_loop = loop
                    task = next(iter(self._in_flight))
                    task.add_done_callback(lambda _: loop.call_soon_threadsafe(self._wake, loop))
                return
            share = -(-self._buffered // free)
            self._dispatch(loop, max(MIN_SPLIT, min(share, self.batch_size)))

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        """A task sent from another (ended) loop is done: send what this loop held back."""
        self._wake_loop = None
        if self._buffered and not self._flush_scheduled:
            self._flush(loop)

    def _free_workers(self) -> int:
        """Workers without a task of this verifier in flight (0 when all are busy; `workers` without a pool, whose
        dispatch answers inline). A task counts until its future is done, whichever loop its answer goes to."""
        if self._pool is None:
            return self.workers
        self._in_flight = {f: sent for f, sent in self._in_flight.items() if not f.done()}
        return max(0, self.workers - len(self._in_flight))

    def _dispatch(self, loop: asyncio.AbstractEventLoop, limit: int | None = None) -> None:
        """Send up to `limit` (default batch_size) buffered items, whole or split request segments, as one task."""
        chunk: list[_Segment] = []
        items: list[VerifyItem] = []
        room = min(limit or self.batch_size, self.batch_size)
        while room and self._buffer:
            request, start, end = self._buffer[0]
            take = min(room, end - start)
            chunk.append((request, start, start + take))
            items.extend(request.items[start : start + take])
            if start + take == end:
                self._buffer.pop(0)
            else:
                self._buffer[0] = (request, start + take, end)
            room -= take
        self._buffered -= len(items)
        assert 0 < len(items) <= self.batch_size and self._buffered >= 0
        self._tasks += 1
        pool = self._pool
        if pool is None:  # close() ran while these items were buffered: they still get their answers, here
            self._deliver(chunk, verify_items(items))
            return
        try:
            future: Future[list[bool]] = pool.submit(verify_items, items)
        except (BrokenProcessPool, RuntimeError):
            self._deliver(chunk, self._recover(items))
            return
        self._in_flight[future] = loop
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._completed, chunk, items, f))

    def _completed(self, chunk: list[_Segment], items: list[VerifyItem], future: Future[list[bool]]) -> None:
        try:
            results = future.result()
        except BrokenProcessPool:
            results = self._recover(items)
        except Exception:  # any other failure of the task (cancelled, an error in the worker): answer here, or
            # the callers would wait forever and their items would hold room in max_pending for good
            log.exception("ed25519_pool_task_failed items=%d: verifying them in the event loop", len(items))
            results = verify_items(items)
        assert len(results) == len(items), "worker answered a different number of items"
        self._in_flight.pop(future, None)
        self._deliver(chunk, results)
        if self._buffered and not self._flush_scheduled:  # items held back while every worker was busy
            self._flush(asyncio.get_running_loop())

    def _recover(self, items: list[VerifyItem]) -> list[bool]:
        """A worker died (killed, out of memory): answer this chunk here and start a fresh pool for the next."""
        if not self._closed:
            old = self._pool
            self._pool = self._new_pool()
            self._restarts += 1
            if old is not None:
                old.shutdown(wait=False, cancel_futures=False)
        return verify_items(items)

    def _deliver(self, chunk: list[_Segment], results: list[bool]) -> None:
        pos = 0
        for request, start, end in chunk:
            n = end - start
            request.results[start:end] = results[pos : pos + n]
            pos += n
            request.remaining -= n
            if request.remaining == 0 and not request.future.done():
                request.future.set_result(request.results)
        self._pending -= pos
        self._verified += pos
        assert self._pending >= 0
        if self._room_waiters:
            waiters, self._room_waiters = self._room_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


# -- measurement: python -m node.chain.sigverify [--seconds S] [--batches 16,64,128,512] ---------------------------------


def _sample_items(count: int, distinct_keys: int = 64) -> list[VerifyItem]:
    from nacl.signing import SigningKey

    keys = [SigningKey(bytes([i % 256, i // 256]) * 16) for i in range(distinct_keys)]
    out: list[VerifyItem] = []
    for i in range(count):
        key = keys[i % distinct_keys]
        message = b"CONSORTIUM-LEDGER/TX/v1\x00" + i.to_bytes(8, "big") * 25
        out.append((bytes(key.verify_key), message, key.sign(message).signature))
    return out


def _measure_sync(items: list[VerifyItem], seconds: float) -> tuple[float, float]:
    """(verifications per wall second, per CPU second) in this thread."""
    import time

    done, start, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        assert all(verify_items(items))
        done += len(items)
    return done / (time.perf_counter() - start), done / max(time.process_time() - cpu0, 1e-9)


def _worker_cpu_seconds(verifier: Ed25519Verifier) -> float:
    """utime + stime of the pool's worker processes (Linux /proc; 0.0 elsewhere)."""
    total = 0.0
    for pid in verifier.worker_pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _measure_pool(
    verifier: Ed25519Verifier, items: list[VerifyItem], seconds: float, per_call: int
) -> tuple[float, float, float]:
    """Many concurrent callers with `per_call` items each (like many submissions), for `seconds`. Returns
    (verifications per wall second, per CPU second of main + workers, main-process CPU µs per verification)."""
    import time

    calls = [items[i : i + per_call] for i in range(0, len(items), per_call)]
    done, start, cpu0, w0 = 0, time.perf_counter(), time.process_time(), _worker_cpu_seconds(verifier)
    while time.perf_counter() - start < seconds:
        results = await asyncio.gather(*(verifier.verify_batch(call) for call in calls))
        assert all(all(r) for r in results)
        done += len(items)
    wall = time.perf_counter() - start
    main_cpu = time.process_time() - cpu0
    workers_cpu = _worker_cpu_seconds(verifier) - w0
    return done / wall, done / max(main_cpu + workers_cpu, 1e-9), main_cpu / done * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m node.chain.sigverify", description="Ed25519 verify rates")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--batches", default="8,32,128,512", help="pool batch sizes to try")
    parser.add_argument("--per-call", type=int, default=1, help="items per verify_batch call (1 = one signature)")
    parser.add_argument("--backend", choices=BACKENDS, default="process")
    args = parser.parse_args(argv)
    items = _sample_items(4096)
    print(f"cpus={os.cpu_count()} items/round={len(items)} per_call={args.per_call} seconds={args.seconds}")
    wall, cpu = _measure_sync(items[:512], args.seconds)
    print(f"single core inline: {wall:,.0f}/s wall, {cpu:,.0f}/s per CPU-second")
    for batch in (int(b) for b in args.batches.split(",")):
        with Ed25519Verifier(batch_size=batch, backend=args.backend) as verifier:
            verifier.warm_up()
            wall, cpu, main_us = asyncio.run(_measure_pool(verifier, items, args.seconds, args.per_call))
        print(
            f"{args.backend} pool workers={verifier.workers} batch={batch}: {wall:,.0f}/s wall, {cpu:,.0f}/s per CPU-second "
            f"(main + workers), event-loop process {main_us:.1f} µs CPU per verification"
            + (" (worker threads included)" if args.backend == "thread" else "")
        )


if __name__ == "__main__":
    main()
