"""The deployment kit (deploy/render.py), rendered for checking on this machine."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
DOMAIN = "realtime.example.test"
NAME = "realtime"  # PROJECT_NAME in .env.example
SERVICES = [f"{NAME}-gunicorn.service", f"{NAME}-daphne@.service"]


def render_kit(out, **values):
    """Render the kit into ``out``; ``values`` override render.py's defaults (app_dir=...)."""
    options = [f"--{name.replace('_', '-')}={value}" for name, value in values.items()]
    subprocess.run(
        [sys.executable, str(REPO_DIR / "deploy" / "render.py"), "--out", str(out), *options],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out


def throwaway_certificate(directory, domain=DOMAIN):
    """A self-signed certificate for ``domain``: (certificate, key) paths. It is its own CA,
    so a client can trust exactly it (smoke.py --cafile)."""
    directory.mkdir(parents=True, exist_ok=True)
    certificate, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={domain}", "-addext", f"subjectAltName=DNS:{domain}",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return certificate, key


# The site as the compose nginx image renders it (deploy/Dockerfile): the services' names,
# looked up through Docker's DNS as requests come.
COMPOSE_BACKENDS = {
    "resolver": "127.0.0.11",
    "gunicorn_server": "gunicorn:8000",
    "daphne_servers": "daphne:8001",
}


def site_for_this_machine(tmp_path, name=NAME, domain=DOMAIN, **values):
    """The kit with every server path moved under ``tmp_path``/``name`` (the code stays in
    this checkout), so nginx and systemd-analyze can check the real files without root
    paths; what projects share on a host (the metrics paths, Prometheus' files) is in
    ``tmp_path`` itself, installed there. ``values`` override more of render.py's defaults
    (COMPOSE_BACKENDS: compose's site)."""
    base = tmp_path / name
    certificate, key = throwaway_certificate(base / "tls", domain)
    kit = render_kit(
        base / "kit",
        name=name,
        domain=domain,
        app_dir=REPO_DIR,
        run_dir=base / "run",
        data_dir=base / "data",
        acme_root=base / "acme",
        nginx_access_log=base / "access.log",
        nginx_error_log=base / "error.log",
        tls_certificate=certificate,
        tls_certificate_key=key,
        # What every project's kit on a host shares: one directory each.
        nginx_metrics_dir=tmp_path / "metrics.d",
        prometheus_dir=tmp_path / "prometheus",
        **values,
    )
    # Where `cp -r kit/. /` would put them, as on a server.
    for shared in (tmp_path / "metrics.d", tmp_path / "prometheus"):
        shutil.copytree(kit / str(shared).lstrip("/"), shared, dirs_exist_ok=True)
    return kit


def nginx_includes(*kits):
    """The http {} lines that install ``kits`` on one nginx: what every site shares (conf.d,
    the same file from each kit, so once), then each kit's site."""
    server = kits[0] / "etc/nginx/conf.d/django-channels.conf"
    sites = [next((kit / "etc/nginx/sites-available").glob("*.conf")) for kit in kits]
    return "\n    ".join(f"include {path};" for path in [server, *sites])


def copy_checkout(target):
    """What `git clone` of this checkout would give, with the changes not yet committed:
    the tracked files and the new, unignored ones."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_DIR, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = REPO_DIR / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
