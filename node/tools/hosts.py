"""A consortium on separate hosts, on one machine: every validator on a host of its own (a Linux network namespace,
node/tools/netns.py) with its own IP address, set up by the key ceremony of docs/operations.md as the members run
it, and the faults a network has — a host's cable pulled.

    net = HostNetwork.create(directory, nodes=4)   the hosts (namespaces on a bridge), DIR/hosts.json
    genesis_hash = net.ceremony()                  on each host `ledger init node` (keys stay in DIR/host-<i>),
                                                   the coordinator `ledger init genesis` from the validator.json
                                                   files, each host `ledger init check-genesis` (hashes compared)
    net.configure_tls(i, tls)                      optional: [api.tls] in host i's config (what its operator adds)
    net.start_all(); net.wait_ready(timeout)       `ledger node run` inside each namespace; APIs answering
    net.api_url(i)                                 http(s)://<host address>:8100 — reached through the bridge
    net.cut(i) / net.heal(i)                       the host's link down / up (a network partition, not the node's
                                                   fault injection)
    net.destroy()                                  stop the nodes, delete namespaces and bridge, remove hosts.json

Layout: DIR/host-<i>/ is host i's disk (node_keys.json, config.toml, validator.json, genesis.json, data/, node.log);
DIR/coordinator/ the coordinator's (the collected validator files, genesis.json, admin.key: the key of
`admin@<first member>`, which the genesis gives every role). Nodes bind and advertise only their host's address;
nothing listens on a loopback address for peers. Members are `bank-a`, `bank-b`, ...; nodes `node-0`, `node-1`, ...

`ledger hosts up|status|cut|heal|down|clean` (node/cli/hosts.py) drives it; the multi-host test is
tests/node/tools/test_hosts.py. Needs root and iproute2 (`ip netns`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Final

from node.api.tls import ApiTls
from node.client.keys import AccountKey, save_key
from node.errors import NodeError
from node.tools.netns import HostLan
from node.validator.config import load_config, write_config

__all__ = ["HostNetwork", "HostsError"]

STATE_FILE: Final = "hosts.json"
DEFAULT_CHAIN_ID: Final = "testnet-hosts"
P2P_PORT: Final = 7100
API_PORT: Final = 8100
MAX_NODES: Final = 16
COMMAND_TIMEOUT_S: Final = 120.0
STOP_GRACE_S: Final = 10.0
# The source tree holding the `node` package (this file is node/tools/hosts.py): what the hosts' commands run.
ROOT: Final = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_HASH_LINE = re.compile(r"hash:?\s+([0-9a-f]{64})")


class HostsError(NodeError):
    """A multi-host network command that failed: `hosts_command_failed` (a ceremony or node command; the message
    has its output), `hosts_genesis_mismatch`, `hosts_not_ready`, `hosts_no_network`, `hosts_exists`."""


def member_id(i: int) -> str:
    return f"bank-{chr(ord('a') + i)}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _ledger(*args: str) -> list[str]:
    return [sys.executable, "-m", "node.cli", *args]


class HostNetwork:
    def __init__(self, directory: str, lan: HostLan, chain_id: str, tls: dict[int, bool] | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.lan = lan
        self.chain_id = chain_id
        self.tls: dict[int, bool] = dict(tls or {})
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- creation ------------------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, directory: str, nodes: int = 4, *, chain_id: str = DEFAULT_CHAIN_ID, kept: bool = False
    ) -> HostNetwork:
        """The hosts. `kept`: the network outlives this process (`ledger hosts up`); otherwise it is deleted as
        stale (node/tools/netns.py, `remove_stale`) once this process is gone, nodes and all."""
        assert 1 <= nodes <= MAX_NODES
        path = os.path.join(directory, STATE_FILE)
        if os.path.exists(path):
            raise HostsError("hosts_exists", f"{path} exists: `ledger hosts down --dir {directory}` first")
        if os.path.exists(os.path.join(directory, "host-0")) or os.path.exists(os.path.join(directory, "coordinator")):
            raise HostsError(
                "hosts_exists", f"{directory} holds the hosts of an earlier network: use another directory or remove it"
            )
        os.makedirs(directory, exist_ok=True)
        lan = HostLan.create(nodes, kept=kept)
        net = cls(directory, lan, chain_id)
        try:
            net._save()
        except BaseException:
            lan.destroy()
            raise
        return net

    @classmethod
    def open(cls, directory: str) -> HostNetwork:
        try:
            with open(os.path.join(directory, STATE_FILE), encoding="utf-8") as f:
                doc = json.load(f)
            tls = {int(k): bool(v) for k, v in doc.get("tls", {}).items()}
            return cls(directory, HostLan.from_json(doc["lan"]), doc["chain_id"], tls)
        except OSError:
            raise HostsError("hosts_no_network", f"no multi-host network in {directory} (no {STATE_FILE})") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HostsError("hosts_no_network", f"{directory}/{STATE_FILE} is not a hosts file: {exc!r}") from None

    def _save(self) -> None:
        doc = {"chain_id": self.chain_id, "lan": self.lan.to_json(), "tls": {str(k): v for k, v in self.tls.items()}}
        tmp = os.path.join(self.directory, STATE_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        os.replace(tmp, os.path.join(self.directory, STATE_FILE))

    @property
    def size(self) -> int:
        return len(self.lan.hosts)

    def host_dir(self, i: int) -> str:
        return os.path.join(self.directory, f"host-{i}")

    @property
    def coordinator_dir(self) -> str:
        return os.path.join(self.directory, "coordinator")

    def config_path(self, i: int) -> str:
        return os.path.join(self.host_dir(i), "config.toml")

    def passphrase_path(self, i: int) -> str:
        """Host i's key passphrase (docs/operations.md runbook: a file of mode 0400 outside the node's directory)."""
        return os.path.join(self.directory, "secrets", f"host-{i}.passphrase")

    def write_passphrase(self, i: int) -> str:
        path = self.passphrase_path(i)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(os.urandom(24).hex())
        return path

    def log_path(self, i: int) -> str:
        return os.path.join(self.host_dir(i), "node.log")

    def address(self, i: int) -> str:
        return self.lan.hosts[i].address

    def api_url(self, i: int) -> str:
        return f"{'https' if self.tls.get(i) else 'http'}://{self.address(i)}:{API_PORT}"

    @property
    def admin_key_path(self) -> str:
        return os.path.join(self.coordinator_dir, "admin.key")

    # -- the key ceremony ----------------------------------------------------------------------------------------

    def _run(self, argv: list[str], what: str) -> str:
        try:
            done = subprocess.run(
                argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise HostsError("hosts_command_failed", f"{what}: no answer within {COMMAND_TIMEOUT_S} s") from None
        if done.returncode != 0:
            raise HostsError(
                "hosts_command_failed", f"{what} exited with {done.returncode}: {(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def _on_each_host(self, make: Any, what: str) -> list[str]:
        """Run `make(i)` (an argv) inside every host's namespace at once; their outputs in host order."""
        with ThreadPoolExecutor(max_workers=self.size) as pool:
            futures = [
                pool.submit(self._run, self.lan.exec_argv(i, make(i)), f"{what} on host {i}") for i in range(self.size)
            ]
            return [f.result() for f in futures]

    def ceremony(self) -> str:
        """docs/operations.md's key ceremony, each step where it happens; returns the genesis hash every host
        printed. Refuses when any host's `check-genesis` prints another hash than the coordinator's."""
        self._on_each_host(
            lambda i: _ledger(
                "init",
                "node",
                "--node-id",
                f"node-{i}",
                "--member",
                member_id(i),
                "--dir",
                self.host_dir(i),
                "--listen",
                f"{self.address(i)}:{P2P_PORT}",
                "--api",
                f"{self.address(i)}:{API_PORT}",
                "--passphrase-file",
                self.write_passphrase(i),
                # The keys are sealed as the runbook says, at libsodium's "interactive" cost: these hosts are a test
                # network (a member's real node keeps the default cost).
                "--kdf-cost",
                "interactive",
            ),
            "ledger init node",
        )
        os.makedirs(self.coordinator_dir, exist_ok=True)
        collected = []
        for i in range(self.size):  # what each member sends the coordinator: its public validator.json
            path = os.path.join(self.coordinator_dir, f"validator-node-{i}.json")
            shutil.copyfile(os.path.join(self.host_dir(i), "validator.json"), path)
            collected += ["--validator", path]
        admin = AccountKey.generate(f"admin@{member_id(0)}")
        save_key(admin, self.admin_key_path)
        genesis = os.path.join(self.coordinator_dir, "genesis.json")
        out = self._run(
            _ledger(
                "init",
                "genesis",
                "--chain-id",
                self.chain_id,
                "--admin-key",
                admin.public_key.hex(),
                *collected,
                "--out",
                genesis,
            ),
            "ledger init genesis",
        )
        m = _HASH_LINE.search(out)
        if m is None:
            raise HostsError("hosts_command_failed", f"ledger init genesis printed no hash: {out!r}")
        expected = m.group(1)
        for i in range(self.size):  # the coordinator hands genesis.json to every member
            shutil.copyfile(genesis, os.path.join(self.host_dir(i), "genesis.json"))
        outputs = self._on_each_host(
            lambda i: _ledger("init", "check-genesis", os.path.join(self.host_dir(i), "genesis.json")),
            "ledger init check-genesis",
        )
        for i, printed in enumerate(outputs):  # compared out of band
            m = _HASH_LINE.search(printed)
            if m is None or m.group(1) != expected:
                raise HostsError(
                    "hosts_genesis_mismatch",
                    f"host {i} checked genesis {m.group(1) if m else '?'}, the coordinator built {expected}",
                )
        return expected

    def configure_tls(self, i: int, tls: ApiTls) -> None:
        """Put [api.tls] into host i's config (the certificate files are the operator's, on that host)."""
        path = self.config_path(i)
        write_config(path, replace(load_config(path), api_tls=tls))
        self.tls[i] = True
        self._save()

    # -- nodes ---------------------------------------------------------------------------------------------------

    def start(self, i: int) -> int:
        """`ledger node run` inside host i's namespace, in a session of its own; returns its pid."""
        child = self._children.get(i)
        if child is not None and child.poll() is None:
            return child.pid
        with open(self.log_path(i), "ab") as log:
            child = subprocess.Popen(
                self.lan.exec_argv(
                    i, _ledger("node", "run", "--config", self.config_path(i), "--passphrase-file", self.passphrase_path(i))
                ),
                cwd=ROOT,
                env=_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._children[i] = child
        return child.pid

    def start_all(self) -> None:
        for i in range(self.size):
            self.start(i)

    def running(self, i: int) -> bool:
        return bool(self.lan.pids(i))

    def stop(self, i: int, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM every process of host i (the node), SIGKILL what remains after `grace` seconds."""
        for pid in self.lan.pids(i):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.lan.pids(i) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        for pid in self.lan.pids(i):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        for child in self._children.values():
            child.poll()

    def exit_code(self, i: int) -> int | None:
        child = self._children.get(i)
        return None if child is None else child.poll()

    def status(self, i: int, context: ssl.SSLContext | None = None, timeout: float = 3.0) -> dict[str, Any] | None:
        """GET /v1/status of host i's node through the bridge; None when it does not answer."""
        try:
            with urllib.request.urlopen(self.api_url(i) + "/v1/status", timeout=timeout, context=context) as r:
                return json.loads(r.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def wait_ready(self, timeout: float, context: ssl.SSLContext | None = None) -> None:
        """Until every node's API answers at its host address; a node that exits is reported with its log."""
        deadline = time.monotonic() + timeout
        waiting = set(range(self.size))
        while waiting:
            for i in sorted(waiting):
                code = self.exit_code(i)
                if code is not None:
                    raise HostsError("hosts_not_ready", f"node-{i} exited with {code}: {self._log_tail(i)}")
                if self.status(i, context) is not None:
                    waiting.discard(i)
            if waiting and time.monotonic() > deadline:
                raise HostsError(
                    "hosts_not_ready",
                    f"no API answer from {sorted(waiting)} within {timeout} s "
                    f"(is bridged traffic filtered? net.bridge.bridge-nf-call-iptables "
                    f"and the FORWARD chain): {self._log_tail(min(waiting))}",
                )
            time.sleep(0.2)

    def _log_tail(self, i: int, lines: int = 15) -> str:
        try:
            with open(self.log_path(i), encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- faults --------------------------------------------------------------------------------------------------

    def cut(self, i: int) -> None:
        self.lan.cut(i)

    def heal(self, i: int) -> None:
        self.lan.heal(i)

    # -- teardown ------------------------------------------------------------------------------------------------

    def destroy(self) -> list[str]:
        """Stop every node (SIGTERM to all, SIGKILL to what remains after 5 s), delete the namespaces and the bridge,
        remove DIR/hosts.json. Idempotent; returns the names it could not delete."""
        with contextlib.suppress(NodeError):
            pids = [pid for i in range(self.size) for pid in self.lan.pids(i)]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5.0
            while any(self.lan.pids(i) for i in range(self.size)) and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
        left = self.lan.destroy()  # SIGKILLs what still runs
        for child in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
        self._children.clear()
        if not left:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.directory, STATE_FILE))
        return left
