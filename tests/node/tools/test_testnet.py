"""`ledger testnet` with real node processes: up, status, kill -9, restart, partition, heal, slow, down; and the same
launcher with its nodes inside the test process.

Every wait is bounded; the fixture kills every node process of the network even when a test fails, and the last
test checks that no node process of it survives `down`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from nacl.signing import SigningKey

from ledger import codes
from ledger.operations import MigrateAccount, RegisterAccount, Transfer, TransferLeg
from ledger.transaction import TxBody, sign_transaction
from node.chain.protocol import OPERATIONS
from node.cli import main
from node.tools.localnet import ADMIN_ACCOUNT, CASH_ASSET, load_accounts
from node.tools.node_processes import ROOT, process_cmdline
from node.tools.testnet import Testnet, TestnetError


def test_nodes_run_this_checkout() -> None:
    """Node processes start in (and import from) the repository this module belongs to, not another installed copy."""
    import node.tools.node_processes as launcher

    assert os.path.join(ROOT, "node", "tools", "node_processes.py") == os.path.abspath(launcher.__file__)


def node_processes(directory: str) -> list[int]:
    """Pids of live processes running a node of the testnet in `directory`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            cmd = process_cmdline(int(entry))
            if any(part.startswith(directory) and part.endswith("config.toml") for part in cmd):
                state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]  # noqa: SIM115
                if state not in ("Z", "X"):
                    found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    directory = str(tmp_path_factory.mktemp("testnet"))
    network = Testnet.create(directory, 4, seed=b"testnet-cycle")
    try:
        network.up(60)
        yield network
    finally:
        network.kill_all()


