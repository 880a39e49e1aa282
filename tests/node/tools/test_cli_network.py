"""Issue 17's acceptance, as a new user types it: right after README's first command (`ledger testnet up --nodes 4
&& ledger demo`), `ledger query status`, `ledger keys import`, `ledger tx transfer ... --amount 12.50 --key ACCOUNT`
and `ledger statement` work with no address flag, through the profile `testnet up` recorded. Every command is
`ledger`'s own entry point with HOME and LEDGER_HOME in a temporary folder; their human output is scanned for Python
reprs; a closed pipe ends quietly; the profile survives node-0 being killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.cli import main
from node.tools.node_processes import ROOT
from node.tools.testnet import Testnet, TestnetError
from tests.node.cli_output import assert_no_python_repr

COMMAND_TIMEOUT_S = 180.0


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class User:
    """A shell in a fresh working folder with its own HOME and client home. Commands run in this process (`main`,
    exactly what the `ledger` script calls; a process per command would spend most of the test importing), except
    the closed-pipe check, which needs a process of its own."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.cwd = tmp / "work"
        self.cwd.mkdir()
        self.home = tmp / "home"
        for var in ("LEDGER_URL", "LEDGER_NODE", "LEDGER_PROFILE", "LEDGER_TESTNET_DIR"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HOME", str(self.home))
        monkeypatch.setenv("LEDGER_HOME", str(self.home / ".config" / "ledger"))
        monkeypatch.chdir(self.cwd)
        self.capsys = capsys
        self.outputs: list[str] = []

    def ledger(self, *argv: str, ok: bool = True) -> Result:
        self.capsys.readouterr()
        code = main(list(argv))
        captured = self.capsys.readouterr()
        self.outputs.append(captured.out)
        assert "Traceback" not in captured.err, captured.err
        if ok:
            assert code == 0, (argv, captured.out[-2000:], captured.err[-2000:])
        return Result(code, captured.out, captured.err)


@pytest.fixture
def user(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[User]:
    u = User(tmp_path, capsys, monkeypatch)
    try:
        yield u
    finally:
        try:
            Testnet.open(str(u.cwd / ".testnet")).kill_all()
        except TestnetError:
            pass


def test_readme_first_command_then_the_client_needs_no_address(user: User) -> None:
    up = user.ledger("testnet", "up", "--nodes", "4")
    assert "client profile 'testnet' recorded" in up.stdout and "ledger keys import" in up.stdout
    profiles = json.loads((user.home / ".config" / "ledger" / "profiles.json").read_text())
    assert profiles["current"] == "testnet" and len(profiles["profiles"]["testnet"]["urls"]) == 4
    # each node (`ledger node run`) printed where it listens when it started
    log = (user.cwd / ".testnet" / "node-1" / "node.log").read_text()
    assert f"  api   {profiles['profiles']['testnet']['urls'][1]}" in log and "\n  p2p   127.0.0.1:" in log
    demo = user.ledger("demo", "--lockup-seconds", "2")
    assert "24/24 steps answered as the scenarios expect" in demo.stdout
    assert "refused as expected - ledger: 107 THRESHOLD_NOT_MET" in demo.stdout

    status = user.ledger("query", "status")
    assert "chain_id: testnet-local" in status.stdout and "height: " in status.stdout
    as_json = json.loads(user.ledger("query", "status", "--json").stdout)
    assert as_json["chain_id"] == "testnet-local"

    imported = user.ledger("keys", "import")
    assert "imported user-0@m0" in imported.stdout
    assert "user-1@m1" in user.ledger("keys", "list").stdout

    before = json.loads(
        user.ledger("query", "balances", "user-1@m1", "--asset", "CASH-T", "--key", "user-1@m1", "--json").stdout
    )["balances"][0]["available"]
    sent = user.ledger(
        "tx", "transfer", "--asset", "CASH-T", "--to", "user-1@m1", "--amount", "12.50", "--key", "user-0@m0"
    )
    assert "status: committed" in sent.stdout and "amount: 12.50 CASH-T" in sent.stdout
    after = user.ledger("query", "balances", "user-1@m1", "--asset", "CASH-T", "--key", "user-1@m1", "--json")
    assert json.loads(after.stdout)["balances"][0]["available"] == before + 1250  # exactly 12.50, in base units
    shown = user.ledger("query", "balances", "user-1@m1", "--asset", "CASH-T", "--key", "user-1@m1").stdout
    assert f"available: {(before + 1250) // 100}.{(before + 1250) % 100:02d} CASH-T" in shown

    refused = user.ledger(
        "tx", "transfer", "--asset", "CASH-T", "--to", "user-1@m1", "--amount", "0.001", "--key", "user-0@m0", ok=False
    )
    assert refused.returncode == 2 and json.loads(refused.stderr)["error"] == "amount_precision"

    statement = user.ledger("statement", "user-0@m0", "--key", "user-0@m0")
    assert json.loads(statement.stdout)["account"] == "user-0@m0"
    assert "verified against" in statement.stderr and "genesis.json" in statement.stderr
    saved = user.ledger("statement", "user-0@m0", "--key", "user-0@m0", "--out", "st.json")
    assert json.loads(saved.stdout)["verified"] is True
    checked = user.ledger("verify-statement", "st.json", "--genesis", ".testnet/genesis.json")
    assert json.loads(checked.stdout)["valid"] is True

    # a node chosen explicitly still wins, and a closed pipe ends quietly
    url = json.loads(user.ledger("profile", "show", "--json").stdout)["urls"][2]
    assert json.loads(user.ledger("query", "status", "--json", "--url", url).stdout)["node_id"] == "node-2"
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "query", "status"],
        cwd=user.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=COMMAND_TIMEOUT_S) in (0, 141) and "Traceback" not in err, err

    # node-0 killed: the profile's next node answers
    user.ledger("testnet", "kill", "0")
    assert json.loads(user.ledger("query", "status", "--json").stdout)["node_id"] != "node-0"
    status_text = user.ledger("testnet", "status").stdout
    assert "down" in status_text

    for text in user.outputs:
        assert_no_python_repr(text)
    user.ledger("testnet", "down", "--wipe")
