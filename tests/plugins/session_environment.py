"""The test session's environment, set up before Django reads its settings.

- app/ is importable;
- the developer's .env is ignored and runtime files go to a temporary DATA_DIR;
- a private redis-server (unix socket, nothing on disk) is the channel layer, so tests
  never touch a Redis someone else uses, and a machine without one running still works.

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


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    _session["environment"] = dict(os.environ)
    sys.path.insert(0, str(REPO_DIR / "app"))
    scratch = Path(tempfile.mkdtemp(prefix="tests-"))
    os.environ["DJANGO_ENV_FILE"] = ""
    os.environ["DATA_DIR"] = str(scratch / "var")
    redis_server = RedisServer(scratch)
    redis_server.start()
    os.environ["REDIS_URL"] = redis_server.url
    _session.update(scratch=scratch, redis=redis_server)
    return (yield)


def pytest_unconfigure(config):
    if "redis" in _session:
        _session["redis"].stop()
        shutil.rmtree(_session["scratch"], ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    """The session's private Redis (the channel layer of every in-process test)."""
    return _session["redis"]
