"""Acceptance: a validator whose disk fills up while the network runs (docs/operations.md, "A failing disk").

Four `ledger node run` processes; node-3's data directory is a small tmpfs this test mounts itself (it runs as root;
where mounting is impossible the test fails and says so, it is never skipped). Once the network commits, the test
fills that filesystem and keeps submitting transactions. node-3 must stop at its first failed write: /health answers
503 with the failure's code, path and cause, /v1/status reports `mode: halted` and the same `fatal`, /metrics has
`ledger_fatal{code="storage_failed"} 1`, submissions are refused (503 NODE_HALTED), the log names the failure once
(no traceback, no retry loop), and the others keep committing. SIGTERM then ends it with exit code 4. With the space
freed, a restart recovers by the normal path: every block it had written is still there, it catches up, its state
roots agree with the others', no validator recorded equivocation evidence, and it commits new transactions again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.node.tools.cluster import Cluster

VICTIM = 3
TMPFS_SIZE = "16m"


def _mount_tmpfs(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", path],
                              check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"this test needs to mount a small tmpfs for a node's data directory (run it as root, or where "
                    f"`mount -t tmpfs` is allowed): {exc}")
    if done.returncode != 0:
        pytest.fail(f"this test needs to mount a small tmpfs for a node's data directory (run it as root, or where "
                    f"`mount -t tmpfs` is allowed): mount exited {done.returncode}: {done.stderr.strip()}")


def _unmount(path: str) -> None:
    if subprocess.run(["umount", path], check=False, capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", path], check=False, capture_output=True, timeout=30)


def _fill(directory: str) -> str:
    """Write a file until the filesystem is full; returns its path."""
    path = os.path.join(directory, "filler")
    chunk = b"\0" * (1 << 16)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    # Whatever the last buffered write left: the filesystem is full now.
    with open(path, "ab") as f, pytest.raises(OSError):
        f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    return path


def _http(c: Cluster, i: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(c.net.api_url(i) + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    text = raw.decode()
    return status, (json.loads(text) if text.startswith("{") else None), text


def test_a_full_disk_stops_the_node_visibly_and_a_restart_recovers(tmp_path) -> None:
    c = Cluster(str(tmp_path / "net"), 4)
    data = c.net.data_dir(VICTIM)
    _mount_tmpfs(data)
    try:
        c.start_all()
        others = [i for i in range(c.n) if i != VICTIM]
        c.wait_height(list(range(c.n)), 2, 60)
        assert _http(c, VICTIM, "GET", "/health")[0] == 200

        filler = _fill(data)
        written_before = c.height(VICTIM)
        k = 0

        def stopped() -> bool:
            nonlocal k
            c.request(others[0], {"op": "submit", "tx": c.transfer(k).hex()})
            k += 1
            return _http(c, VICTIM, "GET", "/health")[0] == 503

        c.wait(stopped, 60, f"node-{VICTIM} to report its full disk on /health")

        status, health, _ = _http(c, VICTIM, "GET", "/health")
        assert status == 503 and health["name"] == "API_UNAVAILABLE"
        fatal = health["details"]["fatal"]
        assert fatal["code"] == "storage_failed" and fatal["cause"] == "No space left on device"
        assert fatal["path"].startswith(data + os.sep), fatal
        _, st, _ = _http(c, VICTIM, "GET", "/v1/status")
        assert st["node"]["mode"] == "halted" and st["node"]["fatal"] == fatal
        assert 'ledger_fatal{code="storage_failed"} 1.0' in _http(c, VICTIM, "GET", "/metrics")[2]
        status, refused, _ = _http(c, VICTIM, "POST", "/v1/tx", {"tx": c.transfer(10_000).hex()})
        assert status == 503 and refused["name"] == "NODE_HALTED", refused
        stopped_at = st["height"]
        assert stopped_at >= written_before

        # The others keep committing; the stopped node stays where it was, still answering reads.
        c.wait_height(others, stopped_at + 3, 30)
        time.sleep(2)  # two of its former status intervals: nothing is retried
        assert c.height(VICTIM) == stopped_at
        with open(c.log_path(VICTIM), encoding="utf-8") as f:
            log = f.read()
        assert log.count("code=storage_failed") == 1, c.tail(VICTIM, 40)
        assert "Traceback" not in log and "replica_action_failed" not in log and "resync_failed" not in log

        roots = c.roots(VICTIM, 0, stopped_at)
        assert c.terminate(VICTIM) == 4

        os.remove(filler)  # the operator frees space and restarts the node
        c.start(VICTIM)
        c.wait(lambda: c.status(VICTIM) is not None, 30, f"node-{VICTIM} to restart")
        assert c.roots(VICTIM, 0, stopped_at) == roots  # every block it had written is still there
        target = max(c.height(i) for i in others)
        c.wait_height([VICTIM], target, 60)
        st = c.status(VICTIM)
        assert st is not None and st["fatal"] is None and st["mode"] in ("consensus", "syncing")
        ids = c.submit(VICTIM, 5)
        c.wait(lambda: all((s := c.status(i)) is not None and s["mempool"] == 0 for i in range(c.n)), 30,
               "the transactions submitted to the restarted node to commit")
        assert len(ids) == 5
        c.assert_same_roots(list(range(c.n)))
        assert all(c.status(i)["evidence"] == 0 for i in range(c.n))  # nobody signed twice
    finally:
        c.stop_all()
        _unmount(data)


def test_leveldb_can_lose_a_write_acknowledged_after_a_failed_one(tmp_path) -> None:
    """Why the node never writes again after a failed write (node/validator/storage_failure.py): LevelDB leaves the
    failed record torn in its log; a later write that succeeds once space is back is acknowledged, yet reopening the
    store drops it with the torn record's block. Retrying would acknowledge commits and safety states that a restart
    forgets."""
    import plyvel

    mount = str(tmp_path / "small")
    _mount_tmpfs(mount)
    try:
        db = plyvel.DB(os.path.join(mount, "db"), create_if_missing=True)
        db.put(b"before", b"1", sync=True)
        filler = _fill(mount)
        with pytest.raises(plyvel.IOError, match="No space left on device"):
            db.put(b"failed", b"x" * 100_000, sync=True)
        os.remove(filler)
        db.put(b"after", b"2", sync=True)  # acknowledged: synced without an error
        assert db.get(b"after") == b"2"
        db.close()
        db = plyvel.DB(os.path.join(mount, "db"))
        assert db.get(b"before") == b"1" and db.get(b"failed") is None
        assert db.get(b"after") is None  # lost at reopen
        db.close()
    finally:
        _unmount(mount)
