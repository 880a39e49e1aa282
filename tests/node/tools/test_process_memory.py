"""node.tools.node_processes: a process's descendants and their peak memory, as `ledger bench` reports them."""

from __future__ import annotations

import os
import subprocess
import sys

from node.tools.node_processes import descendant_pids, descendants_peak_rss_mb, process_peak_rss_mb


def test_descendants_include_grandchildren_and_their_peaks() -> None:
    # A child that starts a grandchild and, once the grandchild runs Python (not still exec'ing: no peak yet),
    # prints its pid; then both wait for stdin to close.
    script = (
        "import subprocess, sys; "
        "g = subprocess.Popen([sys.executable, '-c', 'import sys; print(1, flush=True); sys.stdin.read()'], "
        "stdin=subprocess.PIPE, stdout=subprocess.PIPE); "
        "g.stdout.readline(); print(g.pid, flush=True); sys.stdin.read(); g.stdin.close(); g.wait()"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        found = descendant_pids(os.getpid())
        assert child.pid in found and grandchild in found
        assert descendant_pids(child.pid) == [grandchild]
        peaks = [process_peak_rss_mb(child.pid), process_peak_rss_mb(grandchild)]
        assert all(p is not None and p > 1 for p in peaks)
        total = descendants_peak_rss_mb(child.pid)
        assert total is not None and total >= peaks[1]  # type: ignore[operator]
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)
    assert descendants_peak_rss_mb(child.pid) is None  # gone
