"""A private PostgreSQL cluster, as the test session starts a private redis-server: initdb
in a temporary directory, a unix socket there and no TCP port, nothing shared with a
PostgreSQL the machine may run, removed when stopped.

PostgreSQL refuses to run as root; as root, the cluster runs as the `postgres` user (the
Debian package creates it, and `make test` installs the package).
"""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DATABASE = "realtime"
TIMEOUT = 60


def program(name):
    """A PostgreSQL server program: on PATH, or where Debian keeps it."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(f"{name} is not installed; run `make test`, which installs postgresql")
    return found


class PostgresCluster:
    def __init__(self):
        self.directory = None
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self):
        """DATABASE_URL for Django: the superuser over the cluster's unix socket."""
        return f"postgres://postgres@/{DATABASE}?host={self.directory}"

    def run(self, *command):
        subprocess.run(
            [*self.as_postgres, *command], check=True, capture_output=True, timeout=TIMEOUT
        )

    def start(self):
        # Not under pytest's temporary directory: its parents are private to our user.
        self.directory = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
        if self.as_postgres:
            shutil.chown(self.directory, "postgres")
        data = self.directory / "data"
        try:
            self.run(program("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
            options = f"-c listen_addresses='' -k {self.directory} -c fsync=off"
            # -l: the server's output goes to a file, not to our pipes (which would keep
            # pg_ctl's caller waiting for them to close).
            log = self.directory / "postgres.log"
            self.run(program("pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")
            self.run(program("createdb"), "-h", self.directory, "-U", "postgres", DATABASE)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.directory is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            self.run(program("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
