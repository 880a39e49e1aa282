"""The one launcher of local networks: a testnet on disk whose nodes run as processes (`ledger testnet`, chaos, the
bench, scenario 7) or inside this process (`ledger demo` when no testnet runs, the API scenario tests), with one
set of commands over both, and the fault commands testers use on it.

    net = Testnet.create(directory, nodes=4)     generate keys, genesis, configs (node.tools.localnet) on free ports
    net = Testnet.create(directory, 4, in_process=True, open_reads=False)   the same nodes, run in this process
    net = Testnet.open(directory)                a network of node processes created before (reads DIR/testnet.json)
    net.add_node()                               keys, config and data dir of a node NOT in the genesis (it joins
                                                 once governance adds it: scenario 7), with its add_validator action
    net.up(timeout)                              start every node not running, wait until all are up
    net.status()                                 per node: height, round, peers, mempool; roots at a common height
    net.start(i) / net.stop(i) / net.restart(i) / net.down()   start / SIGTERM (bounded) / both / every node
    net.kill(i) / net.kill_all()                 kill -9 (processes only) / cleanup of last resort
    net.partition([[0, 1], [2, 3]]) / net.heal() / net.slow(i, ms)   through the nodes' admin sockets
    net.admin(i, request), net.height(i), net.roots(i, lo, hi), net.api_url(i)   queries, the same in both modes
    net.close()                                  release this object: forget process handles (the processes keep
                                                 running), or stop in-process nodes and their event loop

How nodes run: node.tools.node_processes (`ledger node run` processes in sessions of their own, pid files checked
against /proc) or node.tools.in_process (the same assembly from the same config files, on an event loop of this
process). Every query goes through a node's admin socket (DATA/admin.sock) and HTTP API, which both kinds serve, so
status, faults, chaos checks and the demo's clients do not know the difference; only kill -9 needs a process.

Layout on disk (besides what node.tools.localnet writes): DIR/testnet.json (node count, ports, how the nodes run,
the faults in force, the nodes added after genesis), DIR/node-<i>/node.pid and DIR/node-<i>/node.log (processes),
DIR/keys/gov-m<i>.key (the account key files of the founding members' governors `gov@m<i>`, which the genesis gives
the governor role: every founding member votes, M = floor(2N/3) + 1 of N approve a proposal). An in-process network
lives only as long as the object that created it: `Testnet.open` refuses it.

Faults exist only on testnet chain ids (testnet-...) whose configs enable fault injection: the nodes refuse them
otherwise, and this module reports the node's error code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Final

from node.chain.genesis import ChainParams
from node.errors import NodeError
from node.tools.admin_client import ADMIN_TIMEOUT_S, admin_call
from node.tools.in_process import START_ERRORS, InProcessNodes
from node.tools.localnet import NetworkLayout, generate_network
from node.tools.node_processes import STOP_GRACE_S, ProcessNodes

STATE_FILE: Final = "testnet.json"
DEFAULT_CHAIN_ID: Final = "testnet-local"
MAX_NODES: Final = 32
KEYS_DIR: Final = "keys"
RUNS_PROCESSES: Final = "processes"
RUNS_IN_PROCESS: Final = "in_process"


def governor_account(member: str) -> str:
    """The governor account of a founding member of a testnet: `gov@<member>`."""
    return f"gov@{member}"


class TestnetError(NodeError):
    """A user-visible failure of a testnet command: a stable code and a message."""

    __test__ = False  # not a pytest test class


# ------------------------------------------------------------------------------------------------ governors


def _write_governor_keys(layout: NetworkLayout, nodes: int) -> None:
    """Key files DIR/keys/gov-m<i>.key of the founding members' governors, whose accounts (role governor) and seeds
    node.tools.localnet wrote into the genesis and accounts.json (`governors=True`)."""
    from node.client.keys import AccountKey, save_key
    from node.tools.localnet import load_accounts

    seeds = load_accounts(layout.accounts_path)
    keys_dir = os.path.join(layout.directory, KEYS_DIR)
    os.makedirs(keys_dir, exist_ok=True)
    for i in range(nodes):
        member = f"m{i}"
        name = governor_account(member)
        if name not in seeds:
            raise TestnetError("no_governors", f"the generated network has no governor account {name}")
        save_key(AccountKey(name, seeds[name]), os.path.join(keys_dir, f"gov-{member}.key"), overwrite=True)


# ------------------------------------------------------------------------------------------------------ ports


def find_free_port_block(count: int, host: str = "127.0.0.1", start: int = 20000, end: int = 60000) -> int:
    """A base port such that base .. base+count-1 are all free to bind now (a randomised scan, bounded)."""
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(start, end - count)
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise TestnetError("no_free_ports", f"found no block of {count} free ports")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    index: int
    node_id: str
    running: bool
    pid: int | None
    height: int | None
    round: int | None
    peers: int | None
    mempool: int | None
    state_root: str | None
    committed_txs: int | None
    fatal: Any
    role: str | None = None  # "validator", "full" (a full node) or "removed" (a removed validator that follows)
    mode: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "node_id": self.node_id, "running": self.running, "pid": self.pid,
                "height": self.height, "round": self.round, "peers": self.peers, "mempool": self.mempool,
                "state_root": self.state_root, "committed_txs": self.committed_txs, "fatal": self.fatal,
                "role": self.role, "mode": self.mode}


@dataclass(frozen=True, slots=True)
class NetworkStatus:
    nodes: tuple[NodeStatus, ...]
    common_height: int | None
    roots_agree: bool | None
    root_at_common: dict[str, str | None]

    def to_json(self) -> dict[str, Any]:
        return {"nodes": [n.to_json() for n in self.nodes], "common_height": self.common_height,
                "roots_agree": self.roots_agree, "roots_at_common_height": self.root_at_common}


class Testnet:
    """A local network on disk and its nodes: processes, or (`in_process`) tasks of an event loop in this process."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str, state: dict[str, Any]) -> None:
        self.directory = os.path.abspath(directory)
        self.state = state
        self.n: int = int(state["nodes"])
        self.chain_id: str = state["chain_id"]
        self.host: str = state.get("host", "127.0.0.1")
        self.p2p_ports: list[int] = list(state["p2p_ports"])
        self.api_ports: list[int] = list(state["api_ports"])
        self.in_process = state.get("runs", RUNS_PROCESSES) == RUNS_IN_PROCESS
        self.nodes: ProcessNodes | InProcessNodes = (InProcessNodes(self.config_path) if self.in_process
                                                     else ProcessNodes(self))

    # ----------------------------------------------------------------------------------------- create / open

    @classmethod
    def create(cls, directory: str, nodes: int = 4, *, chain_id: str = DEFAULT_CHAIN_ID, users: int = 8,
               params: ChainParams | None = None, seed: bytes | None = None, host: str = "127.0.0.1",
               base_port: int | None = None, api_base_port: int | None = None, open_reads: bool = True,
               in_process: bool = False) -> Testnet:
        """Generate a network of `nodes` validators in `directory` (ports: free blocks unless given). Its nodes run as
        processes, or inside this process with `in_process` (for the life of the returned object). `open_reads`:
        the nodes' APIs answer reads without a signature (a testnet's default); False makes every private read
        signed, as on a consortium network."""
        if not 1 <= nodes <= MAX_NODES:
            raise TestnetError("bad_nodes", f"--nodes must be 1..{MAX_NODES}")
        if not chain_id.startswith("testnet-"):
            raise TestnetError("not_testnet", f"a testnet chain id starts with 'testnet-', not {chain_id!r}")
        directory = os.path.abspath(directory)
        if os.path.exists(os.path.join(directory, STATE_FILE)):
            raise TestnetError("exists", f"{directory} already holds a testnet (use it, or `ledger testnet down "
                                         f"--dir {directory} --wipe` first)")
        p2p = base_port if base_port is not None else find_free_port_block(nodes, host)
        api = api_base_port if api_base_port is not None else find_free_port_block(nodes, host)
        if api <= p2p < api + nodes or p2p <= api < p2p + nodes:
            api = find_free_port_block(nodes, host, start=p2p + nodes + 1)
        params = params or ChainParams(base_timeout_ms=1000, empty_block_interval_ms=200)
        try:
            layout: NetworkLayout = generate_network(directory, nodes, chain_id=chain_id, base_port=p2p,
                                                     api_base_port=api, host=host, users=users, params=params,
                                                     seed=seed, fault_injection=True, governors=True,
                                                     open_reads=open_reads)
        except NodeError as exc:  # init_file_exists: keys, genesis or configs of another network are there
            raise TestnetError("exists", exc.message) from None
        _write_governor_keys(layout, nodes)
        state = {"nodes": nodes, "chain_id": chain_id, "host": host, "p2p_ports": list(layout.p2p_ports),
                 "api_ports": list(layout.api_ports), "faults": {"partition": None, "slow": {}}, "joined": [],
                 "runs": RUNS_IN_PROCESS if in_process else RUNS_PROCESSES, "open_reads": open_reads}
        net = cls(directory, state)
        net._save()
        return net

    def add_node(self, *, member: str | None = None, seed: bytes | None = None, full: bool = False) -> dict[str, Any]:
        """Keys, config and data directory for node-<n>, a node NOT in the genesis file, run by `member` (default
        the new member m<n>). Its config names the existing nodes as peers; it starts from genesis, follows by block
        sync, and votes from the epoch whose validator record names it (after a governance proposal with the
        returned `actions` executes). Returns what a governor needs to propose it.
        `full`: a full node instead (config `role = "full"`, no actions): every other node lists its identity key in
        its config's [p2p.full_nodes] and, when it runs, re-reads it at once (admin op reload_full_nodes); start it
        with `start(index)`."""
        from ledger.jsonform import to_json
        from ledger.operations import ACTION, AddMember, AddValidator
        from node.validator.config import NodeConfig, write_config
        from node.validator.keyfile import NodeKeys, write_new_node_keys

        i = self.n
        if i >= MAX_NODES:
            raise TestnetError("bad_nodes", f"a testnet has at most {MAX_NODES} nodes")
        node_id = self.node_id(i)
        member = member or ("m0" if full else f"m{i}")
        taken = set(self.p2p_ports) | set(self.api_ports)
        p2p = self._free_port(taken)
        api = self._free_port(taken | {p2p})
        node_dir = self.node_dir(i)
        os.makedirs(node_dir, exist_ok=True)
        keys = NodeKeys.generate(node_id, None if seed is None else seed + b"|" + node_id.encode())
        keys_path = os.path.join(node_dir, "node_keys.json")
        write_new_node_keys(keys_path, keys, overwrite=True)
        peers = {self.node_id(j): (self.host, self.p2p_ports[j]) for j in range(self.n)}
        config = NodeConfig(node_id=node_id, data_dir=self.data_dir(i), keys_file=keys_path,
                            genesis_file=self.genesis_path, p2p_listen=(self.host, p2p), peer_addresses=peers,
                            fault_injection=True, api_listen=(self.host, api),
                            api_open_reads=bool(self.state.get("open_reads", True)),
                            role="full" if full else "validator")
        write_config(self.config_path(i), config)
        address = f"{self.host}:{p2p}"
        if full:
            self._register(i, node_id, member, p2p, api, full=True)
            admitted_by = self._admit_full_node(i, node_id, keys.identity_key)
            return {"node": node_id, "index": i, "member": member, "role": "full", "config": self.config_path(i),
                    "p2p": address, "api": self.api_url(i), "identity_key": keys.identity_key.hex(),
                    "admitted_by": admitted_by}
        add_validator = AddValidator(node_id, member, keys.identity_key, keys.bls_public_key, keys.bls_pop(),
                                     address, 1)
        actions = [to_json(ACTION, add_validator)]
        if member == f"m{i}":
            actions.insert(0, to_json(ACTION, AddMember(member, f"Member {i}", True)))
        self._register(i, node_id, member, p2p, api)
        return {"node": node_id, "index": i, "member": member, "config": self.config_path(i), "p2p": address,
                "api": self.api_url(i), "actions": actions}

    def _register(self, i: int, node_id: str, member: str, p2p: int, api: int, full: bool = False) -> None:
        self.state["nodes"] = i + 1
        self.p2p_ports.append(p2p)
        self.api_ports.append(api)
        self.state["p2p_ports"] = list(self.p2p_ports)
        self.state["api_ports"] = list(self.api_ports)
        entry: dict[str, Any] = {"index": i, "node_id": node_id, "member": member}
        if full:
            entry["role"] = "full"
        self.state.setdefault("joined", []).append(entry)
        self.n = i + 1
        self._save()

    def _admit_full_node(self, index: int, node_id: str, identity_key: bytes) -> list[str]:
        """List the full node in every other node's [p2p.full_nodes]; running nodes re-read it at once. The node
        ids that admit it now (the others will when they start)."""
        from node.validator.config import load_config, write_config

        admitted = []
        for j in range(self.n):
            if j == index or j in self.full_nodes:
                continue
            config = load_config(self.config_path(j))
            full_nodes = {**config.full_nodes, node_id: identity_key}
            write_config(self.config_path(j), dataclasses.replace(config, full_nodes=full_nodes))
            if self.running(j):
                answer = self.admin(j, {"op": "reload_full_nodes"})
                if answer is not None and node_id in answer.get("full_nodes", ()):
                    admitted.append(self.node_id(j))
        return admitted

    @property
    def full_nodes(self) -> list[int]:
        """Indexes of the full nodes added by add_node(full=True)."""
        return [int(j["index"]) for j in self.state.get("joined", []) if j.get("role") == "full"]

    def _free_port(self, taken: set[int]) -> int:
        for _ in range(50):
            port = find_free_port_block(1, self.host)
            if port not in taken:
                return port
        raise TestnetError("no_free_ports", "found no free port for the new node")

    @property
    def joined(self) -> list[int]:
        """Indexes of the nodes added after genesis (add_node; the full nodes among them: `full_nodes`)."""
        return [int(j["index"]) for j in self.state.get("joined", [])]

    def governor_key_path(self, member: str) -> str:
        return os.path.join(self.directory, KEYS_DIR, f"gov-{member}.key")

    @classmethod
    def open(cls, directory: str) -> Testnet:
        path = os.path.join(os.path.abspath(directory), STATE_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            raise TestnetError("no_testnet", f"no testnet in {directory} (run `ledger testnet up` first)") from None
        except (OSError, ValueError) as exc:
            raise TestnetError("bad_state", f"cannot read {path}: {exc}") from None
        if state.get("runs") == RUNS_IN_PROCESS:
            raise TestnetError("in_process", f"the testnet in {directory} runs its nodes inside the process that "
                                             "created it: only that process controls them")
        return cls(directory, state)

    def refresh(self) -> None:
        """Read the state file again (another process -- a `ledger testnet add-node` -- may have added nodes)."""
        state = Testnet.open(self.directory).state
        self.state = state
        self.n = int(state["nodes"])
        self.p2p_ports = list(state["p2p_ports"])
        self.api_ports = list(state["api_ports"])

    def _save(self) -> None:
        path = os.path.join(self.directory, STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.state, f, indent=2)
        os.replace(tmp, path)

    # ----------------------------------------------------------------------------------------------- paths

    def node_dir(self, i: int) -> str:
        return os.path.join(self.directory, f"node-{i}")

    def node_id(self, i: int) -> str:
        return f"node-{i}"

    def config_path(self, i: int) -> str:
        return os.path.join(self.node_dir(i), "config.toml")

    def data_dir(self, i: int) -> str:
        return os.path.join(self.node_dir(i), "data")

    def socket_path(self, i: int) -> str:
        return os.path.join(self.data_dir(i), "admin.sock")

    def log_path(self, i: int) -> str:
        return os.path.join(self.node_dir(i), "node.log")

    def pid_path(self, i: int) -> str:
        return os.path.join(self.node_dir(i), "node.pid")

    @property
    def genesis_path(self) -> str:
        return os.path.join(self.directory, "genesis.json")

    @property
    def accounts_path(self) -> str:
        return os.path.join(self.directory, "accounts.json")

    def api_url(self, i: int) -> str:
        return f"http://{self.host}:{self.api_ports[i]}"

    def api_urls(self) -> list[str]:
        """The HTTP API of every node, in node order."""
        return [self.api_url(i) for i in range(self.n)]

    def parse_node(self, name: str) -> int:
        """'2' or 'node-2' -> 2."""
        text = name.strip()
        text = text.removeprefix("node-")
        if not text.isdigit() or not 0 <= int(text) < self.n:
            raise TestnetError("bad_node", f"no node {name!r} (this network has node-0 .. node-{self.n - 1})")
        return int(text)

    # ------------------------------------------------------------------------------------------- processes

    def pid(self, i: int) -> int | None:
        """The pid of the process running node i (this process for an in-process node) while it runs, else None."""
        return self.nodes.pid(i)

    def running(self, i: int) -> bool:
        return self.pid(i) is not None

    def start(self, i: int) -> int:
        """Start node i (no-op when it runs); returns the pid of the process running it."""
        if not self.in_process:
            return self.nodes.start(i)
        try:
            return self.nodes.start(i)
        except FutureTimeout:
            raise TestnetError("timeout", f"node-{i} did not start in this process") from None
        except START_ERRORS as exc:
            raise TestnetError("node_failed", f"node-{i} did not start: {exc}") from None

    def kill(self, i: int) -> bool:
        """kill -9 node i; False when it was not running. Only node processes can be killed."""
        if self.in_process:
            raise TestnetError("needs_processes", "kill -9 needs node processes; this testnet runs its nodes inside "
                                                  "the process that created it")
        return self.nodes.kill(i)

    def stop(self, i: int, grace: float = STOP_GRACE_S) -> str:
        """SIGTERM (in-process: a graceful stop), then SIGKILL when the node has not exited within `grace` seconds.
        Returns 'stopped', 'killed' or 'not_running'."""
        return self.nodes.stop(i, grace)

    def exit_code(self, i: int) -> int | None:
        """How node i last ended, when this object saw it: its exit status (0 after a clean stop; 3 when it halted; 4 when it was stopped after its disk failed;
        negative: the signal that ended its process); None when unknown or still running."""
        return self.nodes.exit_code(i)

    def down(self, grace: float = STOP_GRACE_S) -> dict[int, str]:
        """Stop every node: SIGTERM to all at once, then SIGKILL to those still running after `grace`; the recorded
        faults are cleared."""
        result = self.nodes.stop_all(range(self.n), grace)
        self.state["faults"] = {"partition": None, "slow": {}}
        self._save()
        return result

    def kill_all(self) -> None:
        """Stop every node at once, whatever it takes (cleanup of last resort: tests' finalizers): SIGKILL every node
        process this testnet knows, or stop every in-process node and its event loop."""
        if self.in_process:
            self.nodes.close()
        else:
            self.nodes.kill_all(range(self.n))

    def close(self) -> None:
        """Release what this object holds: the handles of node processes it started (the processes keep running in
        their own sessions), or the in-process nodes (stopped) and their event loop."""
        self.nodes.close()

    # ---------------------------------------------------------------------------------------- node queries

    def admin(self, i: int, request: dict[str, Any], timeout: float = ADMIN_TIMEOUT_S) -> dict[str, Any] | None:
        return admin_call(self.socket_path(i), request, timeout)

    def node_status(self, i: int) -> dict[str, Any] | None:
        if not self.running(i):
            return None
        answer = self.admin(i, {"op": "status"})
        return None if answer is None or "error" in answer else answer

    def height(self, i: int) -> int:
        s = self.node_status(i)
        return -1 if s is None else int(s["height"])

    def roots(self, i: int, lo: int, hi: int) -> dict[int, str]:
        answer = self.admin(i, {"op": "roots", "from": lo, "to": hi})
        if answer is None or "roots" not in answer:
            return {}
        return {int(h): r for h, r in answer["roots"].items()}

    def wait_up(self, timeout: float, nodes: Iterable[int] | None = None, min_height: int = 1) -> None:
        """Wait until every node answers on its admin socket, is connected to all peers it should reach, and has
        committed `min_height`. Raises TestnetError (with log tails) on timeout or when a node exits."""
        which = list(range(self.n)) if nodes is None else list(nodes)
        deadline = time.monotonic() + timeout
        pending = set(which)
        while time.monotonic() < deadline:
            for i in list(pending):
                if not self.running(i):
                    raise TestnetError("node_exited", f"node-{i} exited while starting:\n{self.tail(i, 20)}")
                s = self.node_status(i)
                if s is not None and s["height"] >= min_height and (self.n == 1 or s["peers_connected"] >= 1):
                    pending.discard(i)
            if not pending:
                return
            time.sleep(0.1)
        tails = "\n".join(f"--- node-{i}\n{self.tail(i, 10)}" for i in sorted(pending))
        raise TestnetError("timeout", f"nodes {sorted(pending)} not up after {timeout:.0f}s\n{tails}")

    def wait_height(self, nodes: Iterable[int], height: int, timeout: float) -> bool:
        which = list(nodes)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.height(i) >= height for i in which):
                return True
            time.sleep(0.1)
        return False

    def tail(self, i: int, lines: int = 30) -> str:
        try:
            with open(self.log_path(i), "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 200 * lines))
                data = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    def status(self) -> NetworkStatus:
        nodes = []
        for i in range(self.n):
            pid = self.pid(i)
            s = self.node_status(i) if pid is not None else None
            nodes.append(NodeStatus(
                i, self.node_id(i), pid is not None, pid,
                None if s is None else s["height"], None if s is None else s.get("round"),
                None if s is None else s.get("peers_connected"), None if s is None else s.get("mempool"),
                None if s is None else s.get("state_root"), None if s is None else s.get("committed_txs"),
                None if s is None else s.get("fatal"), None if s is None else s.get("role"),
                None if s is None else s.get("mode")))
        # The nodes that follow the chain: every running node that answers and has not halted (validators, full
        # nodes and removed validators alike): their common height is live.
        following = [n for n in nodes if n.height is not None and not n.fatal]
        if not following:
            return NetworkStatus(tuple(nodes), None, None, {})
        common = min(n.height for n in following if n.height is not None)
        at: dict[str, str | None] = {}
        for n in following:
            at[n.node_id] = self.roots(n.index, common, common).get(common)
        values = {r for r in at.values() if r is not None}
        return NetworkStatus(tuple(nodes), common, len(values) == 1 and None not in at.values(), at)

    # ----------------------------------------------------------------------------------------------- faults

    def _fault(self, i: int, request: dict[str, Any]) -> dict[str, Any]:
        answer = self.admin(i, {"op": "fault", **request})
        if answer is None:
            raise TestnetError("unreachable", f"node-{i} is not running or does not answer")
        if "error" in answer:
            raise TestnetError(str(answer["error"]), f"node-{i}: {answer.get('message', '')}")
        return answer

    def _apply_faults(self, i: int) -> None:
        """(Re)apply the recorded faults to node i: used after a restart, since faults live in node memory."""
        faults = self.state.get("faults") or {}
        groups = faults.get("partition")
        if groups:
            mine = next((g for g in groups if i in g), [i])
            others = [self.node_id(j) for j in range(self.n) if j not in mine]
            if others:
                self._fault(i, {"action": "block", "peers": others})
        ms = (faults.get("slow") or {}).get(str(i))
        if ms:
            self._fault(i, {"action": "delay", "peer": None, "ms": int(ms)})

    def partition(self, groups: Sequence[Sequence[int]]) -> list[str]:
        """Split the network: a node talks only to the nodes of its own group. Nodes not named form their own
        group. Returns messages about nodes that were not reachable (they get the fault when restarted)."""
        seen: set[int] = set()
        clean: list[list[int]] = []
        for g in groups:
            group = sorted(set(g))
            if not group or seen & set(group):
                raise TestnetError("bad_partition", "groups must be non-empty and disjoint")
            seen |= set(group)
            clean.append(group)
        rest = [i for i in range(self.n) if i not in seen]
        if rest:
            clean.append(rest)
        self.state["faults"]["partition"] = clean
        self._save()
        notes = []
        for i in range(self.n):
            if not self.running(i):
                notes.append(f"node-{i} is down: it gets the partition when restarted")
                continue
            self._fault(i, {"action": "unblock", "peers": None})
            mine = next(g for g in clean if i in g)
            others = [self.node_id(j) for j in range(self.n) if j not in mine]
            if others:
                self._fault(i, {"action": "block", "peers": others})
        return notes

    def heal(self) -> list[str]:
        """Remove every partition and slow link."""
        self.state["faults"] = {"partition": None, "slow": {}}
        self._save()
        notes = []
        for i in range(self.n):
            if not self.running(i):
                notes.append(f"node-{i} is down")
                continue
            self._fault(i, {"action": "unblock", "peers": None})
            self._fault(i, {"action": "delay", "peer": None, "ms": 0})
        return notes

    def slow(self, i: int, ms: int) -> dict[str, Any]:
        """Delay every frame to and from node i by `ms` milliseconds (0 removes the delay)."""
        if not 0 <= ms <= 60_000:
            raise TestnetError("bad_delay", "--delay must be 0..60000 ms")
        slow = self.state["faults"].setdefault("slow", {})
        if ms:
            slow[str(i)] = ms
        else:
            slow.pop(str(i), None)
        self._save()
        return self._fault(i, {"action": "delay", "peer": None, "ms": ms})

    def restart(self, i: int, timeout: float = 30.0) -> int:
        """Stop node i (SIGTERM, bounded) when it runs, start it, wait until it answers, re-apply faults."""
        self.stop(i)
        pid = self.start(i)
        self.wait_up(timeout, [i], min_height=0)
        self._apply_faults(i)
        return pid

    def up(self, timeout: float = 60.0) -> list[int]:
        """Start every node that is not running and wait until all are up; returns the pids."""
        pids = [self.start(i) for i in range(self.n)]
        self.wait_up(timeout)
        for i in range(self.n):
            self._apply_faults(i)
        return pids


def api_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether the node's HTTP API answers /v1/status."""
    try:
        with urllib.request.urlopen(url + "/v1/status", timeout=timeout) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False
