"""The smoke script users run against their deployments, run here against the real stack."""

import subprocess
import sys

from e2e.localstack import REPO_DIR

SMOKE = str(REPO_DIR / "deploy" / "smoke.py")
CHECKS = ["healthz", "echo"]  # what the smoke test checks on any deployment of the kit
# demo: begin
CHECKS += ["chat", "push", "ticket"]  # and through the demo apps
# demo: end


def run_smoke(*args):
    return subprocess.run(
        [sys.executable, SMOKE, *args], capture_output=True, text=True, timeout=120
    )


def test_smoke_passes_every_check(stack):
    result = run_smoke(stack.url, "--token", stack.issue_token("smoke-e2e"))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("PASS ")] == CHECKS


# demo: begin
def test_smoke_fails_clearly_with_a_bad_token(stack):
    result = run_smoke(stack.url, "--token", "0123456789ab.not-a-token", "--timeout", "3")
    assert result.returncode == 1
    failed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert failed == ["push", "ticket"]


# demo: end


def test_smoke_fails_clearly_when_nothing_listens(free_port):
    result = run_smoke(f"http://127.0.0.1:{free_port}", "--timeout", "2")
    assert result.returncode == 1
    failed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert failed == CHECKS[:3]  # without a token: healthz, echo (and the demo's chat)
