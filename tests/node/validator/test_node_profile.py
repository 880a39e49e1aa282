"""$LEDGER_NODE_CPROFILE: a node process profiles its event loop and records the CPU of every thread."""

from __future__ import annotations

import os
import pstats
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from node.cli.node import CPROFILE_ENV, thread_cpu_seconds

ROOT = Path(__file__).resolve().parents[3]


def test_thread_cpu_seconds_names_python_threads_and_counts_their_cpu() -> None:
    stop = threading.Event()

    def spin() -> None:
        deadline = time.thread_time() + 0.2
        while time.thread_time() < deadline:
            pass
        stop.wait()

    busy = threading.Thread(target=spin, name="busy-for-the-test")
    busy.start()
    try:
        while busy.native_id is None or thread_cpu_seconds().get(busy.native_id, ("", 0.0))[1] < 0.1:
            time.sleep(0.01)  # until the thread has used 0.1 s of CPU (the loop ends: it spins 0.2 s)
        seen = thread_cpu_seconds()
    finally:
        stop.set()
        busy.join()
    assert seen[busy.native_id][0] == "busy-for-the-test" and seen[busy.native_id][1] >= 0.1
    assert seen[threading.main_thread().native_id][0] == "MainThread"


def test_a_profiled_dev_node_writes_its_profile_and_threads_on_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), LEDGER_HOME=str(tmp_path / "home"))
    env[CPROFILE_ENV] = str(tmp_path / "prof")
    data = tmp_path / "dev"
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "node", "dev", "--data", str(data), "--users", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        socket = data / "node-0" / "data" / "admin.sock"
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing
        while not socket.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert socket.exists(), "the dev node did not start"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stats = pstats.Stats(str(tmp_path / "prof" / "node-0.prof"))
    assert any(name == "run_forever" for _, _, name in stats.stats)  # the event loop ran under the profiler
    lines = (tmp_path / "prof" / "node-0.threads").read_text(encoding="utf-8").splitlines()
    parsed = [re.fullmatch(r"\s*([\d.]+) s  (.+) \((\d+)\)", line) for line in lines]
    assert lines and all(parsed)
    cpu = {m.group(2): float(m.group(1)) for m in parsed if m is not None}
    assert cpu["MainThread"] > 0  # the event loop's thread, started the node and ran it
