"""The key ceremony of docs/operations.md, run as written (issue 16 parts 1, 5, 6).

Four members (bank-a .. bank-d), each a directory standing for its host, run the runbook's member blocks; the
coordinator (bank-a) runs its block in a directory of its own. Between the blocks the test does what people do out
of band: validator.json files go to the coordinator, genesis.json comes back. Then every node starts with its sealed
keys and the chain commits. The same running network shows that /health answers, that every metric the alerting
rules and the Grafana dashboard (deploy/) name is exported, and that SIGTERM stops each node gracefully (exit 0).

The one change from the runbook: the commands that create keys get `--kdf-cost interactive` (64 MiB, 2 passes)
instead of the default `moderate` (256 MiB, 3 passes), to keep the test quick; docs/operations.md says so.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.cli import main
from node.tools.admin_client import AdminConnection
from node.tools.testnet import find_free_port_block
from tests.node.tools.runbook import command_argv, runbook_steps

ROOT = Path(__file__).resolve().parents[3]
MEMBERS = ("bank-a", "bank-b", "bank-c", "bank-d")
CREATES_KEYS = ("ledger init node ", "ledger keys new ")
TEST_ONLY_COST = ("--kdf-cost", "interactive")
TARGET_HEIGHT = 3


@dataclass
class Member:
    name: str
    variables: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def dir(self) -> Path:
        return Path(self.variables["DIR"])


def run_in_process(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """One short runbook command through the same entry point as `ledger` (no interpreter start per command)."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def status(member: Member) -> dict[str, Any] | None:
    step = next(s for s in runbook_steps() if any(c.startswith("ledger node status") for c in s.commands))
    argv = command_argv(step.commands[0], member.variables, ledger=())
    code, out, _ = run_in_process(argv, member.dir)
    return json.loads(out) if code == 0 else None


def admin_height(member: Member) -> int:
    """The node's height from its admin socket (what `ledger node status` asks), -1 while it does not answer."""
    try:
        with AdminConnection(str(member.dir / "data" / "admin.sock"), 5.0) as conn:
            return int(conn.request({"op": "status"})["height"])
    except (OSError, ValueError, KeyError):
        return -1


@dataclass
class Ceremony:
    members: list[Member]
    genesis_hashes: list[str]
    wrong_passphrase_error: str


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceremony]:
    root = tmp_path_factory.mktemp("consortium")
    coordinator = root / "coordinator"
    coordinator.mkdir()
    p2p, api = find_free_port_block(len(MEMBERS)), find_free_port_block(len(MEMBERS), start=30000)
    members = []
    for i, name in enumerate(MEMBERS):
        host = root / f"host-{name}"
        host.mkdir()
        secret = host / "passphrase"
        secret.write_text(f"passphrase of {name}, long enough\n")
        secret.chmod(0o400)
        members.append(
            Member(
                name,
                {
                    "NODE_ID": f"{name}-1",
                    "MEMBER": name,
                    "DIR": str(host / "ledger"),
                    "P2P": f"127.0.0.1:{p2p + i}",
                    "API": f"127.0.0.1:{api + i}",
                    "PASSPHRASE_FILE": str(secret),
                },
            )
        )
    admin_secret = coordinator / "admin-passphrase"
    admin_secret.write_text("the admin key passphrase\n")
    coordinator_vars = {"ADMIN_PASSPHRASE_FILE": str(admin_secret)}
    hashes: list[str] = []
    wrong_error = ""
    try:
        for step in runbook_steps():
            for command in step.commands:
                extra = TEST_ONLY_COST if command.startswith(CREATES_KEYS) else ()
                if step.role == "coordinator":
                    validators = coordinator / "validators"  # out of band: each member sent its validator.json
                    validators.mkdir(exist_ok=True)
                    for m in members:
                        shutil.copy(m.dir / "validator.json", validators / f"{m.variables['NODE_ID']}.json")
                    code, out, err = run_in_process(
                        command_argv(command, coordinator_vars, ledger=(), extra=extra), coordinator
                    )
                    assert code == 0, (command, out, err)
                    if (coordinator / "genesis.json").exists():  # out of band: genesis.json to every member
                        for m in members:
                            if not (m.dir / "genesis.json").exists():
                                shutil.copy(coordinator / "genesis.json", m.dir / "genesis.json")
                    continue
                if command.startswith("ledger node run "):
                    # A wrong passphrase first: the node refuses to start, with its code, before touching anything.
                    m0 = members[0]
                    wrong = m0.dir.parent / "wrong-passphrase"
                    wrong.write_text("not the right passphrase\n")
                    code, _, err = run_in_process(
                        command_argv(command, {**m0.variables, "PASSPHRASE_FILE": str(wrong)}, ledger=()), m0.dir
                    )
                    assert code == 1
                    wrong_error = err
                    for m in members:
                        m.log = m.dir.parent / "node.log"
                        argv = command_argv(command, m.variables, ledger=(sys.executable, "-m", "node.cli"))
                        with open(m.log, "wb") as log:
                            m.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=m.dir)
                    continue
                if command.startswith("ledger node status "):
                    # Wait on the admin sockets directly (a whole `ledger` command line per poll and member took CPU
                    # from the starting nodes), then run the runbook's command as written on every member.
                    deadline = time.monotonic() + 180
                    while time.monotonic() < deadline:
                        heights = [admin_height(m) for m in members]
                        if min(heights) >= TARGET_HEIGHT:
                            break
                        assert all(m.process is not None and m.process.poll() is None for m in members), heights
                        time.sleep(0.2)
                    else:
                        pytest.fail(f"the nodes did not reach height {TARGET_HEIGHT}: {heights}")
                    heights = [(s or {}).get("height", -1) for s in map(status, members)]
                    assert min(heights) >= TARGET_HEIGHT, heights
                    continue
                for m in members:
                    code, out, err = run_in_process(
                        command_argv(command, m.variables, ledger=(), extra=extra), m.dir.parent
                    )
                    assert code == 0, (m.name, command, out, err)
                    if command.startswith("ledger init check-genesis "):
                        hashes.append(re.search(r"hash ([0-9a-f]{64})", out).group(1))  # type: ignore[union-attr]
        yield Ceremony(members, hashes, wrong_error)
    finally:
        for m in members:
            if m.process is not None and m.process.poll() is None:
                m.process.kill()
                m.process.wait(30)


