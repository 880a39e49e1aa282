"""Load on a testnet and a watch on its commits: what `ledger testnet chaos`, `ledger bench` and scenario 7 of
`ledger demo` share.

    raw = signed_transfer(chain_id, sender, key, recipient, nonce, expiry)   one signed 1-unit CASH-T transfer
    load = TransferLoad(net, rate=20, rng=random.Random(7)); load.start() ... load.finish()
    monitor = CommitMonitor(net, interval_s=0.1); monitor.start() ... monitor.finish()

`TransferLoad` is a thread that submits signed 1-unit CASH-T transfers between the testnet's `user-*` accounts,
`rate` per second, each to a random running node's admin socket (skipping the nodes in `excluded`). It counts what
it submitted and what the nodes admitted; `on_accepted(raw)` sees every admitted transaction and `after_each()` runs
after every submission (chaos resubmits older transactions there to acknowledge their commit).

`CommitMonitor` is a thread that asks the nodes for their status every `interval_s`: the network head (the highest
height any sampled node reports), the longest time that head did not move (the commit gap, with the height it
stalled after), and, for `counter_node`, samples of its committed-transaction counter (the bench's latency estimate
matches admissions against them).

`net` is a node.tools.testnet.Testnet (processes or in-process nodes): both loops use only its admin-socket queries.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from nacl.signing import SigningKey

ACCEPTED_CODES: Final = frozenset({0, 3302})  # OK, ALREADY_PENDING
SUBMIT_TIMEOUT_S: Final = 3.0
EXPIRY_BLOCKS: Final = 10_000
EXPIRY_REFRESH_S: Final = 1.0  # how often TransferLoad reads the head its transfers' expiry follows
JOIN_TIMEOUT_S: Final = 10.0
MAX_SAMPLES: Final = 500_000  # counter samples kept by a monitor (7 hours at 50 ms)
MAX_RATE: Final = 100_000


def signed_transfer(chain_id: str, sender: str, key: SigningKey, recipient: str, nonce: int, expiry: int,
                    units: int = 1) -> bytes:
    """The bytes of a transaction moving `units` CASH-T from `sender` (signing with `key`) to `recipient`."""
    from ledger.operations import Transfer, TransferLeg
    from ledger.transaction import TxBody, sign_transaction
    from node.chain.protocol import OPERATIONS
    from node.tools.localnet import CASH_ASSET

    body = TxBody(1, chain_id, (sender,), nonce, expiry, (Transfer(sender, CASH_ASSET, (TransferLeg(recipient, units),)),))
    return sign_transaction(body, [(sender, key)], operations=OPERATIONS).to_bytes()


class TransferLoad:
    """Signed CASH-T transfers between the testnet's test accounts at `rate` per second, each to a random running
    node's admin socket, on a thread of its own."""

    def __init__(self, net: Any, rate: int, rng: random.Random, *, stop: threading.Event | None = None,
                 on_accepted: Callable[[bytes], None] | None = None, after_each: Callable[[], None] | None = None,
                 name: str = "transfer-load") -> None:
        from node.tools.localnet import load_accounts
        from node.tools.testnet import TestnetError

        self.net = net
        self.rate = min(MAX_RATE, max(1, rate))
        self.rng = rng
        self.accounts = load_accounts(net.accounts_path)
        self.users = sorted(a for a in self.accounts if a.startswith("user-"))
        if len(self.users) < 2:
            raise TestnetError("no_test_accounts", "the testnet has fewer than two test accounts (user-*) for the load")
        self.nonce = rng.randrange(1 << 40) << 20
        self.expiry = 0
        self.submitted = 0
        self.accepted = 0
        self.excluded: set[int] = set()  # nodes no longer in the validator set: the load stops sending to them
        self.stop = stop if stop is not None else threading.Event()
        self.on_accepted = on_accepted
        self.after_each = after_each
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

    def make(self) -> bytes:
        sender, recipient = self.rng.sample(self.users, 2)
        self.nonce += 1
        return signed_transfer(self.net.chain_id, sender, self.accounts[sender], recipient, self.nonce, self.expiry)

    def submit(self, raw: bytes) -> int | None:
        """Submit `raw` to a random running node (not excluded); its answer code, None when no node answered."""
        live = [i for i in range(self.net.n) if i not in self.excluded and self.net.running(i)]
        if not live:
            return None
        answer = self.net.admin(self.rng.choice(live), {"op": "submit", "tx": raw.hex()}, timeout=SUBMIT_TIMEOUT_S)
        return None if answer is None or "code" not in answer else int(answer["code"])

    def _refresh_expiry(self) -> None:
        """Expiry = the highest head a running node reports + EXPIRY_BLOCKS, as clients sign (refreshed every
        EXPIRY_REFRESH_S): one expiry for a whole run would make every block rewrite one growing replay bucket
        (docs/benchmarks.md, "The load's expiry heights")."""
        heights = [self.net.height(i) for i in range(self.net.n) if i not in self.excluded and self.net.running(i)]
        self.expiry = max([*heights, self.expiry - EXPIRY_BLOCKS]) + EXPIRY_BLOCKS

    def run(self) -> None:
        self._refresh_expiry()
        refresh_at = time.monotonic() + EXPIRY_REFRESH_S
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() >= refresh_at:
                self._refresh_expiry()
                refresh_at = time.monotonic() + EXPIRY_REFRESH_S
            raw = self.make()
            code = self.submit(raw)
            self.submitted += 1
            if code in ACCEPTED_CODES:
                self.accepted += 1
                if self.on_accepted is not None:
                    self.on_accepted(raw)
            if self.after_each is not None:
                self.after_each()
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(JOIN_TIMEOUT_S)


