#!/usr/bin/env python3
"""Write the deployment kit, ready to copy, for one server.

    python3 deploy/render.py --domain chat.example.com [--out DIR] [--self-signed]

The files in deploy/nginx/ and deploy/systemd/ hold ``@NAME@`` placeholders; the defaults
below are the one place the server's paths, user and names are chosen, all from the
project's name (PROJECT_NAME in .env.example; `make rename` changes it). The output mirrors
the server's file system, so installing is ``cp -r OUT/. /`` (deploy/README.md):

    OUT/etc/nginx/sites-available/NAME.conf      the site (its own upstreams and names)
    OUT/etc/nginx/conf.d/django-channels.conf    what every such site on the server shares
                                                 (and nginx's private metrics server)
    OUT/etc/nginx/django-channels-metrics.d/NAME.conf   its processes' metrics, by path
    OUT/etc/prometheus/django-channels/          a Prometheus config for this host, its alert
                                                 rules, and NAME's targets (targets/NAME.yml)
    OUT/etc/systemd/system/prometheus-*-exporter.service.d/django-channels.conf
                                                 the nginx, Redis and PostgreSQL exporters
    OUT/etc/systemd/system/NAME-gunicorn.{socket,service}, NAME-daphne@.{socket,service},
                           NAME.target, nginx.service.d/django-channels.conf
    OUT/etc/tmpfiles.d/NAME.conf                 the sockets' directory
    OUT/etc/NAME/env                             production settings
    OUT/usr/local/bin/NAME-manage                manage.py with exactly those settings

Rendering again is safe: the values already in this machine's settings file (ENV_FILE:
the secret key, DATABASE_URL, DAPHNE_INSTANCES, your edits) are kept. Needs only Python
3.10+, so it runs on the server before the venv exists.
"""

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
REPO_DIR = DEPLOY_DIR.parent
ENV_EXAMPLE = REPO_DIR / ".env.example"

DEFAULTS = {
    # The project's name: units, users, paths, the nginx site and upstreams, the database.
    "NAME": None,  # PROJECT_NAME in .env.example
    "DOMAIN": None,  # required
    # The unprivileged user the app runs as, and where its checkout lives.
    "APP_USER": "@NAME@",
    "APP_DIR": "/srv/@NAME@",
    # Settings for every process (systemd EnvironmentFile=, and NAME-manage).
    "ENV_FILE": "/etc/@NAME@/env",
    # Runtime state: SQLite (if used), and public/static, which nginx serves.
    "DATA_DIR": "/var/lib/@NAME@",
    # The unix sockets nginx connects to; systemd's socket units create them, in a
    # directory only the app's user and nginx's may enter (tmpfiles.d).
    "RUN_DIR": "/run/@NAME@",
    # The user (and group) nginx's workers run as (Debian and Ubuntu: www-data).
    "NGINX_USER": "www-data",
    "NGINX_ACCESS_LOG": "/var/log/nginx/@NAME@-access.log",
    "NGINX_ERROR_LOG": "/var/log/nginx/@NAME@-error.log",
    # certbot --webroot writes its challenges here; certificates land in /etc/letsencrypt.
    "ACME_ROOT": "/var/www/letsencrypt",
    "TLS_CERTIFICATE": "/etc/letsencrypt/live/@DOMAIN@/fullchain.pem",
    "TLS_CERTIFICATE_KEY": "/etc/letsencrypt/live/@DOMAIN@/privkey.pem",
    # nginx's upstreams. Compose renders its services' names (host:port) instead.
    "GUNICORN_SERVER": "unix:@RUN_DIR@/gunicorn.sock",
    "DAPHNE_INSTANCES": None,  # DAPHNE_INSTANCES in the settings file
    # Empty: one unix socket per NAME-daphne@N (N = 1..DAPHNE_INSTANCES); else host:port,...
    "DAPHNE_SERVERS": "",
    # Empty: the servers above are fixed addresses (upstreams.conf). A DNS server's address
    # (compose: Docker's, 127.0.0.11): GUNICORN_SERVER and DAPHNE_SERVERS are one host:port
    # each, looked up as requests come, every address a replica.
    "RESOLVER": "",
    # Redis on the same host, over its unix socket (Debian: enable `unixsocket` in redis.conf).
    "REDIS_URL": "unix:///run/redis/redis-server.sock",
    # PostgreSQL on the same host, over its socket with peer authentication: a role and a
    # database named like the app's user (deploy/README.md creates them).
    "DATABASE_URL": "postgres:///@APP_USER@",
    # nginx's private metrics server (one per host, shared by every project on it): where
    # it listens and who may scrape it. Another machine's Prometheus: a private address
    # here and the Prometheus host's address (or network) in METRICS_ALLOW.
    "METRICS_LISTEN": "127.0.0.1:9405",
    "METRICS_ALLOW": "127.0.0.1",
    # Where each project's kit puts its processes' paths on that server.
    "NGINX_METRICS_DIR": "/etc/nginx/django-channels-metrics.d",
    # Where the Prometheus config, rules and targets go (docs/operations.md), and how often
    # it scrapes.
    "PROMETHEUS_DIR": "/etc/prometheus/django-channels",
    "SCRAPE_INTERVAL": "15s",
}

