"""A throwaway Debian server with a real systemd as PID 1, on this machine.

systemd boots inside a debootstrap root (cached between runs) under systemd-nspawn, with a
private network (loopback only): it can neither touch this machine's /tmp and services
nor clash with its ports. Commands go in with nsenter. Needs root.
"""

import contextlib
import fcntl
import hashlib
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import termios
import time
from pathlib import Path

from polling import wait_until

CACHE_DIR = Path(os.environ.get("REHEARSAL_CACHE", "/var/cache/realtime-django-rehearsal"))
SUITE = "bookworm"
# What a server has before the guide's step 1.
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "openssl", "ca-certificates", "procps"]
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 30


class MachineError(Exception):
    pass


def root_filesystem(install_packages):
    """A cached Debian root: debootstrap's minimal system with systemd, then the shell block
    ``install_packages`` (the guide's step 1) run in it, as on a new server, by apt itself
    (debootstrap's own resolver cannot pick providers of virtual packages). Made on first
    use, in a few minutes."""
    key = hashlib.sha256(" ".join([SUITE, *BASE_PACKAGES, install_packages]).encode())
    root = CACHE_DIR / f"{SUITE}-{key.hexdigest()[:12]}"
    if not (root / "usr/bin/systemctl").exists():
        partial = root.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE,
             str(partial), "http://deb.debian.org/debian"],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        # Installed, not started: the machine boots them later, with its own systemd.
        policy = partial / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        shutil.copy("/etc/resolv.conf", partial / "etc/resolv.conf")
        subprocess.run(
            ["chroot", str(partial), "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
             "DEBIAN_FRONTEND=noninteractive", "sh", "-ec", install_packages],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        policy.unlink()
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

    def __init__(self, directory, name, install_packages):
        self.install_packages = install_packages
        self.root = Path(directory) / "root"
        self.name = name
        self.log = Path(directory) / "boot.log"
        self.nspawn = None
        self.init_pid = None

    def create(self):
        source = root_filesystem(self.install_packages)
        subprocess.run(
            ["cp", "-a", "--reflink=auto", str(source), str(self.root)], check=True, timeout=300
        )
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

    def shell(self, command):
        """A new root login shell's command line for ``command`` inside the machine: a clean
        environment, and the shell stops at the first command that fails."""
        return [
            "nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p",
            "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root", "LANG=C.UTF-8", "TERM=xterm", "sh", "-ec", command,
        ]  # fmt: skip

    def run(self, command, check=True, timeout=300, user=None):
        """Run a shell command inside the machine, as root (or ``user``)."""
        if user:
            command = f"runuser -u {user} -- sh -c {_quote(command)}"
        result = subprocess.run(
            self.shell(command), capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise MachineError(
                f"`{command}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def converse(self, command, dialogue, timeout=120):
        """Run an interactive ``command`` on a terminal inside the machine, answering its
        prompts as a person would: ``dialogue`` is [(prompt regex, answer)], in order.
        Returns everything the terminal showed."""
        main, terminal = pty.openpty()
        process = subprocess.Popen(
            self.shell(command), stdin=terminal, stdout=terminal, stderr=terminal,
            start_new_session=True,
            # The terminal becomes the command's own, as a login's is (getpass opens it).
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )  # fmt: skip
        os.close(terminal)
        shown, asked_from, deadline = b"", 0, time.monotonic() + timeout
        try:
            for prompt, answer in [*dialogue, (None, None)]:
                while prompt is None or not re.search(prompt.encode(), shown[asked_from:]):
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([main], [], [], left)[0]:
                        raise MachineError(f"`{command}` did not ask {prompt!r}:\n{shown!r}")
                    try:
                        chunk = os.read(main, 4096)
                    except OSError:  # the command ended and closed its terminal
                        chunk = b""
                    if not chunk:
                        if prompt is None:
                            break
                        raise MachineError(f"`{command}` ended before {prompt!r}:\n{shown!r}")
                    shown += chunk
                if answer is not None:
                    asked_from = len(shown)  # the next prompt comes after this one
                    os.write(main, answer.encode() + b"\n")
            if process.wait(timeout=max(deadline - time.monotonic(), 1)) != 0:
                raise MachineError(f"`{command}` failed:\n{shown.decode(errors='replace')}")
        finally:
            os.close(main)
            if process.poll() is None:
                process.kill()
                process.wait()
        return shown.decode(errors="replace")

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
