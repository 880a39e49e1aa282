"""`ledger bench apply`: apply N signed plain transfers among many accounts on one core and print one JSON object.
(`ledger bench contracts`: the contracts layer's cost per transfer, node/tools/bench_contracts.py; `ledger bench
network`: a local multi-node network under load; `ledger bench consensus`: the consensus alone, validator processes
ordering opaque 250-byte payloads, node/tools/bench_consensus.py.)

    ledger bench apply --txs 20000 [--accounts 10000] [--block-size 1000] [--root-growth 10000,100000,1000000]

Setup (not timed): a genesis with the accounts, one asset issued to all of them, and N transfers signed in advance
(random sender -> random recipient). Timed: the ledger applying them in blocks exactly as a node does — decode the
bytes, check chain/expiry/replay, verify every Ed25519 signature, run the transfer, record the replay id, encode the
changed records and update the sparse Merkle tree (the state root) once per block, then commit to memory.

Also measured in the same run, interleaved with the blocks: raw pynacl Ed25519 verifications per second on the same
messages (verify_per_s; VerifyKey objects built in advance, the cheapest pynacl path), so ratio = tx_per_s /
verify_per_s says how close the ledger gets to "signature verification is the only cost". `breakdown_us` splits one
transfer's CPU time: verification (the raw rate), the state-root update and the decoding (each block's, timed again
on its own after the block), and the rest ("execution"). Both rates use this
process's CPU time (time.process_time), which other processes on a shared machine distort much less than wall time.
`smt_native` says whether the state root was updated by the native extension (ledger._smt_native) or by the
pure-Python reference (same roots either way).
State-root growth comes from node.tools.bench_smt.measure_root_update when that module is present.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import random
import subprocess
import sys
import time
from typing import Any

from nacl.signing import SigningKey, VerifyKey

from ledger import operations as o
from ledger.genesis import GenesisAccount, GenesisSpec
from ledger.memory import InMemoryLedger
from ledger.rules import CoreRuleEngine
from ledger.smt import NATIVE_AVAILABLE
from ledger.state_keys import tree_changes
from ledger.transaction import TxBody, sign_transaction
from node.chain.protocol import OPERATIONS, node_protocol
from node.tools import bench_contracts
from node.tools.loadgen import EXPIRY_GROUP_TXS
from node.tools.progress import Ticker
from node.validator.collector import (
    CollectorTotals,
    CollectorTuning,
    collector_totals,
    freeze_startup_heap,
    tune_collector,
)

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
    apply.add_argument("--seed", type=int, default=1, help="random seed of the transfers (default 1)")
    apply.set_defaults(func=run_apply)
    contracts = sub.add_parser(
        "contracts",
        help="the contracts layer's cost per transfer (no rules, five built-in rules, plus a CEL rule)",
        description=CONTRACTS_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench_contracts.add_arguments(contracts)
    contracts.set_defaults(func=bench_contracts.run)
    consensus = sub.add_parser(
        "consensus",
        help="the consensus alone: validator processes ordering opaque 250-byte payloads",
        description=CONSENSUS_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_consensus_arguments(consensus)
    consensus.set_defaults(func=run_consensus)
    network = sub.add_parser(
        "network",
        help="load a local multi-node network with signed transfers (the same as `ledger bench --nodes N ...`)",
        description=NETWORK_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_network_arguments(network)
    network.set_defaults(func=run_network)
    from node.tools import bench_admit, bench_state_sync

    admit = sub.add_parser(
        "admit",
        help="admission alone: signed transfers one validator admits per second through its HTTP API",
        description=bench_admit.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench_admit.add_arguments(admit)
    admit.set_defaults(func=bench_admit.run)

    state_sync = sub.add_parser(
        "state-sync",
        help="time for a new node to join a chain of N accounts by state sync (real transport, verified chunks)",
        description=bench_state_sync.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench_state_sync.add_arguments(state_sync)
    state_sync.set_defaults(func=bench_state_sync.run)

    index = sub.add_parser("index", help="`ledger index` throughput: a pre-built chain into a throwaway PostgreSQL",
                           description=INDEX_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    index.add_argument("--txs", type=int, default=20_000, help="transfers in the pre-built chain (default 20000)")
    index.add_argument("--users", type=int, default=64, help="test accounts (default 64)")
    index.add_argument("--audit-every", type=int, default=100, help="blocks between audits (default 100)")
    index.add_argument("--dir", default=None, help="keep the testnet here")
    index.set_defaults(func=run_index)
    add_network_arguments(parser)
    parser.set_defaults(func=run_network)


INDEX_DOC = """`ledger index` throughput (node/tools/bench_index.py): a one-validator testnet gets --txs signed transfers
(not timed), then a throwaway PostgreSQL is filled by the indexer from height 0 to the head (timed: fetch, verify,
write, audits). Prints one JSON object.

    ledger bench index [--txs 20000] [--users 64] [--audit-every 100]
