"""`make strip-demo` on a fresh copy: the kit alone starts, passes its smoke test and its
own tests, and nothing of the demo is left in the code.

The copy's remaining unit, integration, end-to-end and deployment-kit tests run here (the
container tests and the systemd rehearsal of the stripped copy are left out: minutes each,
and what they check of the kit is what the copy's smoke test checks)."""

import re
import subprocess

import pytest
from deploykit.kit import copy_checkout
from e2e.localstack import free_port

from tests.plugins.session_environment import users_environment

DEMO_APPS = ("chat", "notifications", "web")


@pytest.fixture(scope="module")
def stripped(tmp_path_factory):
    copy = copy_checkout(tmp_path_factory.mktemp("strip") / "kit")
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)  # a clone, as users have
    environment = {**users_environment(), "PUBLIC_PORT": str(free_port())}
    run = make(copy, environment)
    result = run("strip-demo", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield copy, run
    finally:
        run("down")


def make(copy, environment):
    def run(*args, timeout=300):
        return subprocess.run(
            ["make", "--no-print-directory", *args], cwd=copy, env=environment,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    return run


def test_nothing_of_the_demo_is_left_in_the_code(stripped):
    copy, _ = stripped
    assert not [app for app in DEMO_APPS if (copy / "app" / app).exists()]
    leftovers = [
        f"{path.relative_to(copy)}: {line.strip()}"
        for path in [*copy.glob("app/**/*.py"), *copy.glob("deploy/**/*.py")]
        for line in path.read_text().splitlines()
        if re.search(rf"\b(from|import) ({'|'.join(DEMO_APPS)})\b|demo: (begin|end)", line)
    ]
    assert leftovers == []


def test_the_kit_starts_and_passes_its_smoke_test(stripped):
    _, run = stripped
    up = run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    smoke = run("smoke")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert re.findall(r"^PASS\s+(\w+)", smoke.stdout, re.M) == ["healthz", "echo"]
    down = run("down")
    assert "nothing left running" in down.stdout


def test_the_kits_own_tests_pass_and_lint_is_clean(stripped):
    copy, run = stripped
    lint = run("lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    result = subprocess.run(
        [str(copy / ".venv/bin/python"), "-m", "pytest", "-c", "tests/pytest.ini", "-q",
         "tests/unit", "tests/integration", "tests/e2e", "tests/deploykit"],
        cwd=copy, env=users_environment(), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)
