"""Where a round's time goes: the round timelines of every node of a local testnet joined into one breakdown.

    timelines = fetch_timelines(net, since_us, until_us)     # node id -> events (admin `round_timeline`)
    summary = summarize(timelines)                           # {"rounds": n, "phases": {name: {median, p90, n}}, ...}
    print(format_summary(summary))

Every node keeps its round timeline (node/validator/round_timeline.py) on the machine's monotonic clock, which all
processes of one machine share, so a proposal's departure from its leader and its arrival at the other validators
are comparable instants. For each proposal (height, round) seen leaving its leader in the window, the phases are:

    leader_wait_ms         the replica asked the leader for a payload -> it started building one (the payload wait:
                           its parent still executing, MIN_BLOCK_INTERVAL_MS, or waiting for transactions)
    build_ms               Application.propose
    persist_before_send_ms proposal built -> proposal sent (the leader's PersistSafety of the proposal)
    transfer_ms            proposal sent -> a validator asks to execute it (transport, decoding, the proposal's checks)
    exec_queue_ms          asked -> its execution starts (waiting for the execution thread or the parent)
    exec_wall_ms           the execution, wall time on the execution thread; exec_cpu_ms its CPU time
    vote_after_exec_ms     execution ended -> vote sent (the loop picking up the answer + the vote's PersistSafety)
    persist_ms             every PersistSafety that carried a block (persist_bytes: the blocks' payload bytes)
    qc_after_proposal_ms   proposal sent -> the next round's leader entered the next round by a QC of this one
    next_proposal_ms       that QC -> the next proposal sent (the next leader's wait, build and PersistSafety)
    round_ms               proposal sent -> the next height's proposal sent
    commit_ms              a commit (finalize + the synced batch), on every node
    commit_after_proposal_ms   proposal sent -> committed on a node

Each phase is summarized over every (proposal, node) pair it applies to: median, p90 and count. `busy_ms_per_s` adds
up per node and second of the window what the event loop spent in safety writes, commits and proposal building.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from node.validator.round_timeline import (
    COMMIT,
    EXEC_ASKED,
    EXEC_DONE,
    PAYLOAD_ASKED,
    PERSIST,
    PROPOSAL_OUT,
    PROPOSED,
    ROUND,
    TIMEOUT,
    VOTE_OUT,
)

__all__ = ["PHASES", "fetch_timelines", "format_summary", "summarize"]

Event = tuple[int, int, int, int, int, int]  # t_us, kind, height, round, a, b

PHASES = (
    "leader_wait_ms",
    "build_ms",
    "persist_before_send_ms",
    "transfer_ms",
    "exec_queue_ms",
    "exec_wall_ms",
    "exec_cpu_ms",
    "vote_after_exec_ms",
    "persist_ms",
    "persist_bytes",
    "payload_bytes",
    "qc_after_proposal_ms",
    "next_proposal_ms",
    "round_ms",
    "commit_ms",
    "commit_after_proposal_ms",
)


def fetch_timelines(net: Any, since_us: int, until_us: int) -> dict[str, list[Event]]:
    """Every running node's timeline events between the two instants (µs of the machine's monotonic clock)."""
    out: dict[str, list[Event]] = {}
    for i in range(net.n):
        events: list[Event] = []
        after = -1
        while True:
            answer = net.admin(i, {"op": "round_timeline", "after": after})
            got = None if answer is None else answer.get("events")
            if not got:
                break
            for seq, t_us, kind, height, round_, a, b in got:
                after = int(seq)
                if since_us <= t_us <= until_us:
                    events.append((int(t_us), int(kind), int(height), int(round_), int(a), int(b)))
        out[net.node_id(i)] = events
    return out


def _stats(values: Sequence[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {"median": round(statistics.median(ordered), 2), "p90": round(p90, 2), "n": len(ordered)}


def summarize(timelines: Mapping[str, Iterable[Event]]) -> dict[str, Any]:
    """The per-phase breakdown of the rounds whose proposals left their leader within the timelines."""
    by_node: dict[str, list[Event]] = {n: sorted(events) for n, events in timelines.items()}
    out_at: dict[tuple[int, int], tuple[str, int, int]] = {}  # (height, round) -> leader, t, payload bytes
    for node, events in by_node.items():
        for t, kind, h, r, a, _ in events:
            if kind == PROPOSAL_OUT:
                out_at[(h, r)] = (node, t, a)
    values: dict[str, list[float]] = defaultdict(list)
    first_t = min((e[0] for es in by_node.values() for e in es), default=0)
    last_t = max((e[0] for es in by_node.values() for e in es), default=0)
    busy: dict[str, float] = {}
    timeouts = 0
    # Per node: the instants of its events by (kind, height, round), first occurrence.
    index: dict[str, dict[tuple[int, int, int], Event]] = {}
    for node, events in by_node.items():
        seen: dict[tuple[int, int, int], Event] = {}
        spent = 0
        for e in events:
            t, kind, h, r, a, b = e
            if kind in (PERSIST, ROUND, TIMEOUT, VOTE_OUT):
                key = (kind, 0, r)  # these carry the head's height: keyed by round only
            else:
                key = (kind, h, r)
            seen.setdefault(key, e)
            if kind == PERSIST:
                spent += a
                if b:
                    values["persist_ms"].append(a / 1000)
                    values["persist_bytes"].append(b)
            elif kind == COMMIT:
                spent += a
                values["commit_ms"].append(a / 1000)
            elif kind == PROPOSED:
                spent += b
            elif kind == TIMEOUT:
                timeouts += 1
        index[node] = seen
        busy[node] = round(spent / 1000 / max(1e-3, (last_t - first_t) / 1e6), 1)
    proposal_heights = sorted(out_at)
    next_by_height: dict[int, int] = {}
    for h, r in proposal_heights:
        next_by_height.setdefault(h, out_at[(h, r)][1])
    for (h, r), (leader, t_out, size) in out_at.items():
        values["payload_bytes"].append(size)
        lead = index[leader]
        asked, built = lead.get((PAYLOAD_ASKED, h, r)), lead.get((PROPOSED, h, r))
        if asked is not None and built is not None:
            build_us = built[5]
            values["build_ms"].append(build_us / 1000)
            values["leader_wait_ms"].append(max(0, built[0] - build_us - asked[0]) / 1000)
            values["persist_before_send_ms"].append((t_out - built[0]) / 1000)
        for node, seen in index.items():
            exec_asked, done = seen.get((EXEC_ASKED, h, r)), seen.get((EXEC_DONE, h, r))
            if exec_asked is not None and node != leader:
                values["transfer_ms"].append((exec_asked[0] - t_out) / 1000)
            if exec_asked is not None and done is not None:
                values["exec_queue_ms"].append(max(0, done[0] - done[4] - exec_asked[0]) / 1000)
                values["exec_wall_ms"].append(done[4] / 1000)
                values["exec_cpu_ms"].append(done[5] / 1000)
                vote = seen.get((VOTE_OUT, 0, r))
                if vote is not None and vote[0] >= done[0]:
                    values["vote_after_exec_ms"].append((vote[0] - done[0]) / 1000)
            committed = seen.get((COMMIT, h, r))
            if committed is not None:
                values["commit_after_proposal_ms"].append((committed[0] - t_out) / 1000)
        following = [key for key in out_at if key[1] == r + 1]
        if following:
            next_leader, t_next, _ = out_at[following[0]]
            entered = index[next_leader].get((ROUND, 0, r + 1))
            if entered is not None and entered[4] == 1 and entered[0] >= t_out:
                values["qc_after_proposal_ms"].append((entered[0] - t_out) / 1000)
                values["next_proposal_ms"].append((t_next - entered[0]) / 1000)
        if h + 1 in next_by_height and next_by_height[h + 1] > t_out:
            values["round_ms"].append((next_by_height[h + 1] - t_out) / 1000)
    return {
        "proposals": len(out_at),
        "window_s": round((last_t - first_t) / 1e6, 2),
        "timeouts": timeouts,
        "phases": {name: _stats(values[name]) for name in PHASES},
        "busy_ms_per_s": busy,
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    lines = [
        (
            f"round timeline: {summary['proposals']} proposals in {summary['window_s']} s, "
            f"{summary['timeouts']} round timeouts (all nodes)"
        ),
        f"  {'phase':<26} {'median':>10} {'p90':>10} {'n':>6}",
    ]
    for name, st in summary["phases"].items():
        if st.get("n"):
            lines.append(f"  {name:<26} {st['median']:>10} {st['p90']:>10} {st['n']:>6}")
    busy = ", ".join(f"{k} {v}" for k, v in sorted(summary["busy_ms_per_s"].items()))
    lines.append(f"  loop ms/s in safety writes + commits + proposal building: {busy}")
    return "\n".join(lines)
