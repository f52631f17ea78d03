"""The rehearsal: install the kit into a freshly booted Debian server as deploy/README.md
tells a user, then prove it with the smoke test over https:// and wss:// through its nginx,
with both daphne instances receiving websockets.

Each step below is the README's step of the same name, with two differences a container
forces: packages come from the cached debootstrap root and wheels from a local wheelhouse
(no network inside), and the certificate is a throwaway one where certbot would put its own.
"""

import os
import re
import shutil

import pytest
from checkout import copy_checkout
from deploykit.kit import REPO_DIR, throwaway_certificate
from rehearsal.machine import Machine, pip_wheelhouse

DOMAIN = "realtime.example.test"
APP = "/srv/realtime"
PYTHON = f"{APP}/.venv/bin/python"
AS_APP = {"user": "realtime"}
MANAGE = f"DJANGO_ENV_FILE=/etc/realtime/env {PYTHON} {APP}/app/manage.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the rehearsal boots a container and needs root: run `sudo make rehearse`")
    directory = tmp_path_factory.mktemp("rehearsal")
    machine = Machine(directory, f"rehearsal-{os.getpid()}")
    try:
        machine.create()
        copy_checkout(machine.root / APP.lstrip("/"))
        shutil.copytree(pip_wheelhouse(REPO_DIR / "app/requirements.txt"), machine.root / "wheels")
        machine.boot()
        install_the_kit(machine, directory)
        yield machine
    finally:
        machine.stop()


def install_the_kit(machine, directory):
    """deploy/README.md, steps 2 to 9 (step 1 made the cached root; git clone is
    copy_checkout; certbot is a throwaway certificate where certbot writes its own)."""
    run = machine.run
    # 2. The app's user and directories.
    run("useradd --system --home-dir /srv/realtime --shell /usr/sbin/nologin realtime")
    run(f"chown -R realtime:realtime {APP} && install -d -o realtime -g realtime /var/lib/realtime")
    # 3. The virtualenv, from the pinned requirements.
    run(f"python3 -m venv {APP}/.venv", **AS_APP)
    run(f"{APP}/.venv/bin/pip install --quiet --no-index --find-links /wheels "
        f"-r {APP}/app/requirements.txt", **AS_APP)  # fmt: skip
    # 4. Redis and PostgreSQL.
    run("sed -i -e 's|^# unixsocket .*|unixsocket /run/redis/redis-server.sock|' "
        "-e 's|^# unixsocketperm .*|unixsocketperm 770|' /etc/redis/redis.conf")  # fmt: skip
    run("usermod -a -G redis realtime && systemctl restart redis-server")
    run("createuser realtime && createdb --owner realtime realtime", user="postgres")
    # 5. The kit, rendered for this server, and its settings.
    run(f"cd {APP} && python3 deploy/render.py --domain {DOMAIN} --out /root/kit")
    run("cp -r /root/kit/etc/. /etc/ && chown root:realtime /etc/realtime/env")
    run("sed -i 's|^DATABASE_URL=.*|DATABASE_URL=postgres:///realtime|' /etc/realtime/env")
    # 6. The database schema and the static files.
    run(f"{MANAGE} migrate --noinput", **AS_APP)
    run(f"{MANAGE} collectstatic --noinput", **AS_APP)
    # 7. The services.
    run("systemd-tmpfiles --create /etc/tmpfiles.d/realtime.conf && systemctl daemon-reload")
    run("systemctl enable --now gunicorn.socket daphne@1.socket daphne@2.socket")
    run("systemctl enable --now realtime.target gunicorn.service daphne@1.service daphne@2.service")
    # 8. nginx, with the self-signed certificate first.
    run("sed -i -e 's/worker_connections 768;/worker_connections 24576;/' "
        "-e 's/^worker_processes auto;/worker_processes auto;\\nworker_rlimit_nofile 65536;/' "
        "/etc/nginx/nginx.conf")  # fmt: skip
    run("sed -i "
        "-e 's|/etc/letsencrypt/live/.*/fullchain.pem|/etc/ssl/certs/ssl-cert-snakeoil.pem|' "
        "-e 's|/etc/letsencrypt/live/.*/privkey.pem|/etc/ssl/private/ssl-cert-snakeoil.key|' "
        "/etc/nginx/sites-available/realtime.conf")  # fmt: skip
    run(
        "rm /etc/nginx/sites-enabled/default && "
        "ln -s /etc/nginx/sites-available/realtime.conf /etc/nginx/sites-enabled/"
    )
    run("install -d /var/www/letsencrypt && nginx -t && systemctl reload nginx")
    # 9. The certificate: certbot would write these two files.
    live = machine.root / f"etc/letsencrypt/live/{DOMAIN}"
    certificate, key = throwaway_certificate(directory / "tls", DOMAIN)
    live.mkdir(parents=True)
    shutil.copy(certificate, live / "fullchain.pem")
    shutil.copy(key, live / "privkey.pem")
    run("cp /root/kit/etc/nginx/sites-available/realtime.conf /etc/nginx/sites-available/")
    run("nginx -t && systemctl reload nginx")
    # The name resolves to this server (DNS would do this).
    run(f"echo '127.0.0.1 {DOMAIN}' >> /etc/hosts")