class CommitMonitor:
    """Samples the nodes' status every `interval_s` on a thread of its own: the network head is the highest height
    any sampled node reports; records the longest time the head did not move, and `counter_node`'s committed
    transaction counter as (monotonic time, count) samples. `nodes=None` samples every node of the network at the
    time of the sample (nodes added meanwhile included)."""

    def __init__(self, net: Any, interval_s: float, *, nodes: Iterable[int] | None = None,
                 counter_node: int | None = None, name: str = "commit-monitor") -> None:
        assert interval_s > 0
        self.net = net
        self.interval_s = interval_s
        self.nodes = None if nodes is None else list(nodes)
        self.counter_node = counter_node
        self.stop = threading.Event()
        self.head = -1
        self.last_move = time.monotonic()
        self.max_gap = 0.0
        self.max_gap_after = 0
        self.samples: list[tuple[float, int]] = []
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def sample(self) -> None:
        """One round: every sampled node's status, then the head, the gap and the counter."""
        which = range(self.net.n) if self.nodes is None else self.nodes
        heights = []
        count = None
        for i in which:
            status = self.net.node_status(i)
            heights.append(-1 if status is None else int(status["height"]))
            if i == self.counter_node and status is not None:
                count = int(status.get("committed_txs") or 0)
        now = time.monotonic()
        if count is not None and len(self.samples) < MAX_SAMPLES:
            self.samples.append((now, count))
        top = max(heights) if heights else -1
        if top > self.head:
            if self.head >= 0 and now - self.last_move > self.max_gap:
                self.max_gap, self.max_gap_after = now - self.last_move, self.head
            self.head, self.last_move = top, now

    def latest(self) -> tuple[float, int] | None:
        """The newest counter sample, None before the first."""
        return self.samples[-1] if self.samples else None

    def _run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval_s)

    def start(self) -> None:
        self.last_move = time.monotonic()
        self.thread.start()

    def finish(self) -> None:
        """Stop sampling; a stall still going on at the end counts as a gap."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(JOIN_TIMEOUT_S)
        gap = time.monotonic() - self.last_move
        if gap > self.max_gap:
            self.max_gap, self.max_gap_after = gap, self.head
