"""The test session's environment, set up before Django reads its settings.

- app/ is importable;
- the developer's .env is ignored and runtime files go to a temporary DATA_DIR;
- a private redis-server (unix socket, nothing on disk) is the channel layer, so tests
  never touch a Redis someone else uses, and a machine without one running still works;
- the database is SQLite, or with ``--database postgres`` a private PostgreSQL server
  (tests/postgres.py): `make test` runs the database tests on both.

pytest-django loads the settings in its own pytest_load_initial_conftests hook, so this
plugin (loaded with -p, see pytest.ini) wraps that hook to run first.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 10


class RedisServer:
    """A redis-server process of our own on a unix socket."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.socket = self.directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process = None

    def start(self):
        binary = shutil.which("redis-server") or shutil.which(
            "redis-server", path="/usr/sbin:/usr/bin"
        )
        if binary is None:
            raise pytest.UsageError(
                "redis-server is not installed; run `make test`, which installs it"
            )
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.wait_ready()

    def wait_ready(self):
        import redis

        from tests.polling import wait_until  # loaded before tests/ is on sys.path

        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)

        def answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; it did not start on {self.socket}")
            return client.ping()

        try:
            wait_until(answers, f"redis-server on {self.socket}", START_TIMEOUT,
                       retry_on=redis.ConnectionError, interval=0.05)  # fmt: skip
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_session = {}
# What `make` adds to its recipes' environment; a user's shell has none of it.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def users_environment():
    """The environment the run started with, as a user's shell has it: before this plugin
    pointed Django at a scratch directory and Redis, and without make's own variables.
    For tests that run the documented commands exactly as a user would."""
    return {k: v for k, v in _session["environment"].items() if k not in MAKE_VARIABLES}


def pytest_addoption(parser):
    parser.addoption(
        "--database", choices=("sqlite", "postgres"), default="sqlite",
        help="the Django tests' database: SQLite (default) or a private PostgreSQL server",
    )  # fmt: skip


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    _session["environment"] = dict(os.environ)
    sys.path.insert(0, str(REPO_DIR / "app"))
    scratch = Path(tempfile.mkdtemp(prefix="tests-"))
    os.environ["DJANGO_ENV_FILE"] = ""
    os.environ["DATA_DIR"] = str(scratch / "var")
    _session["scratch"] = scratch
    redis_server = _session["redis"] = RedisServer(scratch)
    redis_server.start()
    os.environ["REDIS_URL"] = redis_server.url
    if early_config.known_args_namespace.database == "postgres":
        # pytest-django creates its test database ("test_tests") next to this one.
        os.environ["DATABASE_URL"] = start_postgres().url("tests")
    else:
        os.environ.pop("DATABASE_URL", None)
    return (yield)


def start_postgres():
    """The session's private PostgreSQL server, started on first use."""
    if "postgres" not in _session:
        from tests.postgres import PostgresServer

        _session["postgres"] = PostgresServer().start()
    return _session["postgres"]


def pytest_sessionfinish():
    """Stop the session's servers once every test and fixture is done (before the leak
    check, which would count a server started during the run)."""
    for server in ("postgres", "redis"):
        if server in _session:
            _session.pop(server).stop()
    if "scratch" in _session:
        shutil.rmtree(_session.pop("scratch"), ignore_errors=True)


pytest_unconfigure = pytest_sessionfinish  # a run that never got to the session (usage error)


@pytest.fixture(scope="session")
def redis_server():
    """The session's private Redis (the channel layer of every in-process test)."""
    return _session["redis"]


@pytest.fixture(scope="session")
def postgres_server():
    """The session's private PostgreSQL server, whatever the Django tests' database: for
    tests of PostgreSQL itself (query plans) and stacks that run on it."""
    return start_postgres()
