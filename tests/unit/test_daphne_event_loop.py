"""run_daphne.py runs daphne on uvloop by default, and on the stock loop when asked.

The end-to-end tests run the whole stack on the default (uvloop); these check that the
switch works both ways, by the loop daphne actually got (run_daphne.py prints it).
"""

import os
import subprocess
import sys

import pytest
from e2e.localstack import REPO_DIR


def event_loop_of_daphne(tmp_path, **environment):
    env = {**os.environ, "DATA_DIR": str(tmp_path), **environment}
    daphne = subprocess.Popen(
        [sys.executable, str(REPO_DIR / "deploy" / "run_daphne.py"),
         "--bind", f"unix:{tmp_path / 'daphne.sock'}"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first_line = daphne.stderr.readline()  # printed before daphne starts serving
    finally:
        daphne.terminate()
        try:
            daphne.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daphne.kill()
            daphne.wait()
        daphne.stderr.close()
    assert first_line.startswith("run_daphne: "), first_line
    return first_line.rsplit("event loop: ", 1)[1].strip()


@pytest.mark.parametrize(("setting", "loop"), [("", "uvloop"), ("asyncio", "asyncio")])
def test_daphne_event_loop_follows_the_setting(tmp_path, setting, loop):
    assert event_loop_of_daphne(tmp_path, DAPHNE_EVENT_LOOP=setting) == loop
