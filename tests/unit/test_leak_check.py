"""The suite's leak check (tests/plugins/leak_check.py), on a run that leaks on purpose."""

import os
import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]

LEAKY_TEST = """
import subprocess, pathlib
def test_starts_a_server_and_forgets_it(tmp_path):
    child = subprocess.Popen(["sleep", "600"])
    pathlib.Path({pid_file!r}).write_text(str(child.pid))
"""


def test_a_process_left_running_fails_the_run_is_named_and_killed(tmp_path):
    pid_file = tmp_path / "leaked.pid"
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST.format(pid_file=str(pid_file)))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.plugins.leak_check", "-p", "no:django",
         "-p", "no:cacheprovider", "-q", "test_leaky.py"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO_DIR)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    pid = int(pid_file.read_text())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout  # the test itself passed: the leak alone fails the run
    assert f"pid {pid} " in result.stdout and "sleep 600" in result.stdout
    state = Path(f"/proc/{pid}/stat")
    assert not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] == "Z"
