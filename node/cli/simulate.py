"""`ledger simulate`: run a deterministic simulator over many seeds and print one JSON object.

    ledger simulate --seeds 200 --nodes 4 --byzantine 1            the consensus protocol (consensus/simulator.py)
    ledger simulate --app --seeds 50 --nodes 4 --byzantine 1       whole nodes: the real Application, stores, block
                                                                   sync, epochs and driver (node/tools/simulation/)

A failing seed prints the command that replays it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from consensus.byzantine import BEHAVIOURS
from consensus.replica import LEADER_ELECTIONS
from consensus.simulator import DOWN_MODES, merge_summaries, run_many

# Seeds per task when --jobs > 1.
CHUNK: int = 20


def _pool(jobs: int) -> ProcessPoolExecutor:
    """Worker processes started by a fork server: never forked from a process that runs threads (a test runner's,
    an event loop's), whose held locks would deadlock the child."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="run the deterministic consensus simulator",
                                   description="Simulate a cluster of replicas with a seeded faulty network, "
                                               "crash-restarts and Byzantine replicas; check safety and liveness.")
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds to run (default 100)")
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--nodes", type=int, default=4, help="replicas (default 4)")
    parser.add_argument("--byzantine", type=int, default=1, help="Byzantine replicas, < nodes/3 (default 1)")
    parser.add_argument("--rounds", type=int, default=30, help="minimum rounds per run (default 30)")
    parser.add_argument("--behaviour", choices=BEHAVIOURS, action="append", default=None,
                        help="Byzantine behaviour (repeatable); default: chosen by each seed")
    restart = parser.add_mutually_exclusive_group()
    restart.add_argument("--all-restart", dest="all_restart", action="store_const", const=True, default=None,
                         help="every run crashes and restarts all replicas at once")
    restart.add_argument("--no-all-restart", dest="all_restart", action="store_const", const=False,
                         help="never restart all replicas at once (default: every fourth seed does)")
    parser.add_argument("--no-crashes", action="store_true", help="no individual crash-restarts")
    parser.add_argument("--no-partitions", action="store_true", help="no network partitions")
    parser.add_argument("--reconfig", action="store_true",
                        help="each seed also draws 1-3 epoch changes (add, remove a validator, rotate a BLS key)")
    parser.add_argument("--down", type=int, default=0,
                        help="honest validators taken down after GST for 10 s (byzantine + down <= f); reports the "
                             "committed blocks per virtual second healthy and degraded, and the recovery")
    parser.add_argument("--down-mode", choices=DOWN_MODES, default="",
                        help="--down: crashed, wiped (recovers its safety state from a quorum) or partitioned away "
                             "(default: chosen by each seed)")
    parser.add_argument("--leader-election", choices=LEADER_ELECTIONS, default="reputation",
                        help="how leaders are elected (default reputation; round_robin to compare)")
    parser.add_argument("--app", action="store_true",
                        help="simulate whole nodes (Application, LevelDB stores, block sync, epochs, clients) "
                             "instead of bare replicas; reconfiguration, wipes and clock skew are on by default")
    parser.add_argument("--spare", type=int, default=1, help="--app: nodes outside genesis governance may add")
    parser.add_argument("--no-wipes", action="store_true",
                        help="no wipes: of a replica's safety state before GST (it recovers in its epoch), or with "
                             "--app of a machine's data directory")
    parser.add_argument("--no-skew", action="store_true", help="--app: no skewed clock")
    parser.add_argument("--no-reconfig", action="store_true", help="--app: no governance proposals")
    parser.add_argument("--no-clients", action="store_true", help="--app: no client transactions")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1; runs stay deterministic)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1 or args.seeds < 0 or args.nodes < 1 or args.byzantine < 0 or 3 * args.byzantine >= args.nodes or args.rounds < 1:
        print("error: need jobs >= 1, seeds >= 0, rounds >= 1 and 0 <= byzantine < nodes/3", file=sys.stderr)
        return 2

    def progress(result: object) -> None:
        if not args.json and not result.ok:  # type: ignore[attr-defined]
            print(f"FAILED seed {result.seed}: {result.safety_violations[:3]} {result.liveness_failures[:1]}",  # type: ignore[attr-defined]
                  file=sys.stderr)

    if args.app:
        return _run_app(args)
    if args.down < 0 or args.byzantine + args.down > (args.nodes - 1) // 3 or (args.down and args.reconfig):
        print("error: need 0 <= down, byzantine + down <= f, and no --reconfig with --down", file=sys.stderr)
        return 2
    options = {"nodes": args.nodes, "byzantine": args.byzantine, "rounds": args.rounds,
               "behaviours": tuple(args.behaviour or ()), "all_restart": args.all_restart,
               "crashes": not args.no_crashes, "partitions": not args.no_partitions, "reconfig": args.reconfig,
               "leader_election": args.leader_election, "down": args.down, "down_mode": args.down_mode,
               "wipes": not args.no_wipes}
    if args.jobs <= 1:
        summary = run_many(args.seeds, seed_start=args.seed_start, on_result=progress, clock=time.perf_counter,
                           **options)  # type: ignore[arg-type]
    else:
        started = time.perf_counter()
        with _pool(args.jobs) as pool:
            futures = [pool.submit(run_many, min(CHUNK, args.seed_start + args.seeds - start), seed_start=start,
                                   **options)  # type: ignore[arg-type]
                       for start in range(args.seed_start, args.seed_start + args.seeds, CHUNK)]
            parts = [f.result() for f in futures]
        summary = merge_summaries(parts, time.perf_counter() - started)
        if not args.json:
            for failure in summary["failures"]:  # type: ignore[attr-defined]
                print(f"FAILED seed {failure['seed']}: {failure}", file=sys.stderr)
    print(json.dumps(summary, sort_keys=True))
    if summary["failed_seeds"] and not args.json:
        seeds = " ".join(str(s) for s in summary["failed_seeds"])  # type: ignore[union-attr]
        print(f"reproduce: ledger simulate --seeds 1 --seed-start <seed> --nodes {args.nodes} "
              f"--byzantine {args.byzantine}{' --reconfig' if args.reconfig else ''}"
              f"{f' --down {args.down}' if args.down else ''}{f' --down-mode {args.down_mode}' if args.down_mode else ''}"
              f"   (failing seeds: {seeds})", file=sys.stderr)
    return 1 if summary["safety_violations"] or summary["liveness_failures"] else 0


