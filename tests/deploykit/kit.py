"""The deployment kit (deploy/render.py), rendered for checking on this machine."""

import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
DOMAIN = "realtime.example.test"
SERVICES = ["gunicorn.service", "daphne@.service"]


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


def site_for_this_machine(tmp_path, **values):
    """The kit with every server path moved under ``tmp_path`` (the code stays in this
    checkout), so nginx and systemd-analyze can check the real files without root paths.
    ``values`` override more of render.py's defaults (COMPOSE_BACKENDS: compose's site)."""
    certificate, key = throwaway_certificate(tmp_path / "tls")
    return render_kit(
        tmp_path / "kit",
        domain=DOMAIN,
        app_dir=REPO_DIR,
        run_dir=tmp_path / "run",
        data_dir=tmp_path / "data",
        acme_root=tmp_path / "acme",
        nginx_access_log=tmp_path / "access.log",
        nginx_error_log=tmp_path / "error.log",
        tls_certificate=certificate,
        tls_certificate_key=key,
        **values,
    )
