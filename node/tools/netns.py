"""Separate hosts on one Linux machine: each host is a network namespace with one interface (`eth0`, its own IPv4
address) plugged by a veth pair into a bridge in the root namespace — a switch. A process started in a host's
namespace sees only that interface (and its own loopback): it can bind only the host's address, and reaches the
other hosts only across the bridge. Taking the switch side of a host's veth down is pulling its cable.

    lan = HostLan.create(4)                  namespaces, veths, bridge, addresses (needs root and iproute2)
    lan.hosts[i].address                     "10.77.<k>.<i+1>" (k: the first 10.77.k.0/24 no interface uses)
    lan.exec_argv(i, argv)                   ["ip", "netns", "exec", <namespace>, *argv]
    lan.cut(i) / lan.heal(i)                 ip link set <veth of host i> down / up
    lan.destroy()                            kill what runs inside, delete namespaces, veths, bridge (idempotent)
    HostLan.create(4, kept=True)             a LAN meant to outlive its creator (`ledger hosts up`)
    HostLan.from_json(lan.to_json())         the same LAN in another process (`ledger hosts down`)
    remove_stale()                           delete the LANs of earlier runs that crashed (below)

Names: a LAN is `lh<creator pid, 6 hex><k, 1 hex>` (`lk...` when kept: below); its namespaces `<lan>-<i>`, its
bridge `<lan>b`, its veths `<lan>v<i>` (interface names stay under Linux's 15 characters). A LAN is stale once the
process that created it is gone — unless it is a kept one (`ledger hosts up` leaves its network running) in whose
namespaces something still runs. `remove_stale` deletes exactly the stale ones, killing what still runs in them
(the nodes of a test that crashed), so concurrent runs on one machine and a running `ledger hosts` network are never
touched. Creating a LAN holds an exclusive lock
(/run/lock or /tmp) while it picks its subnet, so two runs never take the same one.

The root namespace has the bridge address `.254`, so tools and tests there reach the hosts' addresses through the
bridge, as a client on the same LAN would. Bridged traffic passes the root namespace's firewall when
`net.bridge.bridge-nf-call-iptables` is 1: a FORWARD policy of DROP there (Docker sets one) cuts the hosts off from each
other; `HostLan.create` does not change the machine's firewall.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from node.errors import NodeError

__all__ = ["Host", "HostLan", "NetnsError", "lan_names", "remove_stale", "require_netns"]

PREFIX: Final = "lh"  # a LAN that lives as long as the process that created it (tests, benchmarks)
KEPT_PREFIX: Final = "lk"  # a LAN left running on purpose (`ledger hosts up`) until `ledger hosts down`
SUBNET_BASE: Final = "10.77"  # hosts get 10.77.<k>.<i + 1>/24, the bridge 10.77.<k>.254
BRIDGE_HOST: Final = 254
MAX_HOSTS: Final = 200
IP_TIMEOUT_S: Final = 30.0
_NAME = re.compile(rf"((?:{PREFIX}|{KEPT_PREFIX})[0-9a-f]{{7}})(?:b|v[0-9]+|-[0-9]+)")
_runs = itertools.count()


class NetnsError(NodeError):
    """A namespace operation that failed: `netns_unavailable` (no iproute2, not root, no namespace support),
    `netns_failed` (an `ip` command failed: the message has its output), `netns_no_subnet`."""


def _ip(*args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise NetnsError("netns_unavailable", "the `ip` command (iproute2) is not installed") from None
    except subprocess.TimeoutExpired:
        raise NetnsError("netns_failed", f"ip {' '.join(args)}: no answer within {IP_TIMEOUT_S} s") from None
    if check and done.returncode != 0:
        raise NetnsError("netns_failed", f"ip {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def require_netns() -> None:
    """Raise NetnsError(netns_unavailable) with what is missing unless this process can create namespaces."""
    if shutil.which("ip") is None:
        raise NetnsError("netns_unavailable", "the `ip` command is missing: apt-get install -y iproute2")
    if os.geteuid() != 0:
        raise NetnsError("netns_unavailable", "network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")
    probe = f"{PREFIX}probe{os.getpid():x}"
    try:
        _ip("netns", "add", probe)
    except NetnsError as exc:
        raise NetnsError("netns_unavailable", f"cannot create a network namespace: {exc.message}") from None
    _ip("netns", "del", probe, check=False)


@dataclass(frozen=True, slots=True)
class Host:
    index: int
    namespace: str
    veth: str  # the switch side, in the root namespace
    address: str


@contextlib.contextmanager
def _subnet_lock() -> Iterator[None]:
    directory = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
    fd = os.open(os.path.join(directory, "ledger-hosts.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _free_subnet() -> str:
    used = set(re.findall(rf"inet {re.escape(SUBNET_BASE)}\.([0-9]+)\.", _ip("-o", "-4", "addr", "show")))
    for k in range(256):
        if str(k) not in used:
            return f"{SUBNET_BASE}.{k}"
    raise NetnsError("netns_no_subnet", f"every {SUBNET_BASE}.k.0/24 is in use on this machine")


@dataclass(slots=True)
class HostLan:
    name: str  # "lh<creator pid, 6 hex><k>" (or "lk...": kept), the stem of every name of this LAN
    subnet: str  # "10.77.k": the /24 of the hosts
    hosts: list[Host]

    @property
    def bridge(self) -> str:
        return f"{self.name}b"

    @property
    def kept(self) -> bool:
        return self.name.startswith(KEPT_PREFIX)

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.{BRIDGE_HOST}"

    @classmethod
    def create(cls, count: int, *, kept: bool = False) -> HostLan:
        """`count` hosts on a new bridge. `kept`: the LAN outlives this process while something runs in it (else
        it is stale once this process is gone: `remove_stale`). On any failure everything created so far is
        deleted again."""
        assert 1 <= count <= MAX_HOSTS
        require_netns()
        with _subnet_lock():
            present = lan_names()
            stems = (f"{KEPT_PREFIX if kept else PREFIX}{os.getpid():06x}{next(_runs) % 16:x}" for _ in range(16))
            name = next((n for n in stems if n not in present), None)
            if name is None:
                raise NetnsError("netns_failed", f"process {os.getpid()} already has 16 LANs: destroy some first")
            subnet = _free_subnet()
            lan = cls(name, subnet, [])
            try:
                _ip("link", "add", lan.bridge, "type", "bridge")
                _ip("addr", "add", f"{lan.gateway}/24", "dev", lan.bridge)
                _ip("link", "set", lan.bridge, "up")
                for i in range(count):
                    host = Host(i, f"{name}-{i}", f"{name}v{i}", f"{subnet}.{i + 1}")
                    _ip("netns", "add", host.namespace)
                    lan.hosts.append(host)
                    _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
                    _ip("link", "set", host.veth, "master", lan.bridge, "up")
                    _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
                    _ip("-n", host.namespace, "link", "set", "eth0", "up")
                    _ip("-n", host.namespace, "link", "set", "lo", "up")
            except BaseException:
                lan.destroy()
                raise
        return lan

    def exec_argv(self, i: int, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[i].namespace, *argv]

    def cut(self, i: int) -> None:
        """Pull host i's cable: its switch port goes down, so nothing reaches it and it reaches nothing."""
        _ip("link", "set", self.hosts[i].veth, "down")

    def heal(self, i: int) -> None:
        _ip("link", "set", self.hosts[i].veth, "up")

    def is_cut(self, i: int) -> bool:
        flags = re.search(r"<([^>]*)>", _ip("-o", "link", "show", self.hosts[i].veth))
        return flags is None or "UP" not in flags.group(1).split(",")

    def pids(self, i: int) -> list[int]:
        """Processes running in host i's namespace."""
        out = _ip("netns", "pids", self.hosts[i].namespace, check=False)
        return [int(p) for p in out.split() if p.isdigit()]

    def destroy(self) -> list[str]:
        """Kill every process in the hosts' namespaces, delete them (their veths go with them) and the bridge.
        Idempotent; returns what it could not delete."""
        left: list[str] = []
        namespaces = set(_ip("netns", "list", check=False).split())
        for host in self.hosts:
            if host.namespace not in namespaces:
                continue
            for _ in range(50):
                pids = self.pids(host.index)
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            _ip("netns", "del", host.namespace, check=False)
            if host.namespace in _ip("netns", "list", check=False).split():
                left.append(host.namespace)
        for host in self.hosts:
            _ip("link", "del", host.veth, check=False)
        _ip("link", "del", self.bridge, check=False)
        if _ip("link", "show", self.bridge, check=False).strip():
            left.append(self.bridge)
        return left

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subnet": self.subnet, "hosts": [h.address for h in self.hosts]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> HostLan:
        name = doc["name"]
        hosts = [Host(i, f"{name}-{i}", f"{name}v{i}", a) for i, a in enumerate(doc["hosts"])]
        return cls(name, doc["subnet"], hosts)


