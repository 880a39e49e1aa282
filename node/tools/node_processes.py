"""Testnet nodes as processes: each node is `python -m node.cli node run --config DIR/node-<i>/config.toml` in a
session of its own, so it outlives the command that started it; output goes to DIR/node-<i>/node.log and the pid to
DIR/node-<i>/node.pid, which lets later commands find it. A pid is only trusted while /proc shows that process
running `node run` with this node's config (pids get reused), so a reused pid is never signalled.

    nodes = ProcessNodes(files)      files: the testnet's paths (config_path, pid_path, socket_path, log_path)
    nodes.start(i) -> pid            nodes.pid(i) -> pid | None
    nodes.stop(i, grace) / nodes.stop_all(indexes, grace)   SIGTERM, then SIGKILL after `grace` seconds
    nodes.kill(i)                    kill -9
    nodes.exit_code(i)               the exit status of a node process this object started and saw end

This is one of the two ways node.tools.testnet.Testnet runs its nodes; node.tools.in_process is the other.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Final, Protocol

# The source tree holding the `node` package that runs the nodes (this file is node/tools/node_processes.py).
ROOT: Final = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STOP_GRACE_S: Final = 10.0
POLL_S: Final = 0.05


class NodeFiles(Protocol):
    def config_path(self, i: int) -> str: ...
    def pid_path(self, i: int) -> str: ...
    def socket_path(self, i: int) -> str: ...
    def log_path(self, i: int) -> str: ...


def process_state(pid: int) -> str | None:
    """The one-letter state of a process from /proc (R, S, Z, ...), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def process_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (from /proc), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def process_peak_rss_mb(pid: int) -> float | None:
    """The peak resident memory of a process so far (VmHWM, from /proc), in MiB; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, IndexError, ValueError):
        return None
    return None


def descendant_pids(pid: int) -> list[int]:
    """The processes started by `pid` and by them, and so on (a node's verifier fork server and workers), from /proc;
    empty when it has none or is gone."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 1024:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as f:
                    children = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            found.extend(children)
            todo.extend(children)
    return found


def descendants_peak_rss_mb(pid: int) -> float | None:
    """The peak resident memory (VmHWM) of each of `pid`'s descendants, summed, in MiB (pages they share, such as a
    fork server's with its workers, count in each); None when `pid` has none."""
    peaks = [p for p in (process_peak_rss_mb(c) for c in descendant_pids(pid)) if p is not None]
    return round(sum(peaks), 1) if peaks else None


def _reap(pid: int) -> None:
    """Collect an exited child of this process (when it is one) so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _gone(pid: int) -> bool:
    state = process_state(pid)
    return state is None or state in ("Z", "X")


class ProcessNodes:
    """The node processes of one testnet directory."""

    def __init__(self, files: NodeFiles) -> None:
        self.files = files
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._exit_codes: dict[int, int] = {}

    def pid(self, i: int) -> int | None:
        """The pid of node i when it is running (verified against /proc), else None."""
        child = self._children.get(i)
        if child is not None and child.poll() is not None:
            self._exit_codes[i] = child.returncode
            del self._children[i]
            child = None
        try:
            with open(self.files.pid_path(i), encoding="ascii") as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        _reap(pid)
        if _gone(pid):
            return None
        cmd = process_cmdline(pid)
        if "run" not in cmd or self.files.config_path(i) not in cmd:
            # Right after the fork, a process this object started may still show this process's command line.
            if child is not None and child.pid == pid:
                return pid
            return None
        return pid

    def start(self, i: int) -> int:
        """Start node i in the background (no-op when it runs); returns its pid."""
        existing = self.pid(i)
        if existing is not None:
            return existing
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.files.socket_path(i))
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.files.log_path(i), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "node", "run", "--config", self.files.config_path(i)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )
        self._children[i] = proc
        self._exit_codes.pop(i, None)
        with open(self.files.pid_path(i), "w", encoding="ascii") as f:
            f.write(str(proc.pid))
        return proc.pid

    def _wait_exit(self, i: int, pid: int, timeout: float) -> bool:
        child = self._children.get(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child is not None:
                if child.poll() is not None:
                    self._exit_codes[i] = child.returncode
                    return True
            else:
                _reap(pid)
                if _gone(pid):
                    return True
            time.sleep(POLL_S)
        return False

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def kill(self, i: int) -> bool:
        """kill -9 node i; False when it was not running."""
        pid = self.pid(i)
        if pid is None:
            return False
        self._signal(pid, signal.SIGKILL)
        self._wait_exit(i, pid, STOP_GRACE_S)
        self._children.pop(i, None)
        return True

    def stop(self, i: int, grace: float = STOP_GRACE_S) -> str:
        """SIGTERM, then SIGKILL when the node has not exited within `grace` seconds.
        Returns 'stopped', 'killed' or 'not_running'."""
        return self.stop_all([i], grace)[i]

    def stop_all(self, nodes: Iterable[int], grace: float = STOP_GRACE_S) -> dict[int, str]:
        """SIGTERM to every node of `nodes` at once, then SIGKILL to those still running after `grace`."""
        pids = {i: self.pid(i) for i in nodes}
        for pid in pids.values():
            if pid is not None:
                self._signal(pid, signal.SIGTERM)
        result: dict[int, str] = {}
        deadline = time.monotonic() + grace
        for i, pid in pids.items():
            if pid is None:
                result[i] = "not_running"
                continue
            if self._wait_exit(i, pid, max(0.1, deadline - time.monotonic())):
                result[i] = "stopped"
            else:
                self._signal(pid, signal.SIGKILL)
                self._wait_exit(i, pid, grace)
                result[i] = "killed"
            self._children.pop(i, None)
        return result

    def kill_all(self, nodes: Iterable[int]) -> None:
        """SIGKILL every node process known (cleanup of last resort: tests' finalizers)."""
        for i in nodes:
            self.kill(i)
        for i, child in list(self._children.items()):
            if child.poll() is None:
                child.kill()
                child.wait(STOP_GRACE_S)
            del self._children[i]

    def exit_code(self, i: int) -> int | None:
        """The exit status of node i's last process that this object started and saw end (negative: the signal
        that ended it); None when unknown."""
        self.pid(i)
        return self._exit_codes.get(i)

    def close(self) -> None:
        """Forget the process handles (the processes keep running in their own sessions)."""
        self._children.clear()


def process_tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and of every live descendant (a node with its verifier workers, which
    the forkserver starts as its grandchildren), from /proc; None when `pid` is gone. A descendant that exited
    since the last call is no longer counted (callers compare two readings of long-lived processes)."""
    own = process_cpu_seconds(pid)
    if own is None:
        return None
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return own
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(name))
    total, todo, seen = own, list(children.get(pid, ())), {pid}
    while todo:
        child = todo.pop()
        if child in seen:
            continue
        seen.add(child)
        cpu = process_cpu_seconds(child)
        if cpu is not None:
            total += cpu
        todo.extend(children.get(child, ()))
    return total
