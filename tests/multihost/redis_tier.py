"""The layer tier: a Redis primary, a replica and three Sentinels, on hosts of their own.

They run copies of deploy/multihost/redis.conf and sentinel.conf, with the example
addresses, password and directory replaced by their own; failure detection is faster
than the example's (DOWN_AFTER_MS) so the test waits less.
"""

import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import redis
from polling import wait_until

REPO_DIR = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_DIR / "deploy" / "multihost"
EXAMPLE_PRIMARY, EXAMPLE_PASSWORD, EXAMPLE_DIR = "10.0.0.11", "CHANGE-ME", "/var/lib/redis"
MASTER_NAME = "chat"
REDIS_PORT, SENTINEL_PORT = 6379, 26379
DOWN_AFTER_MS = 1000
START_TIMEOUT = 30


def redis_server():
    path = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    if path is None:
        raise RuntimeError("redis-server is not installed; run `make test`, which installs it")
    return path


class RedisTier:
    def __init__(self, directory, primary, replica, sentinel_hosts):
        self.directory = Path(directory)
        self.primary, self.replica = primary, replica
        self.sentinel_hosts = sentinel_hosts
        self.password = secrets.token_hex(24)  # no leading "-": it goes on a command line
        self.processes = {}  # label → Popen

    # -- what the app hosts are told -------------------------------------------------------

    @property
    def settings(self):
        """The app hosts' environment for this tier (see .env.example)."""
        sentinels = ",".join(f"{host.address}:{SENTINEL_PORT}" for host in self.sentinel_hosts)
        return {
            "REDIS_SENTINELS": sentinels,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_PASSWORD": self.password,
        }

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, label, host, *args):
        """``args`` run on ``host``, in a directory of their own, with a log there."""
        directory = self.directory / label
        with (directory / "log").open("wb") as log:
            self.processes[label] = subprocess.Popen(
                host.command(*args), cwd=directory, stdout=log, stderr=subprocess.STDOUT
            )

    def _write_config(self, label, host, example, *lines):
        """The example config with this tier's primary, password and directory, and
        ``lines`` after it (later lines win). A copy, since Redis and Sentinel rewrite it."""
        directory = self.directory / label
        directory.mkdir(parents=True)
        text = (CONFIG_DIR / example).read_text()
        for old, new in {
            EXAMPLE_PRIMARY: self.primary.address,
            EXAMPLE_PASSWORD: self.password,
            EXAMPLE_DIR: str(directory),
        }.items():
            text = text.replace(old, new)
        config = directory / example
        config.write_text(text + "".join(f"{line}\n" for line in (f"bind {host.address}", *lines)))
        return config

    def _start_redis(self, label, host, *lines):
        config = self._write_config(label, host, "redis.conf", *lines)
        self._spawn(label, host, redis_server(), config)

    def _start_sentinel(self, label, host):
        down_after = f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}"
        config = self._write_config(label, host, "sentinel.conf", down_after)
        self._spawn(label, host, redis_server(), config, "--sentinel")

    def start(self):
        self._start_redis("primary", self.primary)
        self._start_redis("replica", self.replica, f"replicaof {self.primary.address} {REDIS_PORT}")
        for n, host in enumerate(self.sentinel_hosts, 1):
            self._start_sentinel(f"sentinel-{n}", host)
        self.wait_ready()

    def client(self, host):
        return redis.Redis(
            host.address, REDIS_PORT, password=self.password, socket_timeout=1,
            socket_connect_timeout=1,
        )  # fmt: skip

    def sentinel_client(self, host):
        return redis.Redis(
            host.address, SENTINEL_PORT, socket_timeout=1, socket_connect_timeout=1,
            decode_responses=True,
        )  # fmt: skip

    def wait_ready(self):
        """Replica in sync, and every Sentinel knows the replica and both other Sentinels
        (without that, a failover could not be agreed on)."""

        def in_sync():
            info = self.client(self.replica).info("replication")
            return info["role"] == "slave" and info["master_link_status"] == "up"

        wait_until(in_sync, "the replica to sync", START_TIMEOUT, retry_on=redis.RedisError)
        others = len(self.sentinel_hosts) - 1
        for host in self.sentinel_hosts:

            def knows_everyone(host=host):
                master = self.sentinel_client(host).sentinel_master(MASTER_NAME)
                return master["num-other-sentinels"] == others and master["num-slaves"] == 1

            what = f"the Sentinel on {host.name}"
            wait_until(knows_everyone, what, START_TIMEOUT, retry_on=redis.RedisError)

    def current_primary(self):
        """The primary's address as every Sentinel reports it (None while they disagree)."""
        answers = {
            self.sentinel_client(host).sentinel_get_master_addr_by_name(MASTER_NAME)[0]
            for host in self.sentinel_hosts
        }
        return answers.pop() if len(answers) == 1 else None

    def kill_primary(self):
        self.processes["primary"].send_signal(signal.SIGKILL)
        self.processes["primary"].wait(timeout=10)

    def wait_promoted(self, timeout):
        """Until the Sentinels name the replica as primary and it says it is one."""

        def promoted():
            return (
                self.current_primary() == self.replica.address
                and self.client(self.replica).info("replication")["role"] == "master"
            )

        wait_until(
            promoted, "the replica's promotion", timeout, retry_on=redis.RedisError, interval=0.05
        )

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