def _run_app(args: argparse.Namespace) -> int:

    from node.tools.simulation.many import merge
    from node.tools.simulation.many import run_many as run_many_app

    if args.nodes < 4 or args.spare < 0:
        print("error: --app needs at least 4 nodes and spare >= 0", file=sys.stderr)
        return 2

    def progress(result: object) -> None:
        if not args.json and not result.ok:  # type: ignore[attr-defined]
            print(f"FAILED seed {result.seed}: {result.safety_violations[:3]} {result.liveness_failures[:1]}\n"  # type: ignore[attr-defined]
                  f"  replay: {result.config.command()}", file=sys.stderr)  # type: ignore[attr-defined]

    options = {"nodes": args.nodes, "byzantine": args.byzantine, "behaviours": tuple(args.behaviour or ()),
               "spare": args.spare, "all_restart": args.all_restart, "crashes": not args.no_crashes,
               "partitions": not args.no_partitions, "wipes": not args.no_wipes, "skew": not args.no_skew,
               "reconfig": not args.no_reconfig, "clients": not args.no_clients}
    if args.jobs <= 1:
        summary = run_many_app(args.seeds, seed_start=args.seed_start, on_result=progress, clock=time.perf_counter,
                               **options)
    else:
        started = time.perf_counter()
        chunk = max(1, min(CHUNK, args.seeds // (2 * args.jobs) or 1))
        with _pool(args.jobs) as pool:
            futures = [pool.submit(run_many_app, min(chunk, args.seed_start + args.seeds - start), seed_start=start,
                                   **options)
                       for start in range(args.seed_start, args.seed_start + args.seeds, chunk)]
            parts = [f.result() for f in futures]
        summary = merge(parts, time.perf_counter() - started)
        if not args.json:
            for failure in summary["failures"]:
                print(f"FAILED seed {failure['seed']}: {failure}\n  replay: {failure['replay']}", file=sys.stderr)
    print(json.dumps(summary, sort_keys=True))
    return 1 if summary["safety_violations"] or summary["liveness_failures"] else 0
