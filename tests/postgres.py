"""A private PostgreSQL server for the tests: production's database, on any machine.

The tests never use a PostgreSQL server someone else runs (one may not exist, and its data
is not ours): like the session's redis-server, this is a cluster of our own, made with
``initdb`` in a scratch directory and reached over a unix socket only (no port to clash
with), with durability off (the data dies with the run). PostgreSQL refuses to run as root,
so as root it runs as the ``postgres`` user that Debian's package creates.
"""

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

try:
    from polling import wait_until
except ImportError:  # the session plugin imports this module before tests/ is on sys.path
    from tests.polling import wait_until

START_TIMEOUT = 60
SUPERUSER = "postgres"


class PostgresError(Exception):
    pass


def binaries():
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        raise PostgresError(
            "PostgreSQL is not installed; run `make test`, which installs it (package postgresql)"
        )
    return Path(found[-1]).parent


def _version(path):
    return int(Path(path).parts[-3])


class PostgresServer:
    """``start()`` a cluster, ``create_database(name)`` a database in it, ``stop()``.

    ``address``: also listen on that TCP address (port 5432) with password authentication,
    as a database host does (the multi-host rehearsal's); ``host_command`` prefixes the
    server's command, e.g. ``ip netns exec NAME`` to run it on such a host.
    """

    def __init__(self, address=None, host_command=()):
        self.directory = Path(tempfile.mkdtemp(prefix="tests-postgres-"))
        self.data = self.directory / "data"
        self.address = address
        self.host_command = list(host_command)
        self.process = None
        self.as_owner = []
        if os.geteuid() == 0:
            self.as_owner = ["runuser", "-u", SUPERUSER, "--"]
            owner = pwd.getpwnam(SUPERUSER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self.bin = binaries()

    def _command(self, name, *args):
        return [*self.as_owner, str(self.bin / name), *map(str, args)]

    def _run(self, name, *args):
        result = subprocess.run(
            self._command(name, *args), cwd=self.directory,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"{name} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def start(self):
        if not self.data.exists():
            self._initdb()
        listen = []
        if self.address:
            listen = ["-c", f"listen_addresses={self.address}", "-p", "5432"]
        with open(self.directory / "server.log", "wb") as log:
            self.process = subprocess.Popen(
                [*self.host_command, *self._command(
                    "postgres", "-D", self.data, "-k", self.directory,
                    "-c", "listen_addresses=", *listen,
                    "-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off", "-c", "max_connections=300",
                )],
                cwd=self.directory, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        try:
            wait_until(self._ready, f"PostgreSQL in {self.directory}", START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self):
        self._run("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")  # fmt: skip
        if self.address:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all 0.0.0.0/0 scram-sha-256\n")

    def _ready(self):
        if self.process.poll() is not None:
            log = (self.directory / "server.log").read_text(errors="replace")
            raise PostgresError(f"postgres exited:\n{log[-2000:]}")
        return (
            subprocess.run(
                self._command("pg_isready", "-h", self.directory, "-U", SUPERUSER, "-q"),
                timeout=10,
            ).returncode
            == 0
        )

    def url(self, database):
        """A DATABASE_URL for ``database`` on this server, over its unix socket."""
        return f"postgres://{SUPERUSER}@/{database}?host={quote(str(self.directory))}"

    def psql(self, database, sql):
        return self._run("psql", "-h", self.directory, "-U", SUPERUSER, "-d", database,
                         "-v", "ON_ERROR_STOP=1", "-At", "-c", sql)  # fmt: skip

    def create_database(self, name):
        self._run("createdb", "-h", self.directory, "-U", SUPERUSER, name)
        return self.url(name)

    def create_app_database(self, name):
        """A role and a database, both ``name``, with a password: the DATABASE_URL an app
        host uses over the network (needs ``address``)."""
        password = secrets.token_hex(16)
        self.psql("postgres", f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        self._run("createdb", "-h", self.directory, "-U", SUPERUSER, "--owner", name, name)
        return f"postgres://{name}:{password}@{self.address}:5432/{name}"

    def restart(self):
        """Stop the server (fast shutdown: clients are cut off) and start it again on the
        same data, as a PostgreSQL restart on a server does."""
        self._stop_server()
        self.start()

    def stop(self):
        self._stop_server()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _stop_server(self):
        if self.process and self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown; TERM ("smart") would wait for clients.
            # Sent to the server itself: a wrapper (runuser, ip netns exec) may not pass it on.
            for pid in [self.process.pid, *_postmaster(self.data)]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _postmaster(data):
    """The server's pid, from its pid file (absent once it has stopped)."""
    try:
        return [int((data / "postmaster.pid").read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []
