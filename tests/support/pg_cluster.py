"""A throwaway PostgreSQL cluster that a test may stop, restart and drop.

The fault tests restart PostgreSQL under load. They must never do that to the
machine's shared cluster (5432: the rest of the suite, other runs), so they
get their own: Debian's ``postgresql-common`` (``pg_createcluster`` /
``pg_ctlcluster`` / ``pg_dropcluster``) makes one in about a second, on a free
port, with trust authentication on loopback. It is dropped at the end, even
when the test fails; a cluster left behind by a run that was killed (its
name carries the pid of the process that made it, which is gone) is dropped
by the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PREFIX = "faults_"
ORPHAN = re.compile(rf"^{PREFIX}(\d+)_[0-9a-f]+$")
TOOLS = ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "pg_lsclusters")


class ClusterError(RuntimeError):
    """A cluster command failed; the message carries its output."""


def _run(*command: str, timeout: float = 60) -> str:
    # --skip-systemctl-redirect: act on the cluster directly, as .ci/run does (no systemd in containers).
    if command[0] == "pg_ctlcluster":
        command = (command[0], "--skip-systemctl-redirect", *command[1:])
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ClusterError(f"{' '.join(command)} exited {done.returncode}: {done.stdout}{done.stderr}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _newest_version() -> str:
    versions = [p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    if not versions:
        raise ClusterError("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
    return max(versions, key=lambda v: [int(part) for part in v.split(".")])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def drop_orphans() -> list[str]:
    """Drop the throwaway clusters whose creating process is gone; returns their names."""
    dropped = []
    for line in _run("pg_lsclusters", "--no-header").splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        version, name = fields[0], fields[1]
        match = ORPHAN.match(name)
        if match and not _alive(int(match.group(1))):
            _run("pg_dropcluster", "--stop", version, name)
            dropped.append(name)
    return dropped


class ThrowawayCluster:
    """One cluster of this machine's newest PostgreSQL, on its own port."""

    def __init__(self) -> None:
        self.version = _newest_version()
        self.name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        self.port = _free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> None:
        _run("pg_createcluster", "--quiet", "--start-conf=manual", self.version, self.name, "-p", str(self.port),
             "-o", "shared_buffers=16MB",
             "--", "--auth=trust", "--no-sync")

    def start(self) -> None:
        _run("pg_ctlcluster", self.version, self.name, "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connections are told the server is shutting down; ``immediate``: a crash, WAL recovery next."""
        _run("pg_ctlcluster", self.version, self.name, "stop", "-m", mode)

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0:
                return
            time.sleep(0.1)
        raise ClusterError(f"cluster {self.name} not ready after {seconds:.0f} s")

    def psql(self, sql: str, database: str = "postgres") -> str:
        return _run("psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                    "-d", database, "-c", sql)

    def drop(self) -> None:
        _run("pg_dropcluster", "--stop", self.version, self.name)


def missing_tools() -> list[str]:
    return [tool for tool in (*TOOLS, "pg_isready", "psql") if shutil.which(tool) is None]


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A started cluster, dropped afterwards whatever happens.

    Raises:
        ClusterError: postgresql-common is not installed, or a command failed.
    """
    missing = missing_tools()
    if missing:
        raise ClusterError(f"the fault tests need Debian's postgresql-common and a PostgreSQL server "
                           f"(apt-get install postgresql); missing: {', '.join(missing)}")
    drop_orphans()
    cluster = ThrowawayCluster()
    try:
        cluster.create()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(ClusterError):  # never created: nothing to drop
            cluster.drop()