def smoke(server, timeout=10):
    token = server.run(f"{MANAGE} issue_token smoke --create-user", **AS_APP).stdout
    cafile = f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem"
    return server.run(
        f"{PYTHON} {APP}/deploy/smoke.py https://{DOMAIN} --timeout {timeout} "
        f"--token {token.strip().splitlines()[-1]} --cafile {cafile}",
        check=False,
        timeout=timeout * 6 + 60,
    )


def test_every_service_runs_under_systemd(server):
    units = (
        "gunicorn.socket gunicorn.service daphne@1.service daphne@2.service nginx "
        "redis-server postgresql@15-main"
    )
    states = server.run(f"systemctl is-active {units}", check=False).stdout.split()
    assert states == ["active"] * 7, server.run("systemctl --failed --no-pager").stdout


def test_the_smoke_test_passes_over_tls(server):
    result = smoke(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "'database': 'ok'" in result.stdout  # PostgreSQL, over its socket
    assert re.findall(r"^PASS\s+(\w+)", result.stdout, re.M) == ["healthz", "echo", "chat", "push"]


def test_both_daphne_instances_receive_websockets(server):
    assert smoke(server).returncode == 0
    for instance in (1, 2):
        log = server.run(f"journalctl -u daphne@{instance} --no-pager -o cat").stdout
        assert "websocket closed" in log, f"daphne@{instance} served no websocket:\n{log}"


def test_restarts_and_reloads_do_not_fail_clients(server):
    """A daphne restart closes sockets with 1012 while its socket unit keeps accepting;
    a gunicorn reload (HUP) replaces workers without dropping the socket."""
    server.run("systemctl restart daphne@1.service daphne@2.service")
    server.run("systemctl reload gunicorn.service")
    # Requests made while the new workers load Django wait in the socket's backlog: slower
    # (seconds, on a busy machine), never refused. Hence the smoke test's longer timeout.
    result = smoke(server, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_plain_http_redirects_and_unknown_hosts_get_nothing(server):
    probe = f"""{PYTHON} -c "
import http.client
c = http.client.HTTPConnection('127.0.0.1', 80, timeout=5)
c.request('GET', '/', headers={{'Host': '{DOMAIN}'}})
r = c.getresponse(); print(r.status, r.getheader('Location'))
c = http.client.HTTPConnection('127.0.0.1', 80, timeout=5)
c.request('GET', '/', headers={{'Host': 'unknown.example'}})
try:
    c.getresponse()
except http.client.RemoteDisconnected:
    print('closed')
" """
    lines = server.run(probe).stdout.split("\n")
    assert lines[0] == f"301 https://{DOMAIN}/"
    assert lines[1] == "closed"