def test_the_runbook_makes_a_committing_network(ceremony: Ceremony) -> None:
    steps = runbook_steps()
    assert [s.role for s in steps] == ["member", "coordinator", "member", "member", "member"]
    assert len(ceremony.genesis_hashes) == 4 and len(set(ceremony.genesis_hashes)) == 1  # compared out of band
    assert "keystore_passphrase_wrong" in ceremony.wrong_passphrase_error
    for m in ceremony.members:
        keys = json.loads((m.dir / "node_keys.json").read_text())
        assert keys["protection"] == "passphrase" and "bls_secret" not in keys
        st = status(m)
        assert st is not None and st["height"] >= TARGET_HEIGHT and st["node_id"] == m.variables["NODE_ID"]
    # Every step is idempotent in the safe direction: running step 1 again refuses, naming the key file.
    m = ceremony.members[1]
    again = command_argv(steps[0].commands[0], m.variables, ledger=())
    code, _, err = run_in_process(again, m.dir.parent)
    assert code == 1 and "init_file_exists" in err and str(m.dir / "node_keys.json") in err


def exported_metric_names(text: str) -> set[str]:
    """Names with samples, and the families the node declares (`# TYPE`): a labelled metric such as ledger_fatal{code}
    has no sample until something happens, but its family is exported and an alert on it fires when one appears."""
    samples = {re.split(r"[{\s]", line, maxsplit=1)[0] for line in text.splitlines() if line and line[0] != "#"}
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return samples | declared


def named_metrics(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\b(ledger_[a-z0-9_]+)\b", expr)}


def alert_expressions() -> list[str]:
    doc = yaml.safe_load((ROOT / "deploy" / "prometheus" / "ledger-alerts.yml").read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    doc = json.loads((ROOT / "deploy" / "grafana" / "ledger-node.json").read_text())
    exprs = [t["expr"] for panel in doc["panels"] for t in panel["targets"]]
    exprs += [v.get("query", "") for v in doc["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_health_and_every_metric_the_rules_and_dashboard_name(ceremony: Ceremony) -> None:
    api = ceremony.members[0].variables["API"]
    with urllib.request.urlopen(f"http://{api}/health", timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://{api}/metrics", timeout=10) as response:
        text = response.read().decode()
    exported = exported_metric_names(text)
    for source, exprs in (("alerts", alert_expressions()), ("dashboard", dashboard_expressions())):
        named = named_metrics(exprs)
        assert len(named) >= 8, (source, named)
        assert sorted(named - exported) == [], f"{source} names metrics the node does not export"
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#") and "{" not in line
    }
    assert values["ledger_validators"] == 4 and values["ledger_quorum_peers"] == 2  # n=4: itself + 2 of 3 peers
    assert (
        values["ledger_data_dir_free_bytes"] > 0
        and values["ledger_data_dir_total_bytes"] >= values["ledger_data_dir_free_bytes"]
    )
    assert values["ledger_mempool_max_txs"] == 20_000


def test_sigterm_stops_every_node_gracefully(ceremony: Ceremony) -> None:
    for m in ceremony.members:
        assert m.process is not None and m.process.poll() is None
        m.process.send_signal(signal.SIGTERM)
    for m in ceremony.members:
        assert m.process is not None
        assert m.process.wait(60) == 0, m.log.read_text() if m.log else ""
        log = m.log.read_text() if m.log else ""
        assert "Traceback" not in log, log
        assert not (m.dir / "data" / "admin.sock").exists()  # the admin socket was closed and removed
