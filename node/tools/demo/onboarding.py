"""Scenario 7 of `ledger demo` (`ledger demo --scenario 7`, `ledger testnet reconfigure`): member onboarding and
validator-set changes on a running testnet of real node processes, under load.

    report = play_onboarding(net, out=sys.stdout, rate=20)      net: node.tools.testnet.Testnet, 4 founders up

1. Member m4 and its validator node-4 join: `net.add_node()` writes node-4's keys and config; the governor of m0
   proposes "add member m4 + validator node-4"; node-4 starts while the proposal is open (it syncs from genesis as a
   non-voting peer); m1 and m2 approve (3 of 4) and node-4 must be seen signing in epoch 1.
2. node-0 leaves: m1 proposes its removal, m2 and m3 approve (epoch 2); the load stops sending to it.
3. node-1 rotates its BLS key (and its transport identity key with `rotate_identity`) while it runs: the next keys
   go beside its key file, m2 proposes, m3 and m0 approve; node-1 must be seen signing in epoch 3.
4. Checks: the removed node-0 keeps following as a full node (no restart) up to the live height, state roots agree
   (at the live common height of every running node), transfers committed in every phase, a custody statement verified offline against the
   genesis file alone; the longest commit gap is measured and reported (`stall_ok`).

The load (node.tools.load.TransferLoad: signed transfers at `rate` per second to random running validators' admin
sockets) and the commit-gap measurement (node.tools.load.CommitMonitor, every 100 ms) are the ones chaos and the
bench use.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from ledger import codes
from node.client import AccountKey, ClientError
from node.tools.demo.story import DemoError, code_text
from node.tools.load import CommitMonitor, TransferLoad
from node.validator.catch_up import SYNC_LAG

GAP_ROUNDS_OK: Final = 4  # "no stall longer than a few rounds": the report's stall verdict (not a test assertion)
MONITOR_INTERVAL_S: Final = 0.1
STEP_TIMEOUT_S: Final = 60.0
LOAD_SEED: Final = 7


@dataclass(slots=True)
class OnboardingReport:
    """What scenario 7 did and measured. `ok`: every step answered as expected, the new validator and the rotated
    one signed in their epochs, transactions committed in every phase, state roots agree, and the custody
    statement verified offline from the genesis file. The commit gap is reported (`stall_ok`) separately."""

    steps: list[str] = field(default_factory=list)
    surprises: list[str] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    committed_by_phase: dict[str, int] = field(default_factory=dict)
    submitted: int = 0
    accepted: int = 0
    duration_s: float = 0.0
    max_commit_gap_s: float = 0.0
    max_gap_after_height: int = 0
    base_timeout_ms: int = 1000
    fork_checks: list[dict[str, Any]] = field(default_factory=list)
    joined_signed_at: int | None = None
    rotated_signed_at: int | None = None
    statement: dict[str, Any] = field(default_factory=dict)
    # The removed validator after the changes: its role, its height and the reference validator's when checked.
    removed_node: dict[str, Any] = field(default_factory=dict)

    @property
    def roots_agree(self) -> bool:
        return bool(self.fork_checks) and all(c["agree"] for c in self.fork_checks)

    @property
    def max_gap_rounds(self) -> float:
        return self.max_commit_gap_s * 1000 / self.base_timeout_ms

    @property
    def stall_ok(self) -> bool:
        return self.max_gap_rounds <= GAP_ROUNDS_OK

    @property
    def ok(self) -> bool:
        return (not self.surprises and self.roots_agree and bool(self.statement.get("verified"))
                and bool(self.removed_node.get("following"))
                and self.joined_signed_at is not None and self.rotated_signed_at is not None
                and bool(self.committed_by_phase) and all(v > 0 for v in self.committed_by_phase.values()))

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "stall_ok": self.stall_ok, "steps": self.steps, "surprises": self.surprises,
                "epochs": self.epochs, "committed_by_phase": self.committed_by_phase, "submitted": self.submitted,
                "accepted": self.accepted, "duration_s": round(self.duration_s, 1),
                "max_commit_gap_s": round(self.max_commit_gap_s, 2), "max_gap_rounds": round(self.max_gap_rounds, 2),
                "max_gap_after_height": self.max_gap_after_height, "base_timeout_ms": self.base_timeout_ms,
                "fork_checks": self.fork_checks, "joined_signed_at": self.joined_signed_at,
                "rotated_signed_at": self.rotated_signed_at, "statement": self.statement,
                "removed_node": self.removed_node}


class Onboarding:
    """Scenario 7, step by step, on a running testnet (node.tools.testnet.Testnet). Governance goes through the HTTP
    API with the SDK (proposals signed by the founding members' governors gov@m<i>); the load (node.tools.load) goes
    through the admin sockets."""

    def __init__(self, net: Any, out: IO[str] | None, rate: int, rotate_identity: bool = True) -> None:
        from node.tools.localnet import load_accounts
        from node.tools.testnet import governor_account

        self.net = net
        self.out = out
        self.rate = rate
        self.rotate_identity = rotate_identity
        self.report = OnboardingReport()
        seeds = load_accounts(net.accounts_path)
        self.governors: dict[str, AccountKey] = {}
        for m in (f"m{i}" for i in range(net.n)):
            name = governor_account(m)
            if name in seeds:
                self.governors[m] = AccountKey.from_seed(name, bytes(seeds[name]))
        if len(self.governors) < 3:
            raise DemoError("no_governors", "this testnet's genesis has no governor accounts (gov@m<i>): it was "
                                            "created before governance; start a fresh one (ledger testnet down "
                                            "--wipe; up)")
        self.reference = 2  # a founding validator that is never removed, rotated or restarted here

    def say(self, text: str = "") -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    def client(self, i: int | None = None) -> Any:
        from node.client import LedgerClient

        return LedgerClient(self.net.api_url(self.reference if i is None else i), timeout=STEP_TIMEOUT_S)

    def committed(self) -> int:
        s = self.net.node_status(self.reference)
        return 0 if s is None else int(s.get("committed_txs") or 0)

    def surprise(self, text: str) -> None:
        self.report.surprises.append(text)
        self.say(f"    !! {text}")

    # ------------------------------------------------------------------------------------------- governance

    def govern(self, proposal_id: str, proposer: str, approvers: Sequence[str], actions: Sequence[Any],
               what: str, after_propose: Callable[[], bool] | None = None) -> int | None:
        """Propose `actions` as `proposer`'s governor, approve with the others; the height the proposal executed
        at (None when it did not). `after_propose` runs once the proposal is open (False stops here)."""
        from node.client import proposals

        self.say(f"  > governor of {proposer} proposes {proposal_id!r}: {what}")
        executed_at: int | None = None
        with self.client() as client:
            expiry = client.head_height() + 20_000  # blocks come every ~50 ms under load: leave the approvers time
            steps: list[tuple[str, Any]] = [(proposer, proposals.propose(
                self.governors[proposer].account, proposal_id, list(actions), expiry))]
            steps += [(m, proposals.approve(self.governors[m].account, proposal_id)) for m in approvers]
            for member, op in steps:
                result = client.execute(op, keys=[self.governors[member]], check=False, timeout=STEP_TIMEOUT_S)
                receipt = result.receipt or {}
                code = int(receipt.get("code", -1))
                p = client.proposal(proposal_id)
                self.report.steps.append(f"{proposal_id}: {type(op).__name__.lower()} by {member} -> "
                                         f"{code_text(code)}, proposal {p['status']}")
                mark = "ok " if code == codes.OK else "!! "
                self.say(f"    {mark}{type(op).__name__.lower()} by {member}: {code_text(code)} in block "
                         f"{receipt.get('height')}; proposal {p['status']}, approvals {', '.join(p['approvals'])}"
                         + (f", {p['approvals_missing']} more needed" if p["status"] == "open" else ""))
                if code != codes.OK:
                    self.surprise(f"{proposal_id}: {type(op).__name__} by {member} answered {code_text(code)}")
                    return None
                if p["status"] == "executed":
                    executed_at = int(p["closed_height"])
                if op is steps[0][1] and after_propose is not None and not after_propose():
                    return None
        if executed_at is None:
            self.surprise(f"{proposal_id} did not execute after {len(steps)} approvals")
        return executed_at

    def start_joiner(self, joiner: int, node_id: str) -> bool:
        """Start the joining node while its proposal is open: the validators admit a node that an open proposal
        would add (as a peer without voting power), so it syncs from genesis now and is caught up when its epoch
        begins."""
        self.say(f"  > start {node_id} while the proposal is open: it syncs from genesis as a non-voting peer")
        self.net.start(joiner)
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self.client() as client:
            while time.monotonic() < deadline:
                target = client.head_height()
                # within the driver's block-sync lag of the head, the rest is fetched in one round trip
                if self.net.height(joiner) >= target - SYNC_LAG:
                    self.say(f"    {node_id} caught up: height {self.net.height(joiner)} of {target}")
                    return True
                time.sleep(0.2)
        self.surprise(f"{node_id} did not catch up while its proposal was open")
        return False

    def wait_epoch(self, epoch: int, executed_at: int, proposal_id: str) -> None:
        """Wait until the reference node's ledger names `epoch` (its first block is executed_at + 1) and the
        network committed into it."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self.client() as client:
            while time.monotonic() < deadline:
                v = client.validators()
                if v["epoch"] >= epoch and client.head_height() >= executed_at + 2:
                    self.report.epochs.append({"epoch": epoch, "start_height": v["start_height"],
                                               "proposal": proposal_id, "executed_height": executed_at,
                                               "validators": [x["name"] for x in v["validators"]]})
                    self.say(f"    epoch {epoch} from height {v['start_height']}: validators "
                             f"{', '.join(x['name'] for x in v['validators'])}")
                    return
                time.sleep(0.2)
        self.surprise(f"epoch {epoch} did not start within {STEP_TIMEOUT_S:.0f}s")

    def wait_signing(self, node_id: str, epoch: int, from_height: int) -> int | None:
        """The first committed block of `epoch` (from `from_height` on) whose QC carries `node_id`'s signature or
        that `node_id` proposed: proof that the node votes in that epoch."""
        from consensus.validators import bitmap_indexes

        deadline = time.monotonic() + STEP_TIMEOUT_S
        h = from_height
        with self.client() as client:
            names = [x["name"] for x in client.validators()["validators"]]
            if node_id not in names:
                self.surprise(f"{node_id} is not in the validator set of epoch {epoch}")
                return None
            index = names.index(node_id)
            while time.monotonic() < deadline:
                if client.head_height() < h + 1:
                    time.sleep(0.2)
                    continue
                header = client.block(h + 1)["header"]  # its QC certifies block h
                qc = header.get("qc") or {}
                signed = qc.get("epoch") == epoch and index in bitmap_indexes(bytes.fromhex(qc.get("signers", "")))
                proposed = header.get("epoch") == epoch and header.get("proposer") == index
                if signed or proposed:
                    how = "its vote is in the quorum certificate of" if signed else "it proposed"
                    self.say(f"    {node_id} signs in epoch {epoch}: {how} block {h if signed else h + 1}")
                    return h if signed else h + 1
                h += 1
        self.surprise(f"{node_id} did not sign in epoch {epoch} within {STEP_TIMEOUT_S:.0f}s")
        return None

    def wait_blocks(self, n: int) -> None:
        """Let the reference node commit `n` more blocks (bounded)."""
        target = self.net.height(self.reference) + n
        self.net.wait_height([self.reference], target, STEP_TIMEOUT_S)

    def phase_done(self, name: str, start_count: int) -> int:
        now = self.committed()
        self.report.committed_by_phase[name] = now - start_count
        self.say(f"    transfers committed during '{name}': {now - start_count}")
        return now

    # --------------------------------------------------------------------------------------------- checks

    def fork_check(self, label: str, nodes: Sequence[int]) -> None:
        live = [i for i in nodes if self.net.running(i)]
        heights = {i: self.net.height(i) for i in live}
        heights = {i: h for i, h in heights.items() if h >= 0}
        if len(heights) < 2:
            self.surprise(f"fork check '{label}': fewer than two nodes answer")
            return
        common = min(heights.values())
        roots = {f"node-{i}": self.net.roots(i, common, common).get(common) for i in heights}
        agree = None not in roots.values() and len(set(roots.values())) == 1
        self.report.fork_checks.append({"label": label, "height": common, "agree": agree, "roots": roots})
        self.say(f"    state roots at height {common} on {', '.join(roots)}: {'agree' if agree else 'DIFFER'}")
        if not agree:
            self.surprise(f"state roots differ at height {common}: {roots}")

    def removed_follows(self, i: int) -> None:
        """The removed validator follows as a full node: it reaches the height the reference validator has now."""
        net = self.net
        live = net.height(self.reference)
        deadline = time.monotonic() + STEP_TIMEOUT_S
        status = net.node_status(i)
        while time.monotonic() < deadline and (status is None or status["height"] < live):
            time.sleep(0.2)
            status = net.node_status(i)
        role = None if status is None else status.get("role")
        height = None if status is None else status["height"]
        following = height is not None and height >= live and role == "removed"
        self.report.removed_node = {"node": net.node_id(i), "role": role, "height": height, "live_height": live,
                                    "peers": None if status is None else status.get("peers_connected"),
                                    "following": following}
        self.say(f"    {net.node_id(i)} (removed): role {role}, height {height} (live height {live} when checked), "
                 f"{'follows' if following else 'DOES NOT FOLLOW'}")
        if not following:
            self.surprise(f"the removed {net.node_id(i)} does not follow: role {role}, height {height} < {live}")

    def custody_statement(self) -> None:
        from node.chain.statement import load_trust_anchor, statement_bytes, verify_statement_bytes
        from node.tools.localnet import CASH_ASSET

        with self.client() as client:
            height = client.head_height()
            user = "user-0@m0"
            doc = client.statement(user, height)
        data = statement_bytes(doc)
        anchor = load_trust_anchor(self.net.genesis_path)  # the genesis file alone
        verdict = verify_statement_bytes(data, anchor)
        vs = doc["validator_set"]
        cash = next((x for x in doc["holdings"] if x["asset"] == CASH_ASSET), None)
        self.report.statement = {"account": user, "height": height, "epoch": vs["epoch"],
                                 "epoch_changes": len(vs["epoch_changes"]), "bytes": len(data),
                                 "verified": verdict.ok, "code": verdict.code,
                                 "available": None if cash is None else cash["available"]}
        self.say(f"    custody statement of {user} at height {height} (epoch {vs['epoch']}, "
                 f"{len(vs['epoch_changes'])} epoch-change proofs, {len(data):,} bytes): verified offline from "
                 f"the genesis file alone: {verdict.code}")
        if not verdict.ok:
            self.surprise(f"the custody statement does not verify: {verdict.code} {verdict.reason}")

    # ---------------------------------------------------------------------------------------------- story

    def play(self) -> OnboardingReport:
        from node.validator.keyfile import NodeKeys, load_keys, next_keys_path, rotate_keys, write_keys

        net = self.net
        r = self.report
        founders = [i for i in range(net.n) if i not in net.joined]
        if len(founders) < 4 or not all(net.running(i) for i in founders[:4]):
            raise DemoError("testnet_not_running", "scenario 7 needs the 4 founding validators of a running testnet "
                                                   "(ledger testnet up)")
        with self.client() as client:
            start = client.validators()
        if start["epoch"] != 0 or len(start["validators"]) != 4:
            raise DemoError("already_played", "scenario 7 starts from the genesis validator set (epoch 0, 4 "
                                              "validators); this testnet was reconfigured already: start a fresh one")
        from node.chain.genesis import load_genesis

        r.base_timeout_ms = load_genesis(net.genesis_path).params.base_timeout_ms
        self.say(f"Scenario 7 - member onboarding on {net.n} running validators ({net.directory}); "
                 f"load: {self.rate} transfers/s throughout")
        t0 = time.monotonic()
        monitor = CommitMonitor(net, MONITOR_INTERVAL_S, name="scenario7-monitor")
        load = TransferLoad(net, self.rate, random.Random(LOAD_SEED), name="scenario7-load")
        monitor.start()
        load.start()
        try:
            count = self.committed()
            time.sleep(2.0)
            count = self.phase_done("before", count)

            self.say("\n1. A new institution m4 joins: its node's keys, then M of N members approve it")
            info = net.add_node()
            joiner = int(info["index"])
            self.say(f"    created {info['node']} (not in the genesis): p2p {info['p2p']}, api {info['api']}")
            h1 = self.govern("onboard-m4", "m0", ["m1", "m2"], info["actions"],
                             "add member m4 (voting) and its validator node-4",
                             after_propose=lambda: self.start_joiner(joiner, info["node"]))
            if h1 is None:
                return r
            self.wait_epoch(1, h1, "onboard-m4")
            r.joined_signed_at = self.wait_signing(info["node"], 1, h1 + 1)
            count = self.phase_done("4 -> 5 validators", count)
            self.fork_check("after onboarding", range(net.n))

            self.say("\n2. An original validator leaves: node-0 (member m0) is removed")
            h2 = self.govern("remove-node-0", "m1", ["m2", "m3"],
                             [{"kind": "remove_validator", "node_id": "node-0"}], "remove validator node-0")
            if h2 is None:
                return r
            self.wait_epoch(2, h2, "remove-node-0")
            load.excluded.add(0)
            count = self.phase_done("5 -> 4 validators", count)
            self.fork_check("after the removal", range(net.n))

            which = "identity and BLS keys" if self.rotate_identity else "BLS consensus key"
            self.say(f"\n3. node-1 rotates its {which} while it runs: next keys beside its key file, then the "
                     "proposal")
            keys_file = os.path.join(net.node_dir(1), "node_keys.json")
            current = load_keys(keys_file)
            fresh = rotate_keys(current)
            if not self.rotate_identity:
                fresh = NodeKeys(current.node_id, current.identity_seed, fresh.bls_secret)
            write_keys(next_keys_path(keys_file), fresh, overwrite=True)
            self.say("    next keys written beside node-1's key file (no restart: the node loads them at the epoch "
                     "that names them)")
            rotate = {"kind": "rotate_validator_keys", "node_id": "node-1", "identity_key": fresh.identity_key.hex(),
                      "bls_key": fresh.bls_public_key.hex(), "bls_pop": fresh.bls_pop().hex()}
            h3 = self.govern("rotate-node-1", "m2", ["m3", "m0"],
                             [rotate], f"rotate node-1's {which}")
            if h3 is None:
                return r
            self.wait_epoch(3, h3, "rotate-node-1")
            r.rotated_signed_at = self.wait_signing("node-1", 3, h3 + 1)
            count = self.phase_done("key rotation", count)
            self.wait_blocks(3)
            self.phase_done("after", count)
        finally:
            load.finish()
            monitor.finish()
            r.submitted, r.accepted = load.submitted, load.accepted
            r.max_commit_gap_s, r.max_gap_after_height = monitor.max_gap, monitor.max_gap_after
            r.duration_s = time.monotonic() - t0

        self.say("\nChecks")
        active = [i for i in range(net.n) if i != 0]
        self.removed_follows(0)
        self.fork_check("all running nodes", range(net.n))
        self.fork_check("the current validators", active)
        self.custody_statement()
        self.say(f"    longest time without a commit: {r.max_commit_gap_s:.2f}s after height {r.max_gap_after_height} "
                 f"({r.max_gap_rounds:.1f} base rounds of {r.base_timeout_ms} ms; sampled every "
                 f"{MONITOR_INTERVAL_S * 1000:.0f} ms) -> {'no stall' if r.stall_ok else 'STALL'}")
        self.say(f"    load: {r.submitted} transfers submitted, {r.accepted} admitted, in {r.duration_s:.1f}s")
        self.say(f"\nScenario 7 {'passed' if r.ok else 'FAILED'}"
                 + ("" if not r.surprises else f": {len(r.surprises)} unexpected answers"))
        return r


def play_onboarding(net: Any, out: IO[str] | None = None, *, rate: int = 20,
                    rotate_identity: bool = True) -> OnboardingReport:
    """Scenario 7 on a running testnet (node.tools.testnet.Testnet with its 4 founding validators up): onboard member m4
    and its validator node-4 (M of N approvals; node-4 starts from genesis, syncs, votes from epoch 1), remove
    node-0, rotate node-1's BLS key (and its transport identity key with `rotate_identity`), all under a load of
    `rate` transfers/s; then check that state roots agree, measure the longest commit gap, and verify a custody
    statement offline against the genesis file."""
    story = Onboarding(net, out, rate, rotate_identity)
    try:
        return story.play()
    except ClientError as exc:
        raise DemoError(str(exc.code), exc.message) from None
