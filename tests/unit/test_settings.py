"""Configuration stays documented, and production refuses to run with unsafe values."""

import json
import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from e2e.localstack import REPO_DIR, run_daphne

# Every place the project reads its environment.
READERS = [
    *sorted((REPO_DIR / "app" / "config" / "settings").glob("*.py")),
    REPO_DIR / "deploy" / "gunicorn.conf.py",
    REPO_DIR / "deploy" / "run_daphne.py",
    REPO_DIR / "deploy" / "local" / "stack.py",
    REPO_DIR / "deploy" / "project.py",
]
READ = re.compile(r"""(?:env\.\w+|environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


# Set by the process manager, not by anyone configuring the project.
SET_BY_SYSTEMD = {"NOTIFY_SOCKET"}


def variables_read():
    return {name for path in READERS for name in READ.findall(path.read_text())} - SET_BY_SYSTEMD


def test_every_variable_read_is_documented_in_env_example():
    documented = (REPO_DIR / ".env.example").read_text()
    assert variables_read(), "the scan found nothing: READ no longer matches the code"
    missing = sorted(name for name in variables_read() if name not in documented)
    assert missing == []


# Loads a settings module once per variable with the variable absent and once with it
# empty, each time afresh, and prints the variables whose two readings differ.
ABSENT_OR_EMPTY = """
import importlib, json, os, re, sys
names, module = json.loads(sys.argv[1]), sys.argv[2]

def shown(value):  # functions and objects compare by what they are, not where they live
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))

def read_settings():
    for name in [m for m in sys.modules if m.startswith("config.settings")]:
        del sys.modules[name]
    try:
        settings = importlib.import_module(module)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return {key: shown(value) for key, value in vars(settings).items() if key.isupper()}

differ = {}
for name in names:
    os.environ.pop(name, None)
    absent = read_settings()
    os.environ[name] = ""
    empty = read_settings()
    del os.environ[name]
    if absent != empty:
        differ[name] = [absent, empty] if isinstance(absent, str) else sorted(
            key for key in absent if absent.get(key) != empty.get(key))
print(json.dumps(differ))
"""


@pytest.mark.parametrize("module", ["config.settings.local", "config.settings.production"])
def test_an_empty_variable_means_the_same_as_an_absent_one(module):
    """.env.example lists every variable, many left empty (and compose passes ``${VAR:-}``):
    empty must mean "the default", never an empty value that replaces it."""
    names = sorted(
        name
        for path in (REPO_DIR / "app" / "config" / "settings").glob("*.py")
        for name in READ.findall(path.read_text())
    )
    environment = {key: value for key, value in os.environ.items() if key not in names}
    environment.update(
        DJANGO_ENV_FILE="",
        PYTHONPATH=str(REPO_DIR / "app"),
        # What production insists on, kept while the variable under test is another.
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="chat.example.com",
    )
    result = subprocess.run(
        [sys.executable, "-c", ABSENT_OR_EMPTY, json.dumps(names), module],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(names) > 20, names
    assert json.loads(result.stdout) == {}


def test_deploy_scripts_read_an_empty_variable_as_absent():
    """Outside the settings, ``os.environ.get("X") or default``; never
    ``os.environ.get("X", default)``, which an empty X would bypass. The one exception is
    DJANGO_ENV_FILE, whose empty value means "no file" (documented in .env.example)."""
    scripts = [path for path in READERS if "settings" not in path.parts]
    with_default = re.compile(
        r"""environ\.get\(\s*["'](?!DJANGO_ENV_FILE)[A-Z][A-Z0-9_]+["']\s*,"""
    )
    offenders = [
        f"{path.name}: {match}"
        for path in scripts + [REPO_DIR / "deploy" / "healthcheck.py"]
        for match in with_default.findall(path.read_text())
    ]
    assert offenders == []


def manage_production(*args, **overrides):
    """Run manage.py with the production settings and a valid minimal environment."""
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
        [sys.executable, str(REPO_DIR / "app" / "manage.py"), *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def check_production(**overrides):
    return manage_production("check", "--deploy", "--fail-level", "WARNING", **overrides)


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
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_production_refuses_unsafe_values(overrides, complaint):
    result = check_production(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr


SECURITY_SETTINGS = [
    "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS",
]  # fmt: skip


def test_production_security_defaults_and_hosts_from_the_environment():
    script = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {SECURITY_SETTINGS!r}}}))"
    )
    result = manage_production(
        "shell",
        "-c",
        script,
        ALLOWED_HOSTS="chat.example.com,www.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "DEBUG": False,  # no tracebacks to clients: Django's plain 500 page
        "ALLOWED_HOSTS": ["chat.example.com", "www.example.com"],
        # The public origins, derived from ALLOWED_HOSTS: https on the default port.
        "CSRF_TRUSTED_ORIGINS": ["https://chat.example.com", "https://www.example.com"],
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 0,  # nginx sends HSTS (deploy/nginx/site.conf)
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
    }


# Production's defaults for the abuse limits the kit applies.
ABUSE_LIMITS = {
    "POST_RATE_LIMIT": 1,
    "POST_RATE_BURST": 10,
    "WEBSOCKET_MAX_PER_IP": 200,
    "WEBSOCKET_MAX_PER_USER": 20,
}
# demo: begin
ABUSE_LIMITS.update(CHAT_REQUIRE_LOGIN=True, CHAT_ROOMS_PER_HOUR=20)  # and the chat's
# demo: end


def test_production_limits_abuse_and_refuses_anonymous_chat_by_default():
    """Each limit on, anonymous chat off, unless the site's environment says otherwise."""
    script = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(ABUSE_LIMITS)!r}}}))"
    )
    result = manage_production("shell", "-c", script)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ABUSE_LIMITS


def test_an_unreachable_redis_is_a_warning_not_an_error():
    result = manage_production("check", REDIS_URL="unix:///nonexistent/redis.sock")
    assert result.returncode == 0
    assert (
        "realtime.W001" in result.stderr
        and "unix:///nonexistent/redis.sock) is unreachable" in result.stderr
    )


def test_reauthentication_interval_must_be_bounded():
    result = manage_production("check", WEBSOCKET_REAUTH_INTERVAL="0")
    assert result.returncode != 0
    assert "WEBSOCKET_REAUTH_INTERVAL" in result.stderr


def test_the_apps_frame_limit_is_below_daphnes():
    """Between the two, a client gets an error frame; above daphne's, close code 1009."""
    assert 4000 * 12 < settings.WEBSOCKET_MAX_MESSAGE_LENGTH < run_daphne().MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    ("module", "log_format", "formatter"),
    [
        ("config.settings.production", "", "realtime.logs.JsonFormatter"),
        ("config.settings.production", "plain", None),
        ("config.settings.local", "", None),
        ("config.settings.local", "json", "realtime.logs.JsonFormatter"),
    ],
)
def test_logs_are_json_in_production_unless_asked_otherwise(module, log_format, formatter):
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.LOGGING['formatters']))"
    )
    result = manage_production(
        "shell", "-c", script, DJANGO_SETTINGS_MODULE=module, LOG_FORMAT=log_format
    )
    assert result.returncode == 0, result.stderr
    (formatter_config,) = json.loads(result.stdout.splitlines()[-1]).values()
    assert formatter_config.get("()") == formatter
