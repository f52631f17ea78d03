"""`make rename NAME=...` on a fresh copy: the name is one setting, and everything named
after it follows (the rendered kit, the guide, the channel layer's Redis prefix).

The two names running side by side on one server are proven by the rehearsal
(tests/rehearsal/test_rehearsal.py)."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from deploykit.kit import REPO_DIR, copy_checkout

NEW = "chatapp"


@pytest.fixture(scope="module")
def renamed(tmp_path_factory):
    copy = copy_checkout(tmp_path_factory.mktemp("rename") / "copy")
    result = subprocess.run(
        ["make", "--no-print-directory", "rename", f"NAME={NEW}"],
        cwd=copy, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Renamed realtime to {NEW}" in result.stdout
    return copy


def test_the_setting_and_the_guide_take_the_new_name(renamed):
    assert re.search(rf"^PROJECT_NAME={NEW}$", (renamed / ".env.example").read_text(), re.M)
    guide = (renamed / "deploy/README.md").read_text()
    assert not re.search(r"\brealtime\b", guide)
    for spelled in (f"useradd --system --home-dir /srv/{NEW}", f"{NEW}-manage migrate",
                    f"systemctl reload {NEW}-gunicorn", f"/etc/{NEW}/env"):  # fmt: skip
        assert spelled in guide


def test_the_rendered_kit_is_named_after_it(renamed, tmp_path):
    subprocess.run(
        [sys.executable, str(renamed / "deploy/render.py"), "--domain", "chat.example.org",
         "--out", str(tmp_path)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert f"etc/systemd/system/{NEW}-daphne@.service" in files
    assert f"etc/nginx/sites-available/{NEW}.conf" in files
    assert f"usr/local/bin/{NEW}-manage" in files
    assert not [name for name in files if "realtime" in name]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not re.search(r"\brealtime\b", path.read_text()), path
    env = (tmp_path / f"etc/{NEW}/env").read_text()
    assert f"PROJECT_NAME={NEW}\n" in env and f"DATABASE_URL=postgres:///{NEW}\n" in env


def test_the_channel_layer_prefixes_redis_with_it(renamed):
    script = "from django.conf import settings; print(settings.CHANNEL_LAYERS['default'])"
    result = subprocess.run(
        [sys.executable, str(renamed / "app/manage.py"), "shell", "-c", script],
        env={**os.environ, "DJANGO_ENV_FILE": str(renamed / ".env.example")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"'prefix': '{NEW}'" in result.stdout


@pytest.mark.parametrize("name", ["Chat", "1chat", "chat_app", "postgres", "x" * 21, ""])
def test_a_name_that_cannot_name_a_user_a_unit_and_a_database_is_refused(name, tmp_path):
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_DIR), "rename", f"NAME={name}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "rename: the project's name must be" in result.stderr or "Usage" in result.stderr


def test_compose_names_its_images_and_database_after_it(renamed, tmp_path):
    """compose reads the name from .env (a fresh one, from .env.example)."""
    shutil.copy(renamed / ".env.example", renamed / ".env")
    required = {"POSTGRES_PASSWORD": "x", "DOMAIN": "chat.example.org", "TLS_DIR": str(tmp_path)}
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.prod.yml", "config"],
        cwd=renamed, env={**os.environ, **required}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = result.stdout
    assert f"image: {NEW}-app" in config and f"image: {NEW}-nginx" in config
    assert f"POSTGRES_DB: {NEW}" in config and f"@postgres:5432/{NEW}" in config
