"""Fail the run if a process it started is still alive at the end, naming each one.

Tests start real servers (nginx, gunicorn, daphne, redis-server, supervisord, Chromium,
whole stacks in temporary clones). One that outlives the run keeps its port, and a later
run that draws the same port talks to a dead stack. So, after every test and fixture has
finished (failures and errors included), any process that

- carries this run's marker in its environment (everything the run started inherits it), or
- works in, or names on its command line, the checkout or this run's temporary directories,
  and is an orphan (its parent is gone) or descends from a process carrying the marker
  (nginx rewrites its processes' environment with their title, so the marker alone misses
  them; someone else's shell working in the checkout is neither),

and did not exist when the run began, fails the run. Each is named, then killed, so the
next run starts clean. The pytest process, its ancestors (make, the shell) and whatever
was running before the run (a developer's own `make up`) are left alone.
"""

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
MARKER = "TEST_RUN_ID"
# A stack stopped by the last test may take a moment to be reaped.
GRACE_SECONDS = 5

_run = {}


def pids():
    return {int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()}


def describe(pid):
    """(cwd, command line, environment) of a live process, or None if it is gone or a zombie."""
    proc = Path(f"/proc/{pid}")
    try:
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        environ = (proc / "environ").read_bytes()
        cwd = os.readlink(proc / "cwd")
    except OSError:
        return None
    return cwd, cmdline.strip(), environ


def parent(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def ancestors(pid):
    chain = []
    while (pid := parent(pid)) > 1:
        chain.append(pid)
    return chain


def carries(pid, marker):
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def leaked(places, marker):
    """{pid: description} of the processes this run left behind."""
    found = {}
    for pid in pids() - _run["before"] - {os.getpid(), *ancestors(os.getpid())}:
        if (described := describe(pid)) is None:
            continue
        cwd, cmdline, environ = described
        inside = any(cwd == place or cwd.startswith(place + "/") for place in places)
        named = any(place + "/" in cmdline or cmdline.endswith(place) for place in places)
        ours = marker in environ or (
            (inside or named)
            and (parent(pid) == 1 or any(carries(up, marker) for up in ancestors(pid)))
        )
        if ours:
            found[pid] = f"pid {pid} (cwd {cwd}): {cmdline[:200]}"
    return found


def pytest_configure(config):
    run_id = uuid.uuid4().hex
    os.environ[MARKER] = run_id
    _run.update(before=pids(), marker=f"{MARKER}={run_id}".encode())


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    places = [str(REPO_DIR), str(session.config._tmp_path_factory.getbasetemp())]
    deadline = time.monotonic() + GRACE_SECONDS
    while (left := leaked(places, _run["marker"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reporter.section("processes left running", sep="!", red=True)
    for line in left.values():
        reporter.write_line(line)
    reporter.write_line(f"{len(left)} process(es) outlived the run; killed now.")
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