"""


def run_index(args: argparse.Namespace) -> int:
    from node.tools.bench_index import IndexBenchConfig, run_index_bench

    doc = run_index_bench(IndexBenchConfig(txs=args.txs, users=args.users, audit_every=args.audit_every), args.dir)
    print(json.dumps(doc))
    return 0


NETWORK_DOC = """Network load benchmark (Caliper-style): starts (or uses, --dir) a local testnet, drives pre-signed plain
transfers from separate load processes through the nodes' admin sockets, reports submitted, committed, failed,
committed tx/s, commit latency p50/p90/p99/max and CPU per node, measures raw Ed25519 verifications/s over all cores
and prints efficiency = committed tx/s x validators / verify rate.

    ledger bench --nodes 4 --duration 10 [--rate 500 | --rate max] [--json FILE]
    ledger bench network --nodes 4 --duration 10 ...        (the same, spelled as a subcommand)
    ledger bench --nodes 4 --down 1 --duration 15           healthy, then 1 validator killed, then back (closed loop)
"""


CONTRACTS_DOC = """The contracts layer's cost per transfer (node/tools/bench_contracts.py): N signed single-leg transfers
among 100 verified holders under the core engine, under ContractsEngine without rules, with five built-in rules, and
with five rules plus a CEL rule; signatures verified up front. Prints one JSON object.

    ledger bench contracts [--txs 2000]
"""


CONSENSUS_DOC = """The consensus alone (node/tools/bench_consensus.py): N validator processes on loopback order opaque,
distinct 250-byte payloads with the node's transport, BLS certificates, synced safety state and a synced store of
certified blocks; each validator is a load source of its own payloads. Measures raw Ed25519 verifications/s on all
cores first (before any validator starts), then prints the `ledger bench` JSON shape with
efficiency = committed payloads/s / verify rate (target >= 1).

    ledger bench consensus --nodes 4 --duration 10 [--rate max | --rate 16000] [--block-payloads 4000]
