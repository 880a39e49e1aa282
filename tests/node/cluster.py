"""Test harness: a local network of real node processes (`ledger node run`), driven through their admin sockets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import nacl.signing

from ledger.operations import Transfer, TransferLeg
from ledger.transaction import TxBody, sign_transaction
from node.api.admin_socket import admin_request
from node.chain.genesis import ChainParams
from node.chain.protocol import OPERATIONS
from node.tools.localnet import CASH_ASSET, NetworkLayout, generate_network, load_accounts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    def __init__(
        self, directory: str, nodes: int = 4, chain_id: str = "testnet-proc", params: ChainParams | None = None
    ) -> None:
        ports = free_ports(nodes)
        # Consecutive ports are not guaranteed free: give each node its own port through the config override.
        self.layout: NetworkLayout = generate_network(
            directory,
            nodes,
            chain_id=chain_id,
            base_port=ports[0],
            seed=b"cluster",
            params=params or ChainParams(base_timeout_ms=1000, empty_block_interval_ms=100),
        )
        self._fix_ports(ports)
        self.chain_id = chain_id
        self.n = nodes
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self.accounts: dict[str, nacl.signing.SigningKey] = load_accounts(self.layout.accounts_path)
        self.users = sorted(a for a in self.accounts if a.startswith("user-"))
        self.nonce = 0

    def _fix_ports(self, ports: list[int]) -> None:
        import json

        from node.chain.genesis import write_genesis
        from node.validator.config import load_config, write_config

        with open(self.layout.genesis_path, encoding="utf-8") as f:
            doc = json.load(f)
        for i, v in enumerate(doc["validators"]):
            v["address"] = f"127.0.0.1:{ports[i]}"
        write_genesis(self.layout.genesis_path, doc)
        for i, path in enumerate(self.layout.config_paths):
            cfg = load_config(path)
            write_config(
                path,
                cfg.__class__(
                    **{**{k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "p2p_listen": ("127.0.0.1", ports[i])}
                ),
            )

    def data_dir(self, i: int) -> str:
        return os.path.join(os.path.dirname(self.layout.config_paths[i]), "data")

    def sock(self, i: int) -> str:
        return os.path.join(self.data_dir(i), "admin.sock")

    def log_path(self, i: int) -> str:
        return os.path.join(os.path.dirname(self.layout.config_paths[i]), "node.log")

    def start(self, i: int) -> None:
        assert self.procs[i] is None
        if os.path.exists(self.sock(i)):
            os.remove(self.sock(i))
        log = open(self.log_path(i), "ab")  # noqa: SIM115 (the child owns it)
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "node", "run", "--config", self.layout.config_paths[i]],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        log.close()

    def start_all(self) -> None:
        for i in range(self.n):
            self.start(i)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs[i] = None

    def terminate(self, i: int) -> int:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        self.procs[i] = None
        return code

    def wipe(self, i: int) -> None:
        assert self.procs[i] is None
        shutil.rmtree(self.data_dir(i))

    def stop_all(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                self.procs[i] = None

    def request(self, i: int, req: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        return admin_request(self.sock(i), req, timeout)

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
        try:
            with open(self.log_path(i), encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def wait_height(self, nodes: list[int], height: int, timeout: float) -> None:
        self.wait(lambda: all(self.height(i) >= height for i in nodes), timeout, f"nodes {nodes} at {height}")

    def transfer(self, k: int, expiry: int = 10_000) -> bytes:
        sender = self.users[k % len(self.users)]
        recipient = self.users[(k + 1) % len(self.users)]
        self.nonce += 1
        body = TxBody(
            1,
            self.chain_id,
            (sender,),
            self.nonce,
            expiry,
            (Transfer(sender, CASH_ASSET, (TransferLeg(recipient, 1),)),),
        )
        return sign_transaction(body, [(sender, self.accounts[sender])], operations=OPERATIONS).to_bytes()

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
