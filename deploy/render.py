#!/usr/bin/env python3
"""Write the deployment kit, ready to copy, for one server.

    python3 deploy/render.py --domain chat.example.com [--out DIR] [--daphne-instances 3]

The files in deploy/nginx/ and deploy/systemd/ hold ``@NAME@`` placeholders; the defaults
below are the one place the server's paths, user and names are chosen. The output mirrors
the server's file system, so installing is ``cp -r OUT/etc/. /etc/`` (deploy/README.md):

    OUT/etc/nginx/sites-available/realtime.conf
    OUT/etc/systemd/system/{gunicorn,daphne@}.{socket,service}, realtime.target
    OUT/etc/tmpfiles.d/realtime.conf  the sockets' directory
    OUT/etc/realtime/env            production settings, with a fresh SECRET_KEY

Needs only Python 3.10+, so it runs on the server before the venv exists.
"""

import argparse
import re
import secrets
import sys
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
REPO_DIR = DEPLOY_DIR.parent

DEFAULTS = {
    "DOMAIN": "chat.example.com",
    # The unprivileged user the app runs as, and where its checkout lives.
    "APP_USER": "realtime",
    "APP_DIR": "/srv/realtime",
    # Settings for every process (systemd EnvironmentFile=, and DJANGO_ENV_FILE for manage.py).
    "ENV_FILE": "/etc/realtime/env",
    # Runtime state: SQLite (if used), and public/static, which nginx serves.
    "DATA_DIR": "/var/lib/realtime",
    # The unix sockets nginx connects to; systemd's socket units create them, in a
    # directory only the app's user and nginx's may enter (tmpfiles.d).
    "RUN_DIR": "/run/realtime",
    # The user (and group) nginx's workers run as (Debian and Ubuntu: www-data).
    "NGINX_USER": "www-data",
    "NGINX_ACCESS_LOG": "/var/log/nginx/realtime-access.log",
    "NGINX_ERROR_LOG": "/var/log/nginx/realtime-error.log",
    # certbot --webroot writes its challenges here; certificates land in /etc/letsencrypt.
    "ACME_ROOT": "/var/www/letsencrypt",
    "TLS_CERTIFICATE": "/etc/letsencrypt/live/@DOMAIN@/fullchain.pem",
    "TLS_CERTIFICATE_KEY": "/etc/letsencrypt/live/@DOMAIN@/privkey.pem",
    # nginx's upstreams. Compose renders its services' names (host:port) instead.
    "GUNICORN_SERVER": "unix:@RUN_DIR@/gunicorn.sock",
    "DAPHNE_INSTANCES": "2",
    # Empty: one unix socket per daphne@N (N = 1..DAPHNE_INSTANCES); else host:port,...
    "DAPHNE_SERVERS": "",
    # Empty: the servers above are fixed addresses (upstreams.conf). A DNS server's address
    # (compose: Docker's, 127.0.0.11): GUNICORN_SERVER and DAPHNE_SERVERS are one host:port
    # each, looked up as requests come, every address a replica.
    "RESOLVER": "",
    # Redis on the same host, over its unix socket (Debian: enable `unixsocket` in redis.conf).
    "REDIS_URL": "unix:///run/redis/redis-server.sock",
}

# (template, where it goes on the server)
FILES = [
    ("nginx/site.conf", "etc/nginx/sites-available/realtime.conf"),
    ("systemd/gunicorn.socket", "etc/systemd/system/gunicorn.socket"),
    ("systemd/gunicorn.service", "etc/systemd/system/gunicorn.service"),
    ("systemd/daphne@.socket", "etc/systemd/system/daphne@.socket"),
    ("systemd/daphne@.service", "etc/systemd/system/daphne@.service"),
    ("systemd/realtime.target", "etc/systemd/system/realtime.target"),
    ("systemd/realtime-tmpfiles.conf", "etc/tmpfiles.d/realtime.conf"),
]

PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def daphne_servers(values):
    """The nginx pool's server lines: the given addresses, or one socket per daphne@N."""
    addresses = [a for a in values["DAPHNE_SERVERS"].split(",") if a] or [
        f"unix:{values['RUN_DIR']}/daphne-{n}.sock"
        for n in range(1, int(values["DAPHNE_INSTANCES"]) + 1)
    ]
    return "\n    ".join(f"server {address} max_fails=0;" for address in addresses)


def backends(values):
    """site.conf's @UPSTREAMS@, @HTTP_BACKEND@ and @WS_BACKEND@: upstream groups of fixed
    addresses, or names that nginx resolves as requests come (see site.conf)."""
    if not values["RESOLVER"]:
        return {
            "UPSTREAMS": (DEPLOY_DIR / "nginx" / "upstreams.conf").read_text().strip(),
            "DAPHNE_SERVERS": daphne_servers(values),
            "HTTP_BACKEND": "django_http",
            "WS_BACKEND": "django_ws",
        }
    daphne = values["DAPHNE_SERVERS"]
    if not re.fullmatch(r"[a-z0-9.-]+:\d+", daphne, re.I):
        sys.exit(f"render: with --resolver, --daphne-servers is one host:port, got {daphne!r}")
    return {
        # valid=1s: a recreated container's new address is in use within a second.
        "UPSTREAMS": f"resolver {values['RESOLVER']} valid=1s ipv6=off;",
        "HTTP_BACKEND": values["GUNICORN_SERVER"],
        "WS_BACKEND": daphne,
    }


def substitute(text, values):
    def replace(match):
        name = match.group(1)
        if name not in values:
            raise KeyError(f"unknown placeholder @{name}@")
        return substitute(values[name], values)

    return PLACEHOLDER.sub(replace, text)


def production_env(values):
    """.env.example with the values a server needs; every other line kept as documented."""
    overrides = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": values["DOMAIN"],
        "DATA_DIR": values["DATA_DIR"],
        "REDIS_URL": values["REDIS_URL"],
    }
    lines = []
    for line in (REPO_DIR / ".env.example").read_text().splitlines():
        name = line.partition("=")[0]
        if not line.startswith("#") and name in overrides:
            line = f"{name}={overrides[name]}"
        lines.append(line)
    header = "# Production settings, written by deploy/render.py. Mode 0640, root:@APP_USER@.\n"
    return substitute(header, values) + "\n".join(lines) + "\n"


def render(values, out):
    values = {**values, **backends(values)}
    values["HARDENING"] = (DEPLOY_DIR / "systemd" / "hardening.conf").read_text().strip()
    written = []
    for template, target in FILES:
        path = out / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(substitute((DEPLOY_DIR / template).read_text(), values))
        written.append(path)
    env_file = out / values["ENV_FILE"].lstrip("/")
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(production_env(values))
    env_file.chmod(0o640)
    written.append(env_file)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory (default var/deploy/DOMAIN)")
    for name, default in DEFAULTS.items():
        parser.add_argument(f"--{name.lower().replace('_', '-')}", default=default, metavar=name)
    args = parser.parse_args(argv)
    values = {name: getattr(args, name.lower()) for name in DEFAULTS}
    # ${NAME}: left for the nginx image's envsubst to fill in at start (compose).
    if not re.fullmatch(r"[A-Za-z0-9.-]+|\$\{[A-Z_]+\}", values["DOMAIN"]):
        sys.exit(f"render: --domain must be a host name, got {values['DOMAIN']!r}")
    if not values["DAPHNE_INSTANCES"].isdigit() or int(values["DAPHNE_INSTANCES"]) < 1:
        sys.exit("render: --daphne-instances must be a positive number")
    out = args.out or REPO_DIR / "var" / "deploy" / values["DOMAIN"]
    for path in render(values, out):
        print(path)


if __name__ == "__main__":
    main()