def test_up_starts_four_nodes_that_commit_with_equal_roots(net: Testnet, capsys: pytest.CaptureFixture[str]) -> None:
    assert all(net.running(i) for i in range(4))
    assert len(node_processes(net.directory)) == 4
    assert net.wait_height(range(4), 3, 30)
    assert main(["testnet", "status", "--dir", net.directory, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["running"] for n in doc["nodes"]] == [True] * 4
    assert all(n["peers"] == 3 for n in doc["nodes"])
    assert doc["common_height"] >= 3 and doc["roots_agree"] is True
    assert len(set(doc["roots_at_common_height"].values())) == 1


def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, None if body is None else json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_transaction_rejected_in_a_block_answers_its_receipt_on_every_node(net: Testnet) -> None:
    """A transfer signed by an account that a migration (earlier in the same lane, so earlier in the chain) closes
    reaches a block and is rejected there with SIGNER_CLOSED: every node answers GET /v1/tx/{id} with that receipt
    (not 404)."""
    accounts = load_accounts(net.accounts_path)
    admin, user = ADMIN_ACCOUNT, "user-0@m0"
    successor_key = SigningKey(hashlib.sha256(b"successor").digest())
    successor = "user-0-next@m0"
    _, status = _http(net.api_url(0) + "/v1/status")
    expiry = status["height"] + 200

    def tx(nonce: int, signers: tuple[str, ...], *ops: object) -> str:
        body = TxBody(1, status["chain_id"], signers, nonce, expiry, ops)
        return sign_transaction(body, [(s, accounts[s]) for s in signers], operations=OPERATIONS).to_bytes().hex()

    register = tx(9001, (admin,), RegisterAccount(admin, successor, (bytes(successor_key.verify_key),), 1, None))
    code, res = _http(net.api_url(0) + "/v1/tx?wait=commit&timeout=20", {"tx": register})
    assert code == 200 and res["receipt"]["code"] == 0, res
    migrate = tx(9002, (admin,), MigrateAccount(admin, user, successor, "lost keys"))
    # Signed by the admin too: the same mempool lane (first signer) as the migration, so it comes after it.
    closed = tx(9003, (admin, user), Transfer(user, CASH_ASSET, (TransferLeg("user-1@m1", 1),)))
    code, res = _http(net.api_url(0) + "/v1/tx/batch", {"txs": [migrate, closed]})
    assert code == 200 and [r["code"] for r in res["results"]] == [0, 0], res
    closed_id = res["results"][1]["tx_id"]
    deadline = time.monotonic() + 30
    answers: dict[int, tuple[int, dict]] = {}
    while time.monotonic() < deadline and len(answers) < 4:
        for i in range(4):
            code, doc = _http(f"{net.api_url(i)}/v1/tx/{closed_id}")
            if code == 200 and doc["status"] != "pending":
                answers[i] = (code, doc)
        time.sleep(0.2)
    assert sorted(answers) == [0, 1, 2, 3], answers
    receipts = {json.dumps(doc["receipt"], sort_keys=True) for _, doc in answers.values()}
    assert len(receipts) == 1
    doc = answers[0][1]
    assert doc["status"] == "rejected" and doc["height"] == doc["receipt"]["height"]
    assert (doc["receipt"]["code"], doc["receipt"]["failed_op"]) == (codes.SIGNER_CLOSED, None)
    _, account = _http(f"{net.api_url(0)}/v1/accounts/{user}")
    assert account.get("closed_to") == successor, account


def test_kill_then_restart_catches_up(net: Testnet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testnet", "kill", "node-2", "--dir", net.directory]) == 0
    assert "killed" in capsys.readouterr().out
    assert not net.running(2)
    start = max(net.height(i) for i in (0, 1, 3))
    assert net.wait_height([0, 1, 3], start + 2, 30), "three of four validators keep committing"
    assert main(["testnet", "status", "--dir", net.directory]) == 0
    out = capsys.readouterr().out
    assert "down" in out and "agree" in out
    assert main(["testnet", "restart", "2", "--dir", net.directory]) == 0
    target = max(net.height(i) for i in (0, 1, 3))
    assert net.wait_height([2], target, 40), net.tail(2)
    # Every node at the target, not only the one that set it: a node commits a block when the next proposal reaches
    # it, so another may be one height behind at any instant.
    assert net.wait_height([0, 1, 3], target, 20)
    st = net.status()
    assert st.roots_agree is True and st.common_height is not None and st.common_height >= target


def test_partition_stalls_the_minority_and_heal_resumes(net: Testnet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testnet", "partition", "0", "1,2,3", "--dir", net.directory]) == 0
    assert "node-0 | node-1,node-2,node-3" in capsys.readouterr().out
    h0 = net.height(0)
    majority = max(net.height(i) for i in (1, 2, 3))
    assert net.wait_height([1, 2, 3], majority + 3, 30), "the 3-node side keeps committing"
    assert net.height(0) <= h0 + 1, "an isolated validator cannot commit alone"
    assert main(["testnet", "heal", "--dir", net.directory]) == 0
    target = max(net.height(i) for i in (1, 2, 3))
    assert net.wait_height([0], target, 40), net.tail(0)
    assert net.status().roots_agree is True


def test_slow_link_and_bad_arguments(net: Testnet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testnet", "slow", "node-1", "--delay", "100", "--dir", net.directory]) == 0
    assert net.admin(1, {"op": "fault", "action": "delay", "peer": None, "ms": 100})["faults"]["delay_all_ms"] == 100
    start = max(net.height(i) for i in range(4))
    assert net.wait_height(range(4), start + 2, 30), "a slow link slows, it does not stop the network"
    assert main(["testnet", "slow", "node-1", "--delay", "0", "--dir", net.directory]) == 0
    capsys.readouterr()
    assert main(["testnet", "kill", "node-9", "--dir", net.directory]) == 1
    assert "no node" in capsys.readouterr().err
    assert main(["testnet", "partition", "0,1", "1,2", "--dir", net.directory]) == 1
    assert "disjoint" in capsys.readouterr().err


def test_down_stops_every_process(net: Testnet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testnet", "down", "--dir", net.directory]) == 0
    out = capsys.readouterr().out
    assert out.count("stopped") + out.count("killed") == 4
    assert node_processes(net.directory) == []
    assert main(["testnet", "status", "--dir", net.directory, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["running"] for n in doc["nodes"]] == [False] * 4


def test_only_testnet_chain_ids(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(TestnetError) as err:
        Testnet.create(str(tmp_path), 4, chain_id="prod-chain")
    assert err.value.code == "not_testnet"
    with pytest.raises(TestnetError) as err:
        Testnet.open(str(tmp_path))
    assert err.value.code == "no_testnet"


def test_genesis_governors_and_add_node_files(tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]) -> None:
    """No processes: the genesis gives each founding member a governor; add-node writes a node that is not in it."""
    from node.chain.genesis import load_genesis
    from node.client import load_key, proposals
    from node.validator.config import load_config

    directory = str(tmp_path)
    net = Testnet.create(directory, 4, seed=b"add-node")
    genesis = load_genesis(net.genesis_path)
    governors = {a.account_id: a.roles for a in genesis.accounts if a.account_id.startswith("gov@")}
    assert governors == {f"gov@m{i}": ("governor",) for i in range(4)}
    key = load_key(net.governor_key_path("m2"))
    assert key.account == "gov@m2"
    assert os.stat(net.governor_key_path("m2")).st_mode & 0o777 == 0o600
    assert next(a for a in genesis.accounts if a.account_id == "gov@m2").keys == (key.public_key,)
    assert main(["testnet", "add-node", "--dir", directory, "--print-action"]) == 0
    actions = proposals.parse_actions([capsys.readouterr().out])
    assert [type(a).__name__ for a in actions] == ["AddMember", "AddValidator"]
    add = actions[1]
    assert (add.node_id, add.member, add.power) == ("node-4", "m4", 1)
    assert genesis.validator("node-4") is None  # not in the genesis: it joins by governance
    again = Testnet.open(directory)
    assert again.n == 5 and again.joined == [4]
    config = load_config(again.config_path(4))
    assert config.node_id == "node-4" and config.genesis_file == net.genesis_path
    assert add.address == f"{config.p2p_listen[0]}:{config.p2p_listen[1]}"
    assert config.peer_addresses == {f"node-{i}": (net.host, net.p2p_ports[i]) for i in range(4)}
    assert config.p2p_listen[1] not in net.p2p_ports[:4] and config.api_listen is not None
    # a second joiner run by an existing member: only the validator action
    assert main(["testnet", "add-node", "--dir", directory, "--member", "m1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["node"] == "node-5" and [a["kind"] for a in info["actions"]] == ["add_validator"]


def test_in_process_nodes_answer_the_same_commands(tmp_path: os.PathLike[str]) -> None:
    """The same launcher with its nodes inside this process: up, status, a fault, restart, down, through the same
    admin sockets and API ports; kill -9 needs a process, and no other process can open this network."""
    from node.tools.testnet import api_answers

    net = Testnet.create(str(tmp_path), 4, seed=b"in-process", in_process=True)
    try:
        net.up(60)
        assert [net.pid(i) for i in range(4)] == [os.getpid()] * 4
        assert all(api_answers(url) for url in net.api_urls())
        assert net.wait_height(range(4), 3, 30)
        st = net.status()
        assert st.roots_agree is True and st.common_height is not None and st.common_height >= 3
        assert [n.peers for n in st.nodes] == [3] * 4
        net.partition([[0], [1, 2, 3]])
        majority = max(net.height(i) for i in (1, 2, 3))
        assert net.wait_height([1, 2, 3], majority + 2, 30), "the 3-node side keeps committing"
        net.heal()
        with pytest.raises(TestnetError) as err:
            net.kill(1)
        assert err.value.code == "needs_processes"
        with pytest.raises(TestnetError) as err:
            Testnet.open(str(tmp_path))
        assert err.value.code == "in_process"
        assert net.stop(2) == "stopped" and not net.running(2) and net.exit_code(2) == 0
        target = max(net.height(i) for i in (0, 1, 3)) + 1
        assert net.wait_height([0, 1, 3], target, 30), "three of four keep committing"
        net.restart(2)
        assert net.wait_height([2], target, 40)
        assert net.status().roots_agree is True
        assert set(net.down().values()) == {"stopped"}
        assert not any(net.running(i) for i in range(4))
        assert not any(os.path.exists(net.socket_path(i)) for i in range(4))
    finally:
        net.close()
