"""State-root scaling benchmark: per-block root update time as the number of accounts grows, proof sizes, and the
latency of LedgerStore.commit_block with sync=True.

    .venv/bin/python -m node.tools.bench_smt                      # 10k, 100k, 1M accounts (1M: ~20 s build, ~3 GB RAM)
    .venv/bin/python -m node.tools.bench_smt --accounts 10000 --blocks 3 --commit
    .venv/bin/python -m node.tools.bench_smt --accounts 10000 --commit --commit-accounts 10000,100000,1000000

Prints one JSON object per line. A benchmark, not a test: it measures, it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

from ledger.smt import INTERNAL_TAG, MemoryNodes, SparseMerkleTree, StateProof, verify_proof
from ledger.store import BlockCommit, LedgerStore

__all__ = ["build_tree", "main", "measure_commit_latency", "measure_root_update"]

BUILD_BATCH = 1_000_000


def account_key(i: int) -> bytes:
    """A state key shaped like a balance entry: (account, asset)."""
    return b"bal/acct-%d@bank-%d/BOND-A" % (i, i % 7)


def balance_value(amount: int) -> bytes:
    return amount.to_bytes(8, "big")


def hashes_in(nodes: dict[bytes, bytes]) -> int:
    """SHA-256 invocations that produced these nodes: one per internal node, two per leaf (value hash, leaf hash)."""
    internal = sum(1 for node in nodes.values() if node[0] == INTERNAL_TAG)
    return internal + 2 * (len(nodes) - internal)


def build_tree(accounts: int, batch: int = BUILD_BATCH) -> tuple[MemoryNodes, bytes, float]:
    """A tree with `accounts` leaves, built through update() in batches of `batch` keys. Returns (nodes, root, s)."""
    nodes = MemoryNodes()
    tree = SparseMerkleTree(nodes)
    start = time.perf_counter()
    for lo in range(0, accounts, batch):
        update = tree.update({account_key(i): balance_value(i) for i in range(lo, min(lo + batch, accounts))})
        nodes.put_nodes(update.nodes)
        tree = SparseMerkleTree(nodes, update.root)
    return nodes, tree.root, time.perf_counter() - start


def measure_root_update(accounts: int, block_keys: int = 2000, blocks: int = 5, seed: int = 1) -> dict:
    """Build a tree of `accounts` leaves, then time `blocks` per-block root updates of `block_keys` changed keys.

    Each block changes existing balances (block_keys/2 transfers touching two balances each) — the common case.
    update_ms is the median over the blocks of SparseMerkleTree.update (one pass computing the new root and nodes).
    """
    assert accounts >= block_keys > 0 and blocks > 0
    rng = random.Random(seed)
    nodes, root, build_s = build_tree(accounts)
    times: list[float] = []
    hashes: list[int] = []
    new_nodes: list[int] = []
    for _ in range(blocks):
        changes = {
            account_key(i): balance_value(rng.randrange(1 << 40)) for i in rng.sample(range(accounts), block_keys)
        }
        tree = SparseMerkleTree(nodes, root)
        start = time.perf_counter()
        update = tree.update(changes)
        times.append(time.perf_counter() - start)
        hashes.append(hashes_in(update.nodes))
        new_nodes.append(len(update.nodes))
        nodes.put_nodes(update.nodes)
        root = update.root
    tree = SparseMerkleTree(nodes, root)
    proof_sizes: list[int] = []
    depths: list[int] = []
    verify_s = 0.0
    for i in rng.sample(range(accounts), 200):
        key = account_key(i)
        proof = tree.prove(key)
        raw = proof.to_bytes()
        proof_sizes.append(len(raw))
        depths.append(proof.depth)
        value = tree.get(key)
        start = time.perf_counter()
        ok = verify_proof(root, key, value, StateProof.from_bytes(raw))
        verify_s += time.perf_counter() - start
        assert ok
    absent = [tree.prove(b"absent/%d" % i) for i in range(200)]
    return {
        "bench": "smt_root_update",
        "accounts": accounts,
        "block_keys": block_keys,
        "blocks": blocks,
        "build_s": round(build_s, 2),
        "update_ms": round(statistics.median(times) * 1000, 1),
        "update_ms_min": round(min(times) * 1000, 1),
        "update_ms_max": round(max(times) * 1000, 1),
        "hashes_per_update": int(statistics.median(hashes)),
        "hashes_per_key": round(statistics.median(hashes) / block_keys, 1),
        "new_nodes_per_update": int(statistics.median(new_nodes)),
        "proof_depth_avg": round(statistics.mean(depths), 1),
        "proof_bytes_avg": round(statistics.mean(proof_sizes)),
        "proof_bytes_max": max(proof_sizes),
        "absent_proof_bytes_avg": round(statistics.mean(len(p.to_bytes()) for p in absent)),
        "decode_verify_us": round(verify_s / len(proof_sizes) * 1e6, 1),
        "total_nodes": len(nodes),
    }


def measure_commit_latency(accounts: int = 10_000, block_keys: int = 2000, blocks: int = 10, seed: int = 1) -> dict:
    """commit_block latency (one WriteBatch, sync=True) in a fresh LevelDB store holding `accounts` balances,
    plus the state-tree update read through LevelDB (the node's real path), per block of `block_keys` changes."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-smt-") as tmp, LedgerStore.open(tmp + "/db") as store:
        genesis = {account_key(i): balance_value(i) for i in range(accounts)}
        update = SparseMerkleTree(store).update(genesis)
        store.commit_block(_commit(1, update.root, genesis, update.nodes, []))
        commit_s: list[float] = []
        update_s: list[float] = []
        batch_bytes: list[int] = []
        for height in range(2, blocks + 2):
            changes = {
                account_key(i): balance_value(rng.randrange(1 << 40)) for i in rng.sample(range(accounts), block_keys)
            }
            start = time.perf_counter()
            update = SparseMerkleTree(store, store.head().state_root).update(changes)
            update_s.append(time.perf_counter() - start)
            txs = [(rng.randbytes(32), rng.randbytes(200)) for _ in range(block_keys // 2)]
            commit = _commit(height, update.root, changes, update.nodes, txs)
            batch_bytes.append(
                sum(len(k) + len(v) for k, v in changes.items())
                + sum(32 + len(n) for n in update.nodes.values())
                + sum(2 * len(t) + 40 for _, t in txs)
            )
            start = time.perf_counter()
            store.commit_block(commit)
            commit_s.append(time.perf_counter() - start)
    return {
        "bench": "commit_block",
        "accounts": accounts,
        "block_keys": block_keys,
        "txs_per_block": block_keys // 2,
        "blocks": blocks,
        "commit_ms_median": round(statistics.median(commit_s) * 1000, 1),
        "commit_ms_max": round(max(commit_s) * 1000, 1),
        "batch_kib_avg": round(statistics.mean(batch_bytes) / 1024),
        "update_on_leveldb_ms_median": round(statistics.median(update_s) * 1000, 1),
    }


def _commit(height: int, root: bytes, changes: dict, nodes: dict, txs: Sequence[tuple[bytes, bytes]]) -> BlockCommit:
    block_hash = height.to_bytes(32, "big")
    return BlockCommit(
        height=height,
        block_hash=block_hash,
        block_bytes=b"block" + block_hash,
        state_root=root,
        txs=txs,
        receipts=[(tx_id, b"\x00") for tx_id, _ in txs],
        state_changes=changes,
        smt_nodes=nodes,
        history=[(f"acct-{i}@bank-a", tx_id) for i, (tx_id, _) in enumerate(txs)],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.tools.bench_smt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", default="10000,100000,1000000", help="comma-separated tree sizes")
    parser.add_argument("--block-keys", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--commit", action="store_true", help="also measure commit_block latency on LevelDB")
    parser.add_argument("--commit-accounts", default="10000", help="comma-separated store sizes for --commit")
    args = parser.parse_args(argv)
    for accounts in (int(a) for a in args.accounts.split(",")):
        print(json.dumps(measure_root_update(accounts, args.block_keys, args.blocks)), flush=True)
    if args.commit:
        for accounts in (int(a) for a in args.commit_accounts.split(",")):
            print(json.dumps(measure_commit_latency(accounts, block_keys=args.block_keys)), flush=True)
        print(json.dumps(measure_commit_latency(block_keys=20, blocks=50)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
