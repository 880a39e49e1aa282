"""Four institutions, four hosts (scenario 9; issue 16): every validator in a Linux network namespace of its own with
its own address on a virtual bridge, set up by the key ceremony of docs/operations.md (`ledger init node` on each
host, `ledger init genesis` at the coordinator, `ledger init check-genesis` on each host), serving its API over TLS
on a chain that is not a testnet. Transfers go through the nodes' APIs at their host addresses; then one host's
cable is pulled (its link taken down: a network partition, not the node's fault injection), the other three keep
committing, the cable goes back, the host catches up, and all four agree on the block and state root at a common
height and hold every acknowledged transfer with its receipt.

Needs root and `ip netns` (CI runs as root; .ci/run installs iproute2). Without them the test FAILS, it does not
skip. Namespaces are named per run (node/tools/netns.py) and deleted in `finally` and at exit; LANs of a crashed
earlier run are deleted first.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.api.tls import ApiTls
from node.cli import main
from node.client import AccountKey, ClientError, LedgerClient, TlsOptions, load_key, operation
from node.tools.hosts import HostNetwork, member_id
from node.tools.netns import HostLan, NetnsError, lan_names, remove_stale, require_netns
from tests.node.tls_certs import issue, make_ca

NODES = 4
CUT = 3  # the host whose cable is pulled
ASSET = "CASH-T"
ISSUED = 1_000_000
READY_TIMEOUT_S = 180.0
PROGRESS_TIMEOUT_S = 120.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = PROGRESS_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def height(client: LedgerClient) -> int:
    try:
        return int(client.status()["height"])
    except ClientError:
        return -1


def need_netns() -> None:
    try:
        require_netns()
    except NetnsError as exc:
        pytest.fail(f"this test needs Linux network namespaces (root, iproute2): {exc.message}")


# A process that creates a LAN (kept with "kept") and exits without deleting it, as a crashed run does; with
# "process" it leaves a process running in the LAN's first namespace. Prints the LAN's name and that process's pid.
LEAVE_LAN = """
import subprocess, sys
from node.tools.netns import HostLan
lan = HostLan.create(2, kept="kept" in sys.argv)
pid = 0
if "process" in sys.argv:
    pid = subprocess.Popen(lan.exec_argv(0, ["sleep", "120"]), start_new_session=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid
print(lan.name, pid)
"""


def leave_lan(*args: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", LEAVE_LAN, *args], capture_output=True, text=True, check=True, timeout=120
    )
    name, pid = done.stdout.split()
    return name, int(pid)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_stale_lans_of_crashed_runs_are_removed_and_no_other() -> None:
    need_netns()
    crashed, _ = leave_lan()
    crashed_busy, orphan = leave_lan("process")  # a test that crashed with its nodes running
    kept, sleeper = leave_lan("kept", "process")  # `ledger hosts up`: the network runs on
    live = HostLan.create(1)  # this process's: alive
    try:
        assert {crashed, crashed_busy, kept, live.name} <= set(lan_names())
        removed = remove_stale()
        assert {crashed, crashed_busy} <= set(removed) and not {crashed, crashed_busy} & set(lan_names())
        wait_for("the orphaned process of the crashed run to be killed", lambda: gone(orphan), timeout=30)
        assert kept not in removed and live.name not in removed
        assert {kept, live.name} <= set(lan_names())
        os.kill(sleeper, signal.SIGKILL)  # the kept network's nodes stop: now it is stale too
        wait_for("the process in the kept LAN to end", lambda: gone(sleeper), timeout=30)
        assert kept in remove_stale() and kept not in lan_names()
    finally:
        live.destroy()
        for pid in (orphan, sleeper):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        remove_stale()
    assert live.name not in lan_names()


def test_four_validators_on_four_hosts_survive_a_pulled_cable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need_netns()
    remove_stale()
    net = HostNetwork.create(str(tmp_path / "net"), NODES, chain_id="bank-net")
    atexit.register(net.destroy)
    clients: list[LedgerClient] = []
    try:
        run_scenario(net, tmp_path, clients, capsys)
    finally:
        for c in clients:
            c.close()
        logs = {i: net.log_path(i) for i in range(NODES)}
        left = net.destroy()
        atexit.unregister(net.destroy)
    assert left == []
    assert net.lan.name not in lan_names(), "namespaces or links of this run are left behind"
    for path in logs.values():
        with open(path, encoding="utf-8", errors="replace") as f:
            assert "state_root_mismatch" not in f.read()


def run_scenario(
    net: HostNetwork, tmp_path: Path, clients: list[LedgerClient], capsys: pytest.CaptureFixture[str]
) -> None:
    genesis_hash = net.ceremony()
    assert len(genesis_hash) == 64
    for i in range(NODES):  # the keys never left their host; the coordinator holds only public parts
        assert os.path.exists(os.path.join(net.host_dir(i), "node_keys.json"))
        assert not any(name.startswith("node_keys") for name in os.listdir(net.coordinator_dir))

    # Each member's operator puts its node behind TLS: a certificate for the host's address from the consortium CA.
    ca = make_ca(str(tmp_path / "ca"), "consortium-ca")
    for i in range(NODES):
        cert = issue(os.path.join(net.host_dir(i), "tls"), ca, "node", ips=(net.address(i),))
        net.configure_tls(i, ApiTls(cert.cert_path, cert.key_path))
    tls = TlsOptions(ca_file=ca.cert_path)
    net.start_all()
    net.wait_ready(READY_TIMEOUT_S, tls.ssl_context())

    admin = load_key(net.admin_key_path)
    for i in range(NODES):
        assert net.api_url(i) == f"https://{net.address(i)}:8100"
        clients.append(LedgerClient(net.api_url(i), admin, tls=tls, timeout=20.0))
    status = clients[0].status()
    assert status["chain_id"] == "bank-net"

    def connected_peers() -> list[dict[str, Any]] | None:
        peers = [p for p in clients[0].peers()["peers"] if p["connected"]]
        return peers if len(peers) == NODES - 1 else None

    peers = wait_for("node-0 to connect to its 3 peers", connected_peers)
    # Peers are dialled at their hosts' addresses on the bridge, never a loopback address.
    assert {p["address"] for p in peers} == {f"{net.address(i)}:7100" for i in range(1, NODES)}, peers

    # Accounts of the four members, an asset, and its issuance — through node 0.
    users = [AccountKey.generate(f"user@{member_id(i)}") for i in range(NODES)]
    ops = [
        operation(
            "define_asset",
            actor=admin.account,
            asset=ASSET,
            decimals=2,
            supply_cap=10**12,
            name="Cash token",
            isin="",
            documents=[],
            agents=[],
            rules=[],
        )
    ]
    for u in users:
        ops.append(
            operation(
                "register_account",
                actor=admin.account,
                account=u.account,
                keys=[u.public_key],
                threshold=1,
                custodian=None,
            )
        )
    ops += [operation("issue", actor=admin.account, asset=ASSET, recipient=u.account, amount=ISSUED) for u in users]
    assert clients[0].execute(*ops).ok

    acknowledged: list[str] = []

    def transfer(via: int, sender: int, amount: int) -> None:
        recipient = users[(sender + 1) % NODES].account
        op = operation(
            "transfer", actor=users[sender].account, asset=ASSET, legs=[{"recipient": recipient, "amount": amount}]
        )
        result = clients[via].execute(op, keys=[users[sender]])
        assert result.ok, result
        acknowledged.append(result.tx_id)

    for i in range(NODES):  # through every node's API, at its host address
        transfer(i, i, 100 + i)

    # Pull host 3's cable.
    assert main(["hosts", "cut", str(CUT), "--dir", net.directory]) == 0  # ip link set <its switch port> down
    assert net.lan.is_cut(CUT)
    with LedgerClient(net.api_url(CUT), tls=tls, timeout=3.0) as probe, pytest.raises(ClientError):
        probe.status()  # unreachable: the partition is the network's
    start = {i: height(clients[i]) for i in range(NODES) if i != CUT}
    for k in range(6):  # the other three keep committing transfers
        transfer(k % 3, k % 3, 10 + k)
    for i, h in start.items():
        wait_for(
            f"node-{i} to commit 5 more blocks while host {CUT} is cut off",
            lambda i=i, h=h: height(clients[i]) >= h + 5,
        )
    capsys.readouterr()
    assert main(["hosts", "status", "--dir", net.directory, "--tls-ca", tls.ca_file or ""]) == 0
    rows = json.loads(capsys.readouterr().out)["hosts"]
    assert [(r["address"], r["cable"], r["running"]) for r in rows] == [
        (net.address(i), "cut" if i == CUT else "up", True) for i in range(NODES)
    ]  # the node itself never stopped
    assert rows[CUT]["height"] is None and all(r["height"] >= start[0] for r in rows if r["host"] != CUT)

    # Plug it back: host 3 catches up.
    assert main(["hosts", "heal", str(CUT), "--dir", net.directory]) == 0
    target = max(height(clients[i]) for i in start)
    wait_for(f"node-{CUT} to catch up to height {target}", lambda: height(clients[CUT]) >= target)
    transfer(CUT, CUT, 50)  # and it takes transactions again
    last = clients[CUT].tx(acknowledged[-1])["receipt"]["height"]
    wait_for(f"every node to commit height {last}", lambda: min(height(c) for c in clients) >= last)
    common = min(height(c) for c in clients)
    assert common >= target
    blocks = [c.block(common) for c in clients]
    assert len({(b["block_hash"], b["state_root"]) for b in blocks}) == 1, blocks

    # Every acknowledged transfer is on every node, committed with the same receipt at the same height.
    for tx_id in acknowledged:
        seen = [c.tx(tx_id) for c in clients]
        for s in seen:
            assert s["status"] == "committed" and s["receipt"]["code"] == 0, s
        assert len({s["receipt"]["height"] for s in seen}) == 1, seen
    # Supply at the common height: what was issued is what the holders hold, the same on every node
    # (admin@bank-a has the auditor role: signed reads of every account).
    holdings = [[c.balances(u.account, ASSET, common)["balances"][0]["total"] for u in users] for c in clients]
    assert all(h == holdings[0] for h in holdings), holdings
    assert sum(holdings[0]) == ISSUED * NODES
