"""run_daphne.py runs daphne on uvloop by default, and on the stock loop when asked.

The end-to-end tests run the whole stack on the default (uvloop); these check that the
switch works both ways, by the loop daphne actually got (run_daphne.py logs it).
"""

import os
import select
import subprocess
import sys
import time

import pytest
from e2e.localstack import REPO_DIR


def event_loop_of_daphne(tmp_path, **environment):
    env = {**os.environ, "DATA_DIR": str(tmp_path), **environment}
    daphne = subprocess.Popen(
        [sys.executable, str(REPO_DIR / "deploy" / "run_daphne.py"),
         "--bind", f"unix:{tmp_path / 'daphne.sock'}"],
        env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        line = started_line(daphne.stderr)  # logged once daphne serves
    finally:
        daphne.terminate()
        try:
            daphne.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daphne.kill()
            daphne.wait()
        daphne.stderr.close()
    return line.rsplit("event loop: ", 1)[1].strip()


def started_line(stream, timeout=60):
    """The line run_daphne logs once it serves; AssertionError if it exits or is silent."""
    deadline, output = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        if not select.select([stream], [], [], deadline - time.monotonic())[0]:
            break
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:  # exited
            break
        output += chunk
        for line in output.decode(errors="replace").splitlines():
            if "run_daphne: " in line and "event loop: " in line:
                return line
    raise AssertionError(f"run_daphne never said which event loop it runs: {output!r}")


@pytest.mark.parametrize(("setting", "loop"), [("", "uvloop"), ("asyncio", "asyncio")])
def test_daphne_event_loop_follows_the_setting(tmp_path, setting, loop):
    assert event_loop_of_daphne(tmp_path, DAPHNE_EVENT_LOOP=setting) == loop
