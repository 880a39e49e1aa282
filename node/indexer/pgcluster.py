"""A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` + `pg_ctl` from the system's PostgreSQL
(Debian: /usr/lib/postgresql/<major>/bin) in a temporary directory, listening on a free TCP port of 127.0.0.1 and
on a unix socket in that directory; trust authentication, no other user touches it.

initdb and postgres refuse to run as root: as root the cluster runs as the `postgres` system user (the Debian
package creates it), with the directory handed to it; as anyone else, as that user. `stop()` (or the context
manager) stops the server and deletes the directory."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

__all__ = ["PgCluster", "PgClusterError", "find_pg_bin"]


class PgClusterError(RuntimeError):
    pass


def find_pg_bin() -> Path:
    """The directory holding initdb and pg_ctl: $LEDGER_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else
    the PATH."""
    env = os.environ.get("LEDGER_PG_BIN")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PgClusterError("PostgreSQL server binaries not found (apt-get install postgresql, or set LEDGER_PG_BIN)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, *, user: str = "ledger", database: str = "ledger") -> None:
        self.bin = find_pg_bin()
        self.user = user
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PgClusterError("running as root needs the `postgres` system user to run the server") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.running = False

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self._as, *args], check=False, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise PgClusterError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        return proc

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.database}"

    def init(self) -> PgCluster:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        self.start()
        self._run(
            str(self.bin / "createdb"), "-h", str(self.root), "-p", str(self.port), "-U", self.user, self.database
        )
        return self

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=40"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (disconnect clients, clean shutdown) or `immediate` (like a crash: no shutdown
        checkpoint; the next start recovers from the WAL)."""
        if self.running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)
            self.running = False

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self._run(str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode
                == 0
            ):
                return
            time.sleep(0.1)
        raise PgClusterError("the server did not become ready")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.init()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()
