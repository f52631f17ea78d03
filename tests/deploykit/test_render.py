"""`make render-deploy`: ready-to-copy files for one server, with nothing left to fill in."""

import os
import re
import subprocess
import sys

from deploykit.kit import REPO_DIR, render_kit

PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def rendered_files(kit):
    return sorted(path for path in kit.rglob("*") if path.is_file())


def test_every_placeholder_is_filled_and_the_pool_has_one_socket_per_instance(tmp_path):
    kit = render_kit(tmp_path / "kit", domain="chat.example.org", daphne_instances=3)
    assert [str(p.relative_to(kit)) for p in rendered_files(kit)] == sorted([
        "etc/nginx/conf.d/django-channels.conf",
        "etc/nginx/django-channels-metrics.d/realtime.conf",
        "etc/nginx/sites-available/realtime.conf",
        "etc/prometheus/django-channels/exporters/this-host.yml",
        "etc/prometheus/django-channels/prometheus.yml",
        "etc/prometheus/django-channels/rules.yml",
        "etc/prometheus/django-channels/targets/realtime.yml",
        "etc/realtime/env",
        "etc/systemd/system/nginx.service.d/django-channels.conf",
        "etc/systemd/system/prometheus-nginx-exporter.service.d/django-channels.conf",
        "etc/systemd/system/prometheus-postgres-exporter.service.d/django-channels.conf",
        "etc/systemd/system/prometheus-redis-exporter.service.d/django-channels.conf",
        "etc/systemd/system/realtime-daphne@.service",
        "etc/systemd/system/realtime-daphne@.socket",
        "etc/systemd/system/realtime-gunicorn.service",
        "etc/systemd/system/realtime-gunicorn.socket",
        "etc/systemd/system/realtime.target",
        "etc/tmpfiles.d/realtime.conf",
        "usr/local/bin/realtime-manage",
    ])  # fmt: skip
    for path in rendered_files(kit):
        assert not PLACEHOLDER.search(path.read_text()), path
    site = (kit / "etc/nginx/sites-available/realtime.conf").read_text()
    assert re.findall(r"server (unix:\S+) max_fails=0;", site) == [
        f"unix:/run/realtime/daphne-{n}.sock" for n in (1, 2, 3)
    ]
    assert "server_name chat.example.org;" in site
    socket_unit = (kit / "etc/systemd/system/realtime-daphne@.socket").read_text()
    assert "ListenStream=/run/realtime/daphne-%i.sock" in socket_unit


def test_the_env_file_is_private_with_a_fresh_secret(tmp_path):
    first = render_kit(tmp_path / "one", domain="chat.example.org") / "etc/realtime/env"
    second = render_kit(tmp_path / "two", domain="chat.example.org") / "etc/realtime/env"
    assert first.stat().st_mode & 0o777 == 0o640
    settings = dict(re.findall(r"^([A-Z_]+)=(.*)$", first.read_text(), re.M))
    assert settings["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert settings["ALLOWED_HOSTS"] == "chat.example.org"
    assert settings["PUBLIC_ORIGINS"] == ""  # derived: https://chat.example.org
    assert len(settings["SECRET_KEY"]) >= 50
    assert settings["SECRET_KEY"] not in second.read_text()


def test_production_settings_accept_the_rendered_env_file(tmp_path):
    env_file = render_kit(tmp_path / "kit", domain="chat.example.org") / "etc/realtime/env"
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }
    # The file's own values, except where this machine differs from a server: its Redis
    # (the test session's) and a writable data directory.
    environment.update(DJANGO_ENV_FILE=str(env_file), DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, str(REPO_DIR / "app/manage.py"), "check", "--deploy",
         "--fail-level", "WARNING"],
        env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_bad_domain_is_refused_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_DIR / "deploy/render.py"), "--domain", "bad domain;",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip() == "render: --domain must be a host name, got 'bad domain;'"
