"""`ledger bench apply`: apply N signed plain transfers among many accounts on one core and print one JSON object.

    ledger bench apply --txs 20000 [--accounts 10000] [--block-size 1000] [--root-growth 10000,100000,1000000]

Setup (not timed): a genesis with the accounts, one asset issued to all of them, and N transfers signed in advance
(random sender -> random recipient). Timed: the ledger applying them in blocks exactly as a node does — decode the
bytes, check chain/expiry/replay, verify every Ed25519 signature, run the transfer, record the replay id, encode the
changed records and update the sparse Merkle tree (the state root) once per block, then commit to memory.

Also measured in the same run, interleaved with the blocks: raw pynacl Ed25519 verifications per second on the same
messages (verify_per_s; VerifyKey objects built in advance, the cheapest pynacl path), so ratio = tx_per_s /
verify_per_s says how close the ledger gets to "signature verification is the only cost". Both rates use this
process's CPU time (time.process_time), which other processes on a shared machine distort much less than wall time.
State-root growth comes from node.bench_smt.measure_root_update when that module is present.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import random
import sys
import time
from typing import Any

from nacl.signing import SigningKey, VerifyKey

from ledger import operations as o
from ledger.genesis import GenesisAccount, GenesisSpec
from ledger.memory import InMemoryLedger
from ledger.transaction import TxBody, sign_transaction

CHAIN = "bench-chain"
ASSET = "CASH-T"
ISSUER = "issuer@bench-0"
T0 = 1_800_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks", description="Benchmarks that print JSON.")
    sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    apply = sub.add_parser(
        "apply",
        help="apply signed plain transfers (signature verification + state root included)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument("--txs", type=int, default=10_000, help="transfers to apply (default 10000)")
    apply.add_argument("--accounts", type=int, default=10_000, help="accounts (default 10000)")
    apply.add_argument("--block-size", type=int, default=1_000, help="transactions per block (default 1000)")
    apply.add_argument(
        "--root-growth",
        default="10000,100000",
        help="account counts for the state-root growth measurement, comma separated, or 'none' (default 10000,100000;"
        " 1000000 takes ~20 s and ~3 GB)",
    )
    apply.add_argument("--seed", type=int, default=1)
    apply.set_defaults(func=run_apply)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def account_id(i: int) -> str:
    return f"acct-{i}@bench-{i % 16}"


def key_of(i: int) -> SigningKey:
    return SigningKey(hashlib.sha256(b"bench/%d" % i).digest())


def build_ledger(accounts: int) -> tuple[InMemoryLedger, list[SigningKey]]:
    keys = [key_of(i) for i in range(accounts)]
    issuer_key = key_of(-1)
    spec = GenesisSpec(
        CHAIN,
        T0,
        tuple((f"bench-{m}", f"Bench {m}") for m in range(16)),
        (GenesisAccount(ISSUER, (bytes(issuer_key.verify_key),), 1, ("admin", "issuer")),)
        + tuple(GenesisAccount(account_id(i), (bytes(keys[i].verify_key),), 1) for i in range(accounts)),
    )
    ledger = InMemoryLedger(spec)
    setup = [o.DefineAsset(ISSUER, ASSET, 2, (1 << 64) - 1, "Bench cash", "", (), (), ())]
    setup += [o.Issue(ISSUER, ASSET, account_id(i), 1_000_000_000) for i in range(accounts)]
    txs = []
    for n, lo in enumerate(range(0, len(setup), 32)):
        body = TxBody(1, CHAIN, (ISSUER,), n, 10, tuple(setup[lo : lo + 32]))
        txs.append(sign_transaction(body, [(ISSUER, issuer_key)]).to_bytes())
    out = ledger.apply(txs, time=T0 + 1)
    assert all(r.code == 0 for r in out.receipts), "bench setup failed"
    return ledger, keys


def make_transfers(n: int, accounts: int, keys: list[SigningKey], expiry: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for nonce in range(n):
        s = rng.randrange(accounts)
        r = rng.randrange(accounts - 1)
        r += r >= s
        sender = account_id(s)
        body = TxBody(
            1, CHAIN, (sender,), nonce, expiry, (o.Transfer(sender, ASSET, (o.TransferLeg(account_id(r), 1),)),)
        )
        out.append(sign_transaction(body, [(sender, keys[s])]).to_bytes())
    return out


def root_growth(spec: str) -> Any:
    if spec.strip().lower() == "none":
        return "skipped (--root-growth none)"
    try:
        module = importlib.import_module("node.bench_smt")
    except ImportError as exc:
        return f"unavailable: node.bench_smt could not be imported ({exc})"
    measure = getattr(module, "measure_root_update", None)
    if measure is None:
        return "unavailable: node.bench_smt has no measure_root_update"
    return [measure(int(x)) for x in spec.split(",") if x.strip()]


def run_apply(args: argparse.Namespace) -> int:
    if args.txs < 1 or args.accounts < 2 or args.block_size < 1:
        print("error: need --txs >= 1, --accounts >= 2, --block-size >= 1", file=sys.stderr)
        return 2
    t_setup = time.perf_counter()
    ledger, keys = build_ledger(args.accounts)
    blocks = (args.txs + args.block_size - 1) // args.block_size
    txs = make_transfers(args.txs, args.accounts, keys, ledger.height + blocks + 1, args.seed)
    setup_s = time.perf_counter() - t_setup

    from ledger.transaction import decode_transaction

    samples = []
    for raw in txs[: min(len(txs), 5_000)]:
        tx = decode_transaction(raw)
        samples.append((tx.signatures[0].public_key, tx.signing_message, tx.signatures[0].signature))
    prepared = [(VerifyKey(pk), msg, sig) for pk, msg, sig in samples]

    # CPU time of this process (time.process_time), so other processes on a shared machine distort less; the raw
    # verification rate is sampled between blocks so both measurements see the same conditions.
    ok = 0
    apply_cpu = verify_cpu = 0.0
    verified = 0
    wall = time.perf_counter()
    for lo in range(0, len(txs), args.block_size):
        start = time.process_time()
        out = ledger.apply(txs[lo : lo + args.block_size], time=ledger.time + 1)
        apply_cpu += time.process_time() - start
        ok += sum(1 for r in out.receipts if r.code == 0)
        batch = prepared[lo % len(prepared) : lo % len(prepared) + min(args.block_size, 1_000)] or prepared
        start = time.process_time()
        for vk, msg, sig in batch:
            vk.verify(msg, sig)
        verify_cpu += time.process_time() - start
        verified += len(batch)
    wall = time.perf_counter() - wall

    verify_per_s = verified / verify_cpu
    tx_per_s = args.txs / apply_cpu
    elapsed = apply_cpu
    result = {
        "bench": "apply",
        "txs": args.txs,
        "accounts": args.accounts,
        "block_size": args.block_size,
        "blocks": blocks,
        "succeeded": ok,
        "cpu_seconds": round(elapsed, 3),
        "wall_seconds_incl_verify_sampling": round(wall, 3),
        "tx_per_s": round(tx_per_s, 1),
        "verify_per_s": round(verify_per_s, 1),
        "ratio": round(tx_per_s / verify_per_s, 3),
        "per_tx_us": round(elapsed / args.txs * 1e6, 1),
        "verify_us": round(1e6 / verify_per_s, 1),
        "state_root": ledger.root.hex(),
        "setup_s": round(setup_s, 2),
        "root_update_growth": root_growth(args.root_growth),
        "command": "ledger bench apply "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in (
                ("txs", args.txs),
                ("accounts", args.accounts),
                ("block_size", args.block_size),
                ("root_growth", args.root_growth),
            )
        ),
    }
    print(json.dumps(result))
    return 0 if ok == args.txs else 1
