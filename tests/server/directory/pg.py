"""A throw-away PostgreSQL server for the SQL directory tests: initdb in a temporary folder,
postgres on 127.0.0.1 and a free port, trust authentication, stopped at the end.  As root, the
server runs as the ``postgres`` user (PostgreSQL refuses to run as root).  Set
FDBMAIL_TEST_POSTGRES_DSN to use an existing server instead."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.slapd import free_port

BIN_DIRS = [Path("/usr/local/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                                            reverse=True)]


def _binary(name: str) -> str | None:
    for d in BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def unavailable_reason() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install fdbmail[postgres])"
    if os.environ.get("FDBMAIL_TEST_POSTGRES_DSN"):
        return None
    if not (_binary("initdb") and _binary("postgres")):
        return "no PostgreSQL server binaries (initdb, postgres) and no FDBMAIL_TEST_POSTGRES_DSN"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


class Postgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fdbmail-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=fdbmail dbname=postgres"

    def start(self) -> None:
        data = self.root / "data"
        subprocess.run([*self._as, str(_binary("initdb")), "-D", str(data), "-U", "fdbmail",
                        "--auth=trust", "-E", "UTF8", "--no-locale"],
                       check=True, capture_output=True)
        self.log = open(self.root / "postgres.log", "wb")
        self.process = subprocess.Popen(
            [*self._as, str(_binary("postgres")), "-D", str(data), "-p", str(self.port),
             "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=self.log, stderr=subprocess.STDOUT)
        import psycopg
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "postgres.log").read_text())
            try:
                psycopg.connect(self.dsn, connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("postgres did not start")

    def stop(self) -> None:
        pid_file = self.root / "data" / "postmaster.pid"
        if self.process is not None and self.process.poll() is None:
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)   # fast shutdown
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, "log", None) is not None:
            self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
