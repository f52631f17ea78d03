"""`make up` and `make down` as a user runs them: the URL printed, nothing left behind."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from e2e.localstack import REPO_DIR, UP_TIMEOUT, LocalStack
from polling import wait_until


def make(target, stack):
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_DIR), target],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT,
    )


def stack_pids(data_dir):
    """Every live process started from this stack: its programs and their children."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (cmdline.parent / "environ").read_bytes()
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(data_dir) in text or f"DATA_DIR={data_dir}".encode() in environ):
            pids.add(int(cmdline.parent.name))
    return pids - {os.getpid()}


def port_open(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_make_up_prints_the_url_and_make_down_leaves_nothing(tmp_path, free_port):
    stack = LocalStack(tmp_path / "var", free_port)
    try:
        up = make("up", stack)
        assert up.returncode == 0, up.stdout + up.stderr
        steps = [s.split()[0] for s in re.findall(r"^==> (.*)$", up.stdout, re.MULTILINE)]
        # Every stage is announced, in order (a first run also announces .venv and .env).
        stages = ["Migrating", "Collecting", "Starting", "Waiting", "Checking", "The"]
        assert [s for s in steps if s in stages] == stages
        assert f"The stack is up: {stack.url}" in up.stdout
        running = stack_pids(stack.data_dir)
        # supervisord, redis, gunicorn (+ workers), daphne ×2, nginx (+ workers)
        assert len(running) >= 8, running
        assert make("status", stack).stdout.count("RUNNING") == 5
        assert {name: state for name, (state, _) in stack.programs().items()} == dict.fromkeys(
            ["daphne-1", "daphne-2", "gunicorn", "nginx", "redis"], "RUNNING"
        )
    finally:
        down = make("down", stack)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "nothing left running" in down.stdout
    assert stack_pids(stack.data_dir) == set()
    assert not list((stack.data_dir / "run").glob("*.sock"))
    assert not port_open(free_port)  # nothing listens on the port any more


def test_up_says_clearly_when_the_port_is_taken(tmp_path, free_port):
    stack = LocalStack(tmp_path / "var", free_port)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port))
        squatter.listen()
        result = stack.command("up")
    assert result.returncode == 1
    assert f"port {free_port}" in result.stderr and "PUBLIC_PORT" in result.stderr
    assert stack_pids(stack.data_dir) == set()


def test_up_again_right_after_down_on_the_same_port(tmp_path, free_port):
    """Connections nginx closed as it stopped linger in TIME_WAIT on the port for a minute;
    they must not make the next `make up` think the port is taken."""
    stack = LocalStack(tmp_path / "var", free_port)
    try:
        stack.up()
        with socket.create_connection(("127.0.0.1", free_port), timeout=10) as keep_alive:
            keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert keep_alive.recv(100).startswith(b"HTTP/1.1 200")
            stack.down()  # nginx closes the idle connection first: TIME_WAIT on its side
        stack.up()
    finally:
        stack.down()


def test_interrupting_up_stops_what_it_started(tmp_path, free_port):
    """Ctrl-C during `make up` leaves nothing half-running."""
    stack = LocalStack(tmp_path / "var", free_port)
    up = subprocess.Popen(
        [sys.executable, str(REPO_DIR / "deploy/local/stack.py"), "up"],
        env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )  # fmt: skip
    try:
        for line in up.stdout:
            if line.startswith("==> Starting"):
                wait_until(stack.programs, "supervisord to answer", UP_TIMEOUT, retry_on=OSError)
                up.send_signal(signal.SIGINT)
                break
        output = line + up.communicate(timeout=UP_TIMEOUT)[0]
        left_running = stack_pids(stack.data_dir)
        port_answers = port_open(free_port)
    finally:
        if up.poll() is None:
            up.kill()
        stack.down()
    assert up.returncode == 130 and "make up interrupted" in output, output
    assert left_running == set()
    # nginx's workers rename themselves over their environment, so stack_pids cannot see
    # them: a worker left behind shows as the port still answering.
    assert not port_answers


def test_make_help_lists_every_target():
    makefile = (REPO_DIR / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    listed = subprocess.run(["make", "-C", str(REPO_DIR), "help"], capture_output=True, text=True)
    assert targets <= set(re.findall(r"make (\S+)", listed.stdout))
