"""`ledger simulate`: run a deterministic simulator over many seeds and print a summary (`--json`: one JSON object).
Progress goes to stderr every few seconds.

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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from consensus.byzantine import BEHAVIOURS
from consensus.replica import LEADER_ELECTIONS
from consensus.simulator import DOWN_MODES, merge_summaries, run_many
from node.tools.progress import Ticker

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
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object (default: text)")
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
    done = SeedCount(args.seeds)
    if args.jobs <= 1:
        with Ticker(done.describe):
            summary = run_many(args.seeds, seed_start=args.seed_start, on_result=done.counting(progress),
                               clock=time.perf_counter, **options)  # type: ignore[arg-type]
    else:
        started = time.perf_counter()
        with _pool(args.jobs) as pool, Ticker(done.describe):
            futures = [pool.submit(run_many, min(CHUNK, args.seed_start + args.seeds - start), seed_start=start,
                                   **options)  # type: ignore[arg-type]
                       for start in range(args.seed_start, args.seed_start + args.seeds, CHUNK)]
            parts = [done.add_part(f.result()) for f in futures]
        summary = merge_summaries(parts, time.perf_counter() - started)
        if not args.json:
            for failure in summary["failures"]:  # type: ignore[attr-defined]
                print(f"FAILED seed {failure['seed']}: {failure}", file=sys.stderr)
    _print_summary(args, summary)
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
    done = SeedCount(args.seeds)
    if args.jobs <= 1:
        with Ticker(done.describe):
            summary = run_many_app(args.seeds, seed_start=args.seed_start, on_result=done.counting(progress),
                                   clock=time.perf_counter, **options)
    else:
        started = time.perf_counter()
        chunk = max(1, min(CHUNK, args.seeds // (2 * args.jobs) or 1))
        with _pool(args.jobs) as pool, Ticker(done.describe):
            futures = [pool.submit(run_many_app, min(chunk, args.seed_start + args.seeds - start), seed_start=start,
                                   **options)
                       for start in range(args.seed_start, args.seed_start + args.seeds, chunk)]
            parts = [done.add_part(f.result()) for f in futures]
        summary = merge(parts, time.perf_counter() - started)
        if not args.json:
            for failure in summary["failures"]:
                print(f"FAILED seed {failure['seed']}: {failure}\n  replay: {failure['replay']}", file=sys.stderr)
    _print_summary(args, summary)
    return 1 if summary["safety_violations"] or summary["liveness_failures"] else 0


class SeedCount:
    """Seeds finished so far, for the progress line (results arrive on this thread, or per finished chunk)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.failed = 0

    def counting(self, progress: Callable[[Any], None]) -> Callable[[Any], None]:
        def on_result(result: Any) -> None:
            self.done += 1
            self.failed += 0 if result.ok else 1
            progress(result)

        return on_result

    def add_part(self, part: dict[str, Any]) -> dict[str, Any]:
        self.done += int(part["runs"])
        self.failed += len(part["failed_seeds"])
        return part

    def describe(self) -> str:
        return f"{self.done}/{self.total} seeds simulated, {self.failed} failed"


def _print_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(format_summary(summary, app=args.app))


def format_summary(summary: dict[str, Any], *, app: bool = False) -> str:
    """The summary as people read it (`--json` prints the same numbers as one JSON object)."""
    failed = summary["failed_seeds"]
    verdict = "every seed safe and live" if not failed else f"FAILED seeds: {' '.join(str(x) for x in failed)}"
    what = "whole nodes (Application, stores, block sync, epochs)" if app else "consensus replicas"
    lines = [
        f"simulated {summary['runs']} seeds of {what} in {summary['seconds']:.1f}s: {verdict}",
        f"  safety violations  {summary['safety_violations']}",
        f"  liveness failures  {summary['liveness_failures']}",
        f"  commits            {summary['commits']} over {summary['rounds']} rounds, {summary['messages']} messages",
        f"  epoch changes      {summary['epoch_changes']}",
        f"  evidence           {summary['evidence']} misbehaviours recorded",
    ]
    if summary.get("healthy_blocks") or summary.get("degraded_blocks"):
        lines.append(f"  validators down    {summary['healthy_blocks']} blocks healthy in {summary['healthy_ms']} ms, "
                     f"{summary['degraded_blocks']} degraded in {summary['degraded_ms']} ms, recovered "
                     f"{summary['recovered']} times (slowest {summary.get('max_recovery_ms', -1)} ms)")
        lines.append(f"  back              {summary.get('recovered_blocks', 0)} blocks in the "
                     f"{summary.get('recovered_ms', 0)} ms after the returns "
                     f"({summary.get('recovered_ratio', '-')} of healthy); a 1 s window at 90% of the healthy "
                     f"rate within {summary.get('max_back_to_healthy_ms', -1)} ms of the return at the latest, "
                     f"never in {summary.get('never_back_to_healthy', 0)} runs")
    counters = summary.get("counters") or {}
    if counters:
        lines.append("  counters           " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(
            counters.items())))
    lines.append(f"  rate               {summary['seeds_per_second']} seeds/s (--json for every number)")
    return "\n".join(lines)
