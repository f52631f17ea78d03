"""Configuration stays documented, and production refuses to run with unsafe values."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from e2e.localstack import REPO_DIR

# Every place the project reads its environment.
READERS = [
    *sorted((REPO_DIR / "app" / "config" / "settings").glob("*.py")),
    REPO_DIR / "deploy" / "gunicorn.conf.py",
    REPO_DIR / "deploy" / "run_daphne.py",
    REPO_DIR / "deploy" / "local" / "stack.py",
]
READ = re.compile(r"""(?:env\.\w+|environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def variables_read():
    return {name for path in READERS for name in READ.findall(path.read_text())}


def test_every_variable_read_is_documented_in_env_example():
    documented = (REPO_DIR / ".env.example").read_text()
    assert variables_read(), "the scan found nothing: READ no longer matches the code"
    missing = sorted(name for name in variables_read() if name not in documented)
    assert missing == []


def check_production(**overrides):
    env = {
        **os.environ,
        "DJANGO_ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "chat.example.com",
        "DEBUG": "false",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, str(REPO_DIR / "app" / "manage.py"), "check", "--deploy",
         "--fail-level", "WARNING"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_production_settings_pass_the_deploy_checks():
    result = check_production()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "overrides, complaint",
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "dev-only-insecure-change-me" + "x" * 40}, "SECRET_KEY"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_unsafe_values(overrides, complaint):
    result = check_production(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr
