"""A throwaway Debian server with a real systemd as PID 1, on this machine.

systemd boots inside a debootstrap root (cached between runs) under systemd-nspawn, with a
private network (loopback only): it can neither touch this machine's /tmp and services
nor clash with its ports. Commands go in with nsenter. Needs root.
"""

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from polling import wait_until

CACHE_DIR = Path(os.environ.get("REHEARSAL_CACHE", "/var/cache/realtime-django-rehearsal"))
SUITE = "bookworm"
# What `apt-get install` gets on a real server (deploy/README.md, step 1), plus the base.
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "nginx", "python3", "python3-venv", "redis-server",
    "postgresql", "ssl-cert", "openssl", "ca-certificates", "procps",
]  # fmt: skip
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 30


class MachineError(Exception):
    pass


def root_filesystem():
    """The cached debootstrap root for PACKAGES, made on first use (about 2 minutes)."""
    key = hashlib.sha256(" ".join([SUITE, *PACKAGES]).encode()).hexdigest()[:12]
    root = CACHE_DIR / f"{SUITE}-{key}"
    if not (root / "usr/bin/systemctl").exists():
        partial = root.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
             str(partial), "http://deb.debian.org/debian"],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        partial.rename(root)
    return root


def pip_wheelhouse(requirements):
    """Wheels for ``requirements``, cached: the server's venv installs from them, since the
    container has no network (a real server runs plain `pip install -r`)."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    wheels = CACHE_DIR / f"wheels-{key}"
    if not wheels.is_dir():
        partial = wheels.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        # Markers are judged by this machine's Python, not the server's older one: fetch
        # what they guard anyway (the server's pip picks what applies there).
        guarded = [
            line.partition(";")[0].strip()
            for line in requirements.read_text().splitlines()
            if ";" in line and not line.startswith("#")
        ]
        subprocess.run(
            ["python3", "-m", "pip", "download", "--quiet", "--only-binary=:all:",
             "-r", str(requirements), *guarded, "-d", str(partial)],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        partial.rename(wheels)
    return wheels


class Machine:
    """A copy of the cached root, booted with systemd-nspawn."""

    def __init__(self, directory, name):
        self.root = Path(directory) / "root"
        self.name = name
        self.log = Path(directory) / "boot.log"
        self.nspawn = None
        self.init_pid = None

    def create(self):
        subprocess.run(
            ["cp", "-a", "--reflink=auto", str(root_filesystem()), str(self.root)],
            check=True, timeout=300,
        )  # fmt: skip
        # debootstrap ran on this machine's network: where this machine's own PostgreSQL
        # holds 5432, Debian gave the new cluster 5433. A real server has it on 5432.
        for conf in self.root.glob("etc/postgresql/*/main/postgresql.conf"):
            conf.write_text(re.sub(r"(?m)^port = \d+", "port = 5432", conf.read_text()))

    def boot(self):
        with open(self.log, "wb") as log:
            self.nspawn = subprocess.Popen(
                ["systemd-nspawn", "--quiet", "--boot", "--directory", str(self.root),
                 "--private-network", "--register=no", "--keep-unit", "--machine", self.name],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.init_pid = wait_until(self._find_init, "systemd to start", BOOT_TIMEOUT)
        # Until systemd's own socket exists, systemctl says "offline" (or nothing); then
        # --wait waits out the boot.
        state = wait_until(self._boot_state, "the boot to finish", BOOT_TIMEOUT)
        if state not in ("running", "degraded"):
            raise MachineError(f"boot ended in {state!r}; see {self.log}")

    def _boot_state(self):
        state = self.run("systemctl is-system-running --wait", check=False).stdout.strip()
        return None if state in ("", "offline", "initializing", "starting") else state

    def _find_init(self):
        if self.nspawn.poll() is not None:
            raise MachineError(f"systemd-nspawn exited; see {self.log}")
        children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
        for pid in children.read_text().split():
            if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                return int(pid)
        return None

    def run(self, command, check=True, timeout=300, user=None):
        """Run a shell command inside the machine, as root (or ``user``)."""
        if user:
            command = f"runuser -u {user} -- sh -c {_quote(command)}"
        result = subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p",
             "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
             "sh", "-c", command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise MachineError(
                f"`{command}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def stop(self):
        """Power off (bounded), then make sure nothing of the machine is left running."""
        if self.nspawn and self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)  # nspawn asks systemd to power off
            try:
                self.nspawn.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.nspawn.pid, signal.SIGKILL)
                self.nspawn.wait(STOP_TIMEOUT)
        if self.init_pid:
            with contextlib.suppress(ProcessLookupError):  # PID 1 takes everything with it
                os.kill(self.init_pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"