# Until certbot has made the real certificate, nginx can load the site with Debian's
# self-signed one (package ssl-cert): --self-signed.
SELF_SIGNED = {
    "TLS_CERTIFICATE": "/etc/ssl/certs/ssl-cert-snakeoil.pem",
    "TLS_CERTIFICATE_KEY": "/etc/ssl/private/ssl-cert-snakeoil.key",
}

# (template, where it goes on the server, mode)
FILES = [
    ("nginx/site.conf", "etc/nginx/sites-available/@NAME@.conf", 0o644),
    ("nginx/server.conf", "etc/nginx/conf.d/django-channels.conf", 0o644),
    ("nginx/nginx.service.conf", "etc/systemd/system/nginx.service.d/django-channels.conf", 0o644),
    ("nginx/metrics.conf", "@NGINX_METRICS_DIR@/@NAME@.conf", 0o644),
    ("prometheus/prometheus.yml", "@PROMETHEUS_DIR@/prometheus.yml", 0o644),
    ("prometheus/rules.yml", "@PROMETHEUS_DIR@/rules.yml", 0o644),
    ("prometheus/targets.yml", "@PROMETHEUS_DIR@/targets/@NAME@.yml", 0o644),
    ("prometheus/exporters.yml", "@PROMETHEUS_DIR@/exporters/this-host.yml", 0o644),
    (
        "prometheus/nginx-exporter.conf",
        "etc/systemd/system/prometheus-nginx-exporter.service.d/django-channels.conf",
        0o644,
    ),
    (
        "prometheus/redis-exporter.conf",
        "etc/systemd/system/prometheus-redis-exporter.service.d/django-channels.conf",
        0o644,
    ),
    (
        "prometheus/postgres-exporter.conf",
        "etc/systemd/system/prometheus-postgres-exporter.service.d/django-channels.conf",
        0o644,
    ),
    ("systemd/gunicorn.socket", "etc/systemd/system/@NAME@-gunicorn.socket", 0o644),
    ("systemd/gunicorn.service", "etc/systemd/system/@NAME@-gunicorn.service", 0o644),
    ("systemd/daphne@.socket", "etc/systemd/system/@NAME@-daphne@.socket", 0o644),
    ("systemd/daphne@.service", "etc/systemd/system/@NAME@-daphne@.service", 0o644),
    ("systemd/app.target", "etc/systemd/system/@NAME@.target", 0o644),
    ("systemd/tmpfiles.conf", "etc/tmpfiles.d/@NAME@.conf", 0o644),
    ("systemd/manage.sh", "usr/local/bin/@NAME@-manage", 0o755),
]

# Sections of .env.example that mean nothing on a server (`#### Local stack only`...).
NOT_ON_SERVERS = ("Local stack only", "Compose only")

PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
SECTION = re.compile(r"^#### (.*)$")
NAME_RULE = re.compile(r"[a-z][a-z0-9-]{0,19}")
# Names a project cannot take: system users and units a server already has.
TAKEN_NAMES = {"root", "nginx", "postgres", "postgresql", "redis", "redis-server", "www-data",
               "daemon", "nobody", "systemd", "certbot"}  # fmt: skip


def check_name(name):
    """A project name usable as a user, a unit prefix, a database and a directory."""
    if not NAME_RULE.fullmatch(name) or name in TAKEN_NAMES:
        raise ValueError(
            f"the project's name must be 1 to 20 lowercase letters, digits or '-', starting "
            f"with a letter, and not a system name ({', '.join(sorted(TAKEN_NAMES))}); "
            f"got {name!r}"
        )
    return name


def read_settings(path):
    """{NAME: value} of an env file's assignments (comments and blank lines skipped)."""
    settings = {}
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    return settings


def daphne_servers(values):
    """The nginx pool's server lines: the given addresses, or one socket per daphne@N."""
    addresses = [a for a in values["DAPHNE_SERVERS"].split(",") if a] or [
        f"unix:{values['RUN_DIR']}/daphne-{n}.sock"
        for n in range(1, int(values["DAPHNE_INSTANCES"]) + 1)
    ]
    return "\n    ".join(f"server {address} max_fails=0;" for address in addresses)


