"""Test harness: a local network of real node processes (`ledger node run`), started and stopped by the testnet
launcher (node.tools.testnet.Testnet), and driven through the nodes' admin sockets: signed transfers, waits that
fail with every node's log tail, state roots compared across nodes."""

from __future__ import annotations

import shutil
import socket
import time
from typing import Any

import nacl.signing

from node.chain.genesis import ChainParams
from node.tools.admin_client import AdminConnection
from node.tools.load import signed_transfer
from node.tools.localnet import load_accounts
from node.tools.testnet import Testnet


def free_ports(count: int) -> list[int]:
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Cluster:
    """A testnet of `nodes` node processes (deterministic keys) and what the process tests do with it."""

    def __init__(
        self, directory: str, nodes: int = 4, chain_id: str = "testnet-proc", params: ChainParams | None = None
    ) -> None:
        self.net = Testnet.create(
            directory,
            nodes,
            chain_id=chain_id,
            seed=b"cluster",
            params=params or ChainParams(base_timeout_ms=1000, empty_block_interval_ms=100),
        )
        self.chain_id = chain_id
        self.n = nodes
        self.accounts: dict[str, nacl.signing.SigningKey] = load_accounts(self.net.accounts_path)
        self.users = sorted(a for a in self.accounts if a.startswith("user-"))
        self.nonce = 0

    def config_path(self, i: int) -> str:
        return self.net.config_path(i)

    def log_path(self, i: int) -> str:
        return self.net.log_path(i)

    def running(self, i: int) -> bool:
        return self.net.running(i)

    def start(self, i: int) -> None:
        assert not self.net.running(i), f"node {i} is running already"
        self.net.start(i)

    def start_all(self) -> None:
        for i in range(self.n):
            self.start(i)

    def kill(self, i: int) -> None:
        """kill -9, waiting (bounded) until the process is gone."""
        assert self.net.kill(i), f"node {i} was not running"

    def terminate(self, i: int) -> int:
        """SIGTERM; the node's exit status (a clean stop exits 0)."""
        assert self.net.stop(i, grace=20) == "stopped", f"node {i} did not stop within 20 s of SIGTERM"
        code = self.net.exit_code(i)
        assert code is not None
        return code

    def wipe(self, i: int) -> None:
        assert not self.net.running(i)
        shutil.rmtree(self.net.data_dir(i))

    def stop_all(self) -> None:
        self.net.kill_all()

    def request(self, i: int, req: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        with AdminConnection(self.net.socket_path(i), timeout) as conn:
            return conn.request(req)

    def status(self, i: int) -> dict[str, Any] | None:
        try:
            return self.request(i, {"op": "status"})
        except (OSError, ValueError):
            return None

    def height(self, i: int) -> int:
        s = self.status(i)
        return -1 if s is None else s["height"]

    def wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- node {i}\n" + self.tail(i) for i in range(self.n))
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")

    def tail(self, i: int, lines: int = 15) -> str:
        return self.net.tail(i, lines)

    def wait_height(self, nodes: list[int], height: int, timeout: float) -> None:
        self.wait(lambda: all(self.height(i) >= height for i in nodes), timeout, f"nodes {nodes} at {height}")

    def transfer(self, k: int, expiry: int = 10_000) -> bytes:
        sender = self.users[k % len(self.users)]
        recipient = self.users[(k + 1) % len(self.users)]
        self.nonce += 1
        return signed_transfer(self.chain_id, sender, self.accounts[sender], recipient, self.nonce, expiry)

    def submit(self, i: int, count: int) -> list[str]:
        ids = []
        for k in range(count):
            answer = self.request(i, {"op": "submit", "tx": self.transfer(k).hex()})
            assert answer["code"] == 0, answer
            ids.append(answer["tx_id"])
        return ids

    def roots(self, i: int, lo: int, hi: int) -> dict[str, str]:
        return self.request(i, {"op": "roots", "from": lo, "to": hi})["roots"]

    def assert_same_roots(self, nodes: list[int]) -> int:
        """Every node has the same state root at every height they all have; returns that common height."""
        common = min(self.height(i) for i in nodes)
        assert common >= 1
        reference = self.roots(nodes[0], 0, common)
        assert len(reference) == common + 1
        for i in nodes[1:]:
            assert self.roots(i, 0, common) == reference, f"node {i} diverges from node {nodes[0]}"
        return common
