"""Crash safety with a real killed process.

A child process commits blocks in a loop into a LevelDB directory (each block: a few hundred state changes, the
tree's new nodes, transactions, receipts, history, and block bytes of up to 256 KiB, so writes take a while). The
parent SIGKILLs it at a random moment, reopens the store and checks that it sits at the last complete block:
the head agrees with the stored block, the latest-state keyspace rebuilds to head.state_root, every block and
its transactions are readable, nothing of a later block is visible, and no block the child reported as committed
was lost. Then the next child continues from there. Several kills per seed, a few seeds. A grouped child writes runs of
1..6 consecutive blocks with one `commit_blocks` each (block sync's group commit): the store then reopens at the end
of a complete group, never inside one.

Run directly as `python tests/ledger/test_crash.py child DBPATH SEED [grouped]` to start a child by hand.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.smt import EMPTY_ROOT, OverlayNodes, SparseMerkleTree, verify_proof
from ledger.store import BlockCommit, LedgerStore

ROOT = Path(__file__).resolve().parents[2]
KEY_SPACE = 3000
KILLS_PER_SEED = 4


def block_changes(seed: int, height: int) -> dict[bytes, bytes | None]:
    rng = random.Random(f"changes:{seed}:{height}")
    changes: dict[bytes, bytes | None] = {}
    for _ in range(rng.randint(50, 400)):
        key = b"acct/%d" % rng.randrange(KEY_SPACE)
        changes[key] = None if rng.random() < 0.15 else rng.randbytes(rng.randint(1, 40))
    return changes


def block_bytes(seed: int, height: int) -> bytes:
    rng = random.Random(f"block:{seed}:{height}")
    return b"block:%d:" % height + rng.randbytes(rng.randint(1, 256 * 1024))


def block_hash(seed: int, height: int) -> bytes:
    return hashlib.sha256(block_bytes(seed, height)).digest()


def tx_ids(seed: int, height: int) -> list[bytes]:
    return [hashlib.sha256(b"tx:%d:%d:%d" % (seed, height, i)).digest() for i in range(20)]


def group_ends(seed: int, up_to: int = 100_000) -> list[int]:
    """The heights a grouped child's groups end at: runs of 1..6 blocks, the same for every child of a seed."""
    rng = random.Random(f"groups:{seed}")
    ends, height = [], 0
    while height < up_to:
        height += rng.randint(1, 6)
        ends.append(height)
    return ends


def run_child(path: str, seed: int, grouped: bool = False) -> None:
    """Commit blocks forever, printing each committed height once its commit_block (or the commit_blocks of its
    group) has returned."""
    ends = set(group_ends(seed)) if grouped else None
    with LedgerStore.open(path) as store:
        head = store.head()
        height = 1 if head is None else head.height + 1
        root = EMPTY_ROOT if head is None else head.state_root
        print(f"ready {height}", flush=True)
        group: list[BlockCommit] = []
        layers: list[dict[bytes, bytes]] = []
        while True:
            changes = block_changes(seed, height)
            update = SparseMerkleTree(OverlayNodes(store, *reversed(layers)), root).update(changes)
            ids = tx_ids(seed, height)
            group.append(
                BlockCommit(
                    height=height,
                    block_hash=block_hash(seed, height),
                    block_bytes=block_bytes(seed, height),
                    state_root=update.root,
                    txs=[(tx_id, b"tx" + tx_id) for tx_id in ids],
                    receipts=[(tx_id, b"ok") for tx_id in ids],
                    state_changes=changes,
                    smt_nodes=update.nodes,
                    history=[(f"acct@bank-{i % 3}", tx_id) for i, tx_id in enumerate(ids)],
                )
            )
            root = update.root
            if ends is None:
                store.commit_block(group[0])
            elif height in ends:
                store.commit_blocks(group)
            else:
                layers.append(dict(update.nodes))
                height += 1
                continue
            for c in group:
                print(f"committed {c.height}", flush=True)
            group, layers = [], []
            height += 1


def expected_state(seed: int, height: int) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = {}
    for hgt in range(1, height + 1):
        for k, v in block_changes(seed, hgt).items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
    return state


def check_store(path: str, seed: int, reported: int, grouped: bool = False) -> int:
    with LedgerStore.open(path) as store:
        head = store.head()
        if head is None:
            assert reported == 0
            assert store.get_block(1) is None
            return 0
        # Durable: nothing the child saw committed is lost; at most the block (or group) in flight was added.
        if grouped:
            # The child prints a group's heights one by one after its commit_blocks returned, so the kill may land
            # between two prints: the last height reported may lie inside a group, which is then durable whole.
            ends = group_ends(seed)
            durable = min(e for e in [0, *ends] if e >= reported)  # the end of the group `reported` belongs to
            assert head.height in ends
            assert durable <= head.height <= min(e for e in ends if e > durable)
        else:
            assert reported <= head.height <= reported + 1
        assert store.get_block(head.height) == block_bytes(seed, head.height)
        assert head.block_hash == block_hash(seed, head.height)
        assert store.get_block_height(head.block_hash) == head.height
        assert store.state_root_at(head.height) == head.state_root
        # Nothing of a later block.
        assert store.get_block(head.height + 1) is None
        assert store.state_root_at(head.height + 1) is None
        assert store.get_block_height(block_hash(seed, head.height + 1)) is None
        assert all(store.get_tx(t) is None for t in tx_ids(seed, head.height + 1))
        # The latest-state keyspace is exactly the replayed state, and rebuilds to the head's root.
        latest = dict(store.iter_state())
        assert latest == expected_state(seed, head.height)
        assert store.recompute_state_root() == head.state_root
        # Every committed block and its transactions are readable; the tree answers at the head.
        for hgt in range(1, head.height + 1):
            assert store.get_block(hgt) == block_bytes(seed, hgt)
            for index, tx_id in enumerate(tx_ids(seed, hgt)):
                assert store.get_tx(tx_id) == (hgt, index, b"tx" + tx_id)
                assert store.get_receipt(tx_id) == b"ok"
        for key in (b"acct/1", b"acct/2", b"acct/77"):
            value, proof = store.prove(key, head.height)
            assert value == latest.get(key)
            assert verify_proof(head.state_root, key, value, proof)
        assert len(store.account_history("acct@bank-0", limit=1000)) == min(1000, 7 * head.height)
        return head.height


def spawn_and_kill(path: str, seed: int, rng: random.Random, grouped: bool = False) -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, __file__, "child", path, str(seed), *(["grouped"] if grouped else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith(b"ready"), (first, proc.stderr.read() if proc.poll() is not None else b"")
        time.sleep(rng.uniform(0.02, 0.5))
    finally:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    lines = out.decode().split()
    heights = [int(x) for word, x in zip(lines[::2], lines[1::2], strict=True) if word == "committed"]
    return max(heights) if heights else int(first.split()[1]) - 1


@pytest.mark.parametrize(("seed", "grouped"), [(1, False), (2, False), (3, False), (4, True), (5, True)])
def test_kill_9_reopens_at_last_complete_block(tmp_path, seed, grouped):
    path = str(tmp_path / "db")
    rng = random.Random(seed)
    committed = 0
    for _ in range(KILLS_PER_SEED):
        reported = spawn_and_kill(path, seed, rng, grouped)
        assert reported >= committed
        committed = check_store(path, seed, reported, grouped)
    assert committed > 0


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[1] != "child" or sys.argv[4:] not in ([], ["grouped"]):
        sys.exit("usage: test_crash.py child DBPATH SEED [grouped]")
    run_child(sys.argv[2], int(sys.argv[3]), grouped=sys.argv[4:] == ["grouped"])