def metrics_targets(values):
    """targets.yml's @METRICS_TARGETS@: gunicorn and each daphne instance of the project,
    as Prometheus file_sd target groups, each by its path on nginx's metrics server."""
    name = values["NAME"]
    processes = [
        "gunicorn",
        *(f"daphne-{n}" for n in range(1, int(values["DAPHNE_INSTANCES"]) + 1)),
    ]
    return "\n".join(
        f'- targets: ["{values["METRICS_LISTEN"]}"]\n'
        f"  labels: {{__metrics_path__: /{name}/{process}/metrics, project: {name}, "
        f"process: {process}, instance: {name}/{process}}}"
        for process in processes
    )


def backends(values):
    """site.conf's @UPSTREAMS@, @HTTP_BACKEND@ and @WS_BACKEND@: upstream groups of fixed
    addresses, or names that nginx resolves as requests come (see site.conf)."""
    if not values["RESOLVER"]:
        return {
            "UPSTREAMS": (DEPLOY_DIR / "nginx" / "upstreams.conf").read_text().strip(),
            "DAPHNE_SERVERS": daphne_servers(values),
            "HTTP_BACKEND": "@NAME@_http",
            "WS_BACKEND": "@NAME@_ws",
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


def production_env(values, kept):
    """.env.example's server sections with this server's values: those already in its
    settings file (``kept``) first, then what the kit chose, then the documented defaults."""
    chosen = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PROJECT_NAME": values["NAME"],
        "ALLOWED_HOSTS": values["DOMAIN"],
        "DATA_DIR": values["DATA_DIR"],
        "REDIS_URL": values["REDIS_URL"],
        "DATABASE_URL": values["DATABASE_URL"],
        "DAPHNE_INSTANCES": values["DAPHNE_INSTANCES"],
    }
    lines, skipping = [], False
    for line in ENV_EXAMPLE.read_text().splitlines():
        if section := SECTION.match(line):
            skipping = section[1].strip() in NOT_ON_SERVERS
        if skipping:
            continue
        name = line.partition("=")[0]
        if not line.startswith("#") and "=" in line:
            value = kept.get(name, substitute(chosen[name], values) if name in chosen else None)
            if value is not None:
                line = f"{name}={value}"
        lines.append(line)
    header = (
        "# Production settings, written by deploy/render.py (rendering again keeps the values\n"
        "# set here). Mode 0640, root:@APP_USER@.\n"
    )
    return substitute(header, values) + "\n".join(lines) + "\n"


def render(values, out):
    values = {**values, **backends(values), "METRICS_TARGETS": metrics_targets(values)}
    values["HARDENING"] = (DEPLOY_DIR / "systemd" / "hardening.conf").read_text().strip()
    written = []
    for template, target, mode in FILES:
        path = out / substitute(target, values).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(substitute((DEPLOY_DIR / template).read_text(), values))
        path.chmod(mode)
        written.append(path)
    env_path = substitute(values["ENV_FILE"], values)
    kept = read_settings(env_path) if os.access(env_path, os.R_OK) else {}
    env_file = out / env_path.lstrip("/")
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(production_env(values, kept))
    env_file.chmod(0o640)
    written.append(env_file)
    return written


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory (default var/deploy/DOMAIN)")
    parser.add_argument(
        "--self-signed", action="store_true",
        help="use Debian's self-signed certificate until certbot has made the real one",
    )  # fmt: skip
    for name, default in DEFAULTS.items():
        parser.add_argument(
            f"--{name.lower().replace('_', '-')}", default=default, metavar=name,
            required=name == "DOMAIN",
        )  # fmt: skip
    args = parser.parse_args(argv)
    values = {name: getattr(args, name.lower()) for name in DEFAULTS}
    example = read_settings(ENV_EXAMPLE)
    values["NAME"] = values["NAME"] or example["PROJECT_NAME"]
    try:
        check_name(values["NAME"])
    except ValueError as error:
        sys.exit(f"render: {error}")
    if values["DAPHNE_INSTANCES"] is None:
        env_path = substitute(values["ENV_FILE"], values)
        server = read_settings(env_path) if os.access(env_path, os.R_OK) else {}
        values["DAPHNE_INSTANCES"] = server.get("DAPHNE_INSTANCES") or example["DAPHNE_INSTANCES"]
    if args.self_signed:
        values.update(SELF_SIGNED)
    # ${NAME}: left for the nginx image's envsubst to fill in at start (compose).
    if not re.fullmatch(r"[A-Za-z0-9.-]+|\$\{[A-Z_]+\}", values["DOMAIN"]):
        sys.exit(f"render: --domain must be a host name, got {values['DOMAIN']!r}")
    if not values["DAPHNE_INSTANCES"].isdigit() or int(values["DAPHNE_INSTANCES"]) < 1:
        sys.exit("render: --daphne-instances must be a positive number")
    return values, args.out or REPO_DIR / "var" / "deploy" / values["DOMAIN"]


def main(argv=None):
    values, out = parse(argv)
    for path in render(values, out):
        print(path)


if __name__ == "__main__":
    main()