def lan_names() -> dict[str, set[str]]:
    """LAN name -> the namespaces and interfaces of that LAN present on this machine."""
    lans: dict[str, set[str]] = {}
    links = re.findall(r"^\d+: ([^:@]+)", _ip("-o", "link", "show"), re.MULTILINE)
    for name in _ip("netns", "list", check=False).split() + links:
        m = _NAME.fullmatch(name)
        if m is not None:
            lans.setdefault(m.group(1), set()).add(name)
    return lans


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete the LANs of earlier runs that are gone: those whose creating process has exited, except a kept LAN
    (`ledger hosts up`) in whose namespaces something still runs. Whatever still runs in a removed LAN (the nodes of
    a test that crashed) is killed. Returns the names of the LANs removed."""
    removed = []
    for name, names in sorted(lan_names().items()):
        if _alive(int(name[len(PREFIX) : len(PREFIX) + 6], 16)):
            continue
        namespaces = sorted(n for n in names if re.fullmatch(rf"{name}-[0-9]+", n))
        lan = HostLan(
            name, "", [Host(int(ns.rpartition("-")[2]), ns, f"{name}v{ns.rpartition('-')[2]}", "") for ns in namespaces]
        )
        if lan.kept and any(lan.pids(h.index) for h in lan.hosts):
            continue
        lan.destroy()
        for link in sorted(names - set(namespaces)):  # veths or a bridge whose namespaces are already gone
            _ip("link", "del", link, check=False)
        removed.append(name)
    return removed