"""


def add_consensus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load (default 10)")
    parser.add_argument("--rate", default="max", help="payloads/s over all validators, or max (default)")
    parser.add_argument("--block-payloads", type=int, default=4_000, help="payloads per block at most (default 4000)")
    parser.add_argument("--propose-wait-ms", type=int, default=0,
                        help="a leader waits up to this long for a full block before proposing what it has (default 0:"
                             " propose at once)")
    parser.add_argument("--inline-writes", action="store_true",
                        help="write the safety state and certified blocks on the event loop instead of their threads "
                             "(for comparison)")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds after the load for the last commits")
    parser.add_argument("--verify-seconds", type=float, default=2.0,
                        help="seconds of the raw Ed25519 verify phase before the load (default 2)")
    parser.add_argument("--dir", default=None, help="keep the validators' data and logs here")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the report as JSON here")


def run_consensus(args: argparse.Namespace) -> int:
    from node.tools.bench_consensus import ConsensusBenchConfig, format_report, run_consensus_bench
    from node.tools.payload_chain import MAX_BLOCK_PAYLOADS

    rate_text = str(args.rate).strip().lower()
    if rate_text != "max" and not (rate_text.isdigit() and int(rate_text) > 0):
        print("error: --rate must be a positive integer or 'max'", file=sys.stderr)
        return 2
    rate = None if rate_text == "max" else int(rate_text)
    if (not 1 <= args.nodes <= 32 or args.duration <= 0 or not 1 <= args.block_payloads <= MAX_BLOCK_PAYLOADS
            or args.propose_wait_ms < 0):
        print(f"error: need 1 <= --nodes <= 32, --duration > 0, 1 <= --block-payloads <= {MAX_BLOCK_PAYLOADS}, "
              "--propose-wait-ms >= 0", file=sys.stderr)
        return 2
    config = ConsensusBenchConfig(nodes=args.nodes, duration_s=args.duration, rate=rate,
                                  block_payloads=args.block_payloads, propose_wait_ms=args.propose_wait_ms,
                                  disk_threads=not args.inline_writes, drain_s=args.drain, verify_seconds=args.verify_seconds, directory=args.dir)
    try:
        with Ticker(lambda: "consensus benchmark running"):
            report = run_consensus_bench(config, out=sys.stderr)
    except (OSError, ValueError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report), file=sys.stderr)
    doc = report.to_json()
    doc["command"] = (f"ledger bench consensus --nodes {args.nodes} --duration {args.duration:g} --rate {rate_text} "
                      f"--block-payloads {args.block_payloads} --propose-wait-ms {args.propose_wait_ms}"
                      + (" --inline-writes" if args.inline_writes else ""))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps(doc))
    return 0 if report.failed == 0 else 1


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", dest="net_nodes", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--duration", dest="net_duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--rate", dest="net_rate", default="max", help="tx/s over all load processes, or max")
    parser.add_argument("--json", dest="net_json", default=None, help="also write the report as JSON here")
    parser.add_argument("--dir", dest="net_dir", default=None, help="use this running testnet (ledger testnet up)")
    parser.add_argument("--processes", dest="net_processes", type=int, default=2, help="load processes")
    parser.add_argument("--connections", dest="net_connections", type=int, default=8,
                        help="admin-socket connections per load process")
    parser.add_argument("--users", dest="net_users", type=int, default=64, help="test accounts (new network)")
    parser.add_argument("--verify-seconds", dest="net_verify_s", type=float, default=2.0,
                        help="seconds of the raw Ed25519 verify measurement (default 2)")
    parser.add_argument("--body", dest="net_body", choices=("msgpack", "json"), default="msgpack",
                        help="API batch bodies: a msgpack array of bin (default) or JSON hex strings")
    parser.add_argument("--via", dest="net_via", choices=("auto", "api", "admin"), default="auto",
                        help="submit through the HTTP API (POST /v1/tx/batch) or the admin sockets; auto: the API "
                             "when every node serves it")
    parser.add_argument("--expiry-group", dest="net_expiry_group", type=int, default=EXPIRY_GROUP_TXS,
                        help="transfers of a load process per expiry height, as clients signing with expiry = head + N "
                             "spread them (default 512); 0: one expiry height for the whole run (the workload before "
                             "2026-12-03, under which protocol 2 rewrote one large replay bucket every block)")
    parser.add_argument("--timeline", dest="net_timeline", action="store_true",
                        help="also report where each consensus round's time went, from every node's round timeline "
                             "(node/tools/round_report.py)")
    parser.add_argument("--down", dest="net_down", type=int, default=0,
                        help="degraded mode: a closed-loop load, healthy for --duration, then this many validators "
                             "killed for --duration, then restarted for --duration; the phases side by side "
                             "(node/tools/bench_degraded.py)")
    parser.add_argument("--clients", dest="net_clients", type=int, default=16,
                        help="--down: closed-loop clients (default 16)")
    parser.add_argument("--warmup", dest="net_warmup", type=float, default=5.0,
                        help="--down: seconds of load before the healthy phase (default 5)")
    parser.add_argument("--route-early", dest="net_route_early", action="store_true",
                        help="--down: clients send to a restarted validator from its restart, not once it is back "
                             "in consensus at the head")


def run_network(args: argparse.Namespace) -> int:
    from node.tools.loadgen import BenchConfig, format_report, run_network_bench
    from node.tools.testnet import TestnetError

    if args.net_down:
        return run_degraded(args)

    rate_text = str(args.net_rate).strip().lower()
    if rate_text == "max":
        rate = None
    elif rate_text.isdigit() and int(rate_text) > 0:
        rate = int(rate_text)
    else:
        print("error: --rate must be a positive integer or 'max'", file=sys.stderr)
        return 2
    if not 1 <= args.net_nodes <= 32 or args.net_duration <= 0 or args.net_processes < 1:
        print("error: need 1 <= --nodes <= 32, --duration > 0, --processes >= 1", file=sys.stderr)
        return 2
    config = BenchConfig(nodes=args.net_nodes, duration_s=args.net_duration, rate=rate, body=args.net_body,
                         processes=args.net_processes, connections=max(1, args.net_connections),
                         users=args.net_users, directory=args.net_dir, verify_seconds=args.net_verify_s,
                         via=args.net_via, timeline=args.net_timeline, expiry_group=args.net_expiry_group)
    try:
        report = run_network_bench(config, out=sys.stderr)
    except (TestnetError, OSError, ValueError, TimeoutError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    doc = report.to_json()
    doc["command"] = (f"ledger bench --nodes {report.validators} --duration {args.net_duration:g} "
                      f"--rate {'max' if rate is None else rate} --processes {args.net_processes} --via {report.via}"
                      + (" --timeline" if args.net_timeline else "")
                      + (f" --expiry-group {args.net_expiry_group}" if args.net_expiry_group != EXPIRY_GROUP_TXS else ""))
    if args.net_json:
        with open(args.net_json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps(doc))
    return 0


def run_degraded(args: argparse.Namespace) -> int:
    from node.tools.bench_degraded import DegradedConfig, run_degraded_bench
    from node.tools.testnet import TestnetError

    if args.net_dir is not None or args.net_duration <= 0 or args.net_warmup < 0:
        print("error: --down creates its own testnet (no --dir) and needs --duration > 0", file=sys.stderr)
        return 2
    config = DegradedConfig(nodes=args.net_nodes, down=args.net_down, duration_s=args.net_duration,
                            warmup_s=args.net_warmup, clients=args.net_clients,
                            route_when_ready=not args.net_route_early)
    try:
        doc = run_degraded_bench(config, out=sys.stderr)
    except (TestnetError, OSError, ValueError, TimeoutError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    doc["command"] = (f"ledger bench --nodes {config.nodes} --down {config.down} --duration {config.duration_s:g} "
                      f"--clients {config.clients} --warmup {config.warmup_s:g}"
                      + ("" if config.route_when_ready else " --route-early"))
    if args.net_json:
        with open(args.net_json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps(doc))
    return 0


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
    # The node's operation set; the core rule engine (plain transfers, no asset rules: `ledger bench contracts`
    # measures the contracts engine).
    ledger = InMemoryLedger(spec, node_protocol(CoreRuleEngine()))
    setup = [o.DefineAsset(ISSUER, ASSET, 2, (1 << 64) - 1, "Bench cash", "", (), (), ())]
    setup += [o.Issue(ISSUER, ASSET, account_id(i), 1_000_000_000) for i in range(accounts)]
    txs = []
    for n, lo in enumerate(range(0, len(setup), 32)):
        body = TxBody(1, CHAIN, (ISSUER,), n, 10, tuple(setup[lo : lo + 32]))
        txs.append(sign_transaction(body, [(ISSUER, issuer_key)], operations=OPERATIONS).to_bytes())
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
        out.append(sign_transaction(body, [(sender, keys[s])], operations=OPERATIONS).to_bytes())
    return out


def _gc_report(tuning: CollectorTuning, before: CollectorTotals | None, after: CollectorTotals | None) -> dict:
    assert before is not None and after is not None
    return {
        "thresholds": list(tuning.thresholds),
        "source": tuning.source,
        "collections": [a - b for a, b in zip(after.collections, before.collections, strict=True)],
        "pause_ms": [round((a - b) * 1e3, 1) for a, b in zip(after.pause_seconds, before.pause_seconds, strict=True)],
    }


def root_growth(spec: str) -> Any:
    if spec.strip().lower() == "none":
        return "skipped (--root-growth none)"
    try:
        module = importlib.import_module("node.tools.bench_smt")
    except ImportError as exc:
        return f"unavailable: node.tools.bench_smt could not be imported ({exc})"
    measure = getattr(module, "measure_root_update", None)
    if measure is None:
        return "unavailable: node.tools.bench_smt has no measure_root_update"
    return [measure(int(x)) for x in spec.split(",") if x.strip()]


def run_apply(args: argparse.Namespace) -> int:
    if args.txs < 1 or args.accounts < 2 or args.block_size < 1:
        print("error: need --txs >= 1, --accounts >= 2, --block-size >= 1", file=sys.stderr)
        return 2
    # The cyclic collector as `node run` sets it (node/validator/collector.py; LEDGER_GC_THRESHOLDS=700,10,10 gives
    # CPython's defaults), and the setup's heap frozen as a node freezes what its startup built.
    try:
        tuning = tune_collector()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with Ticker(lambda: f"applying {args.txs} transfers (setup, then the timed blocks)"):
        return _run_apply(args, tuning)


def _run_apply(args: argparse.Namespace, tuning: CollectorTuning) -> int:
    t_setup = time.perf_counter()
    ledger, keys = build_ledger(args.accounts)
    blocks = (args.txs + args.block_size - 1) // args.block_size
    txs = make_transfers(args.txs, args.accounts, keys, ledger.height + blocks + 1, args.seed)
    setup_s = time.perf_counter() - t_setup

    from ledger.transaction import decode_transaction

    samples = []
    for raw in txs[: min(len(txs), 5_000)]:
        tx = decode_transaction(raw, operations=OPERATIONS)
        samples.append((tx.signatures[0].public_key, tx.signing_message, tx.signatures[0].signature))
    prepared = [(VerifyKey(pk), msg, sig) for pk, msg, sig in samples]
    freeze_startup_heap()
    gc_before = collector_totals()

    # CPU time of this process (time.process_time), so other processes on a shared machine distort less; the raw
    # verification rate is sampled between blocks so both measurements see the same conditions.
    ok = 0
    apply_cpu = verify_cpu = root_cpu = decode_cpu = 0.0
    verified = 0
    wall = time.perf_counter()
    for lo in range(0, len(txs), args.block_size):
        block_txs = txs[lo : lo + args.block_size]
        parent_tree = ledger.tree
        start = time.process_time()
        out = ledger.apply(block_txs, time=ledger.time + 1)
        apply_cpu += time.process_time() - start
        ok += sum(1 for r in out.receipts if r.code == 0)
        # The breakdown, outside the timed apply: the block's state-root update and its decoding, done again.
        start = time.process_time()
        again = parent_tree.update(tree_changes(out.changes))
        root_cpu += time.process_time() - start
        assert again.root == out.state_root, "the state root timed again differs"
        start = time.process_time()
        for raw in block_txs:
            decode_transaction(raw, operations=OPERATIONS)
        decode_cpu += time.process_time() - start
        batch = prepared[lo % len(prepared) : lo % len(prepared) + min(args.block_size, 1_000)] or prepared
        start = time.process_time()
        for vk, msg, sig in batch:
            vk.verify(msg, sig)
        verify_cpu += time.process_time() - start
        verified += len(batch)
    wall = time.perf_counter() - wall
    gc_after = collector_totals()

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
        # Where the CPU time of one transfer goes (µs): the raw verification rate, and the state-root update and
        # the decoding of the same blocks timed again on their own; "execution" is the rest (checks, the transfer,
        # overlays, receipts, replay ids, encoding the changes, the supply check, the in-memory commit).
        "breakdown_us": {
            "verify": round(1e6 / verify_per_s, 1),
            "state_root": round(root_cpu / args.txs * 1e6, 1),
            "decode": round(decode_cpu / args.txs * 1e6, 1),
            "execution": round((elapsed - root_cpu - decode_cpu) / args.txs * 1e6 - 1e6 / verify_per_s, 1),
        },
        "state_root": ledger.root.hex(),
        # Which state-root update ran: ledger._smt_native (built by `pip install -e .`) or the pure-Python reference.
        "smt_native": NATIVE_AVAILABLE,
        # The cyclic collector during the timed loop (its pauses are inside cpu_seconds and the verify sampling).
        "gc": _gc_report(tuning, gc_before, gc_after),
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
