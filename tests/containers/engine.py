"""A Docker Engine of the tests' own: dockerd started as root on a cached data root, and
stopped at the end (with everything it ran), leaving the host's network settings as found.

No systemd runs dockerd here, so the tests start it with its own data root (cached between
runs: the stand-in base images and the layers of earlier builds), exec root, socket and pid
file. Its firewall setup is off: it would set the FORWARD policy to DROP and turn on
bridge-nf-call-iptables, after which tests/multihost's network namespaces stop talking.
Nothing needs it: a compose project's containers reach each other over its own bridge, the
tests reach published ports on 127.0.0.1 through docker-proxy, and images are built on the
host's network (``docker build --network host``).

One engine at a time uses the cache: a second run waits for the lock.
"""

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from polling import wait_until

CACHE_DIR = Path(os.environ.get("CONTAINERS_CACHE", "/var/cache/realtime-django-containers"))
# Debian's CLI and Compose 1.29 (package docker.io, docker-compose), matching the engine.
# /usr/local/bin/docker on these machines is a newer CLI whose builder needs buildx.
DOCKER = "/usr/bin/docker"
COMPOSE = "/usr/bin/docker-compose"
DOCKERD = "/usr/sbin/dockerd"
START_TIMEOUT = 60
STOP_TIMEOUT = 60
# Another run (another checkout on this machine) may hold the engine for a whole suite.
LOCK_TIMEOUT = 3600
# The host settings dockerd would change with its firewall setup on; checked after the run.
HOST_SETTINGS = [
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
]


class EngineError(Exception):
    pass


def host_network_state():
    """The sysctls and iptables rules dockerd could change: {name: value}."""
    state = {path: Path(path).read_text().strip() for path in HOST_SETTINGS if Path(path).exists()}
    for table in ("filter", "nat"):
        result = subprocess.run(
            ["iptables", "-t", table, "-S"], capture_output=True, text=True, timeout=30
        )
        state[f"iptables -t {table}"] = result.stdout
    return state


class Engine:
    """dockerd on ``CACHE_DIR/docker``, its socket and state in ``run_dir`` (kept short:
    containerd's sockets live there and unix socket paths are limited to 107 bytes)."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.socket = self.run_dir / "docker.sock"
        self.pidfile = self.run_dir / "docker.pid"
        self.log = self.run_dir / "dockerd.log"
        self.env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.socket}",
            # The legacy builder works offline; BuildKit would fetch its frontend.
            "DOCKER_BUILDKIT": "0",
            "COMPOSE_DOCKER_CLI_BUILD": "0",
        }
        self.process = None
        self._lock = None
        self._host_state = None

    # -- start and stop ------------------------------------------------------------------

    def start(self):
        self._take_lock()
        try:
            self._host_state = host_network_state()
            with open(self.log, "wb") as log:
                self.process = subprocess.Popen(
                    [DOCKERD, "--data-root", str(CACHE_DIR / "docker"),
                     "--exec-root", str(self.run_dir / "exec"),
                     "-H", f"unix://{self.socket}", "--pidfile", str(self.pidfile),
                     "--iptables=false", "--ip-forward=false", "--bridge=none",
                     "--storage-driver=overlay2", "--log-level=warn"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            wait_until(self._answers, "dockerd to answer", START_TIMEOUT)
            self.remove_leftovers()
        except BaseException:
            self.stop()
            raise

    def _answers(self):
        if self.process.poll() is not None:
            raise EngineError(f"dockerd exited:\n{self.log.read_text()[-3000:]}")
        return (
            self.docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0
        )

    def _take_lock(self):
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        self._lock = open(CACHE_DIR / "engine.lock", "w")  # noqa: SIM115 - held until stop()

        def locked():
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        wait_until(locked, f"the lock on {CACHE_DIR} (another test run?)", LOCK_TIMEOUT, interval=1)

    def remove_leftovers(self):
        """Containers, networks and volumes a run that was killed may have left behind: on
        this engine everything is a test's, and only images are kept between runs."""
        if ids := self.docker("ps", "-aq").stdout.split():
            self.docker("rm", "-f", "-v", *ids, timeout=120)
        self.docker("network", "prune", "-f")
        self.docker("volume", "prune", "-f")

    def stop(self):
        """Stop every container, then dockerd (bounded), whatever state it is in; restore
        the host's settings if anything changed them, and say so."""
        try:
            if self.process and self.process.poll() is None:
                with contextlib.suppress(Exception):
                    self.remove_leftovers()
                    # Builds older than a week that newer ones untagged: the cache stays
                    # bounded; layers that current builds reuse (dependencies) are kept.
                    self.docker("image", "prune", "-f", "--filter", "until=168h", timeout=120)
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(STOP_TIMEOUT)
            self._kill_what_is_left()
            self._unmount_exec_root()
        finally:
            changed = self._restore_host()
            if self._lock:
                self._lock.close()  # releases the lock
            if changed:
                raise EngineError(f"dockerd changed the host's settings (restored): {changed}")

    def _kill_what_is_left(self):
        """containerd and its shims outlive dockerd if it was killed; they name our run dir."""
        marker = str(self.run_dir).encode()
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ProcessLookupError):
                if marker in (proc / "cmdline").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)

    def _unmount_exec_root(self):
        exec_root = str(self.run_dir / "exec")
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[1].startswith(exec_root)]
        for point in sorted(points, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
        shutil.rmtree(self.run_dir / "exec", ignore_errors=True)

    def _restore_host(self):
        if self._host_state is None:
            return {}
        now = host_network_state()
        changed = {k: (v, now.get(k)) for k, v in self._host_state.items() if now.get(k) != v}
        for path in HOST_SETTINGS:
            if path in changed:
                Path(path).write_text(self._host_state[path] + "\n")
        return changed

    # -- commands ------------------------------------------------------------------------

    def docker(self, *args, check=True, timeout=300, **kwargs):
        return self.run([DOCKER, *args], check=check, timeout=timeout, **kwargs)

    def run(self, command, check=True, timeout=300, env=None, cwd=None, input=None):
        """A docker or docker-compose command against this engine; its output on failure."""
        result = subprocess.run(
            command, env={**self.env, **(env or {})}, cwd=cwd, input=input,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise EngineError(
                f"`{' '.join(map(str, command))}` failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def inspect(self, *names):
        return json.loads(self.docker("inspect", *names).stdout)

    def image_exists(self, name):
        return self.docker("image", "inspect", name, check=False).returncode == 0


@contextlib.contextmanager
def running_engine():
    """An engine for the duration of the block, stopped however the block ends."""
    # Under /tmp with a short name: containerd's socket paths must stay under 107 bytes.
    run_dir = Path(tempfile.mkdtemp(prefix="dkr-", dir="/tmp"))
    engine = Engine(run_dir)
    try:
        engine.start()
        yield engine
    finally:
        try:
            engine.stop()
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
