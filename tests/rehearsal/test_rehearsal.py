"""The rehearsal: deploy/README.md followed word for word on a freshly booted Debian server,
for this project and for a copy renamed with `make rename`, side by side on one server.

Every shell block of the guide runs in a new shell (no variable carries over from one
block to the next), with only what the guide tells a person to fill in replaced: DOMAIN
and the URL of their fork. What the machine cannot do offline is stood in for, outside the
guide's commands:
- step 1 runs when the cached debootstrap root is made (with the network the machine
  lacks), and the machine boots a copy of that root;
- pip finds the wheels in a local wheelhouse (/etc/pip.conf), GitHub is a bare repository
  on the machine, DNS is /etc/hosts;
- certbot's certificate comes from a throwaway CA the machine trusts, in certbot's own
  layout (the webroot challenge is checked to be served first).
Then the smoke test of step 10 must pass for both, and the later sections (deploying new
code, more daphne instances) are run on them.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from deploykit.kit import REPO_DIR, copy_checkout, throwaway_certificate
from rehearsal.guide import fill_in, steps
from rehearsal.machine import Machine, pip_wheelhouse

SOURCES = "/var/tmp/sources"  # the stand-in for GitHub, inside the machine
ADMIN_PASSWORD = secrets.token_urlsafe(16)
# Run by the tests below, after the install: not part of installing.
LATER_SECTIONS = ("Deploy new code", "More daphne instances")


@dataclass
class Deployment:
    name: str
    domain: str
    source: Path  # the copy on this machine that was pushed to the stand-in for GitHub
    steps: dict = field(default_factory=dict)
    shown: dict = field(default_factory=dict)  # step title → what its blocks printed

    @property
    def fork_url(self):
        return f"{SOURCES}/{self.name}.git"

    def block(self, title, index=0):
        return fill_in(self.steps[title].blocks[index], self.domain, self.fork_url)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the rehearsal boots a container and needs root: run `sudo make rehearse`")
    directory = tmp_path_factory.mktemp("rehearsal")
    deployments = [
        Deployment("realtime", "realtime.example.test", copy_checkout(directory / "realtime")),
        Deployment("chatapp", "chatapp.example.test", renamed_copy(directory, "chatapp")),
    ]
    for deployment in deployments:
        deployment.steps = steps(deployment.source / "deploy/README.md")
    step_1 = [d.steps["1. Packages"].blocks for d in deployments]
    assert step_1[0] == step_1[1]
    machine = Machine(directory, f"rehearsal-{os.getpid()}", step_1[0][0])
    try:
        machine.create()
        stand_in_for_the_internet(machine, directory, deployments)
        machine.boot()
        machine.run("update-ca-certificates")
        for deployment in deployments:
            follow_the_guide(machine, deployment)
        yield machine, deployments
    finally:
        machine.stop()


def renamed_copy(directory, name):
    """A fresh copy of this checkout, renamed the documented way."""
    copy = copy_checkout(directory / name)
    subprocess.run(["make", "--no-print-directory", "rename", f"NAME={name}"], cwd=copy,
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    return copy


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=120).stdout  # fmt: skip


def commit_all(copy, message):
    git("add", "-A", cwd=copy)
    git("-c", "user.name=rehearsal", "-c", "user.email=rehearsal@example.test",
        "commit", "-q", "-m", message, cwd=copy)  # fmt: skip


def stand_in_for_the_internet(machine, directory, deployments):
    """What a real server reaches over the network, made local to the machine."""
    root = machine.root
    wheels = pip_wheelhouse(REPO_DIR / "app/requirements.txt")
    shutil.copytree(wheels, root / "var/tmp/wheels")
    (root / "etc/pip.conf").write_text("[global]\nno-index = true\nfind-links = /var/tmp/wheels\n")
    safe = []
    for deployment in deployments:
        git("init", "-q", "-b", "main", cwd=deployment.source)
        commit_all(deployment.source, "the project")
        git("clone", "-q", "--bare", str(deployment.source), str(root / deployment.fork_url[1:]),
            cwd=directory)  # fmt: skip
        safe.append(f"\tdirectory = {deployment.fork_url}\n")
        # A CA the machine trusts (as it trusts Let's Encrypt), and its certificate for the
        # domain, where certbot's stand-in takes it from.
        certificate, key = throwaway_certificate(root / "var/tmp/ca" / deployment.domain,
                                                 deployment.domain)  # fmt: skip
        shutil.copy(certificate, root / f"usr/local/share/ca-certificates/{deployment.domain}.crt")
    # The repositories belong to root; the app's user clones them (as from GitHub).
    (root / "etc/gitconfig").write_text("[safe]\n" + "".join(safe))
    with (root / "etc/hosts").open("a") as hosts:
        hosts.write(f"127.0.0.1 {' '.join(d.domain for d in deployments)}\n")


def certbot_stand_in(domain):
    """What `certbot certonly` leaves: the certificate in archive/, linked from live/."""
    archive, live = f"/etc/letsencrypt/archive/{domain}", f"/etc/letsencrypt/live/{domain}"
    return (
        f"install -d {archive} {live}\n"
        f"cp /var/tmp/ca/{domain}/fullchain.pem {archive}/fullchain1.pem\n"
        f"cp /var/tmp/ca/{domain}/privkey.pem {archive}/privkey1.pem\n"
        f"ln -sf ../../archive/{domain}/fullchain1.pem {live}/fullchain.pem\n"
        f"ln -sf ../../archive/{domain}/privkey1.pem {live}/privkey.pem"
    )


def acme_challenge_is_served(machine, domain):
    """What Let's Encrypt fetches before it issues: a file in the webroot, over plain HTTP."""
    token = secrets.token_urlsafe(16)
    machine.run(f"install -d /var/www/letsencrypt/.well-known/acme-challenge && echo {token} > "
                f"/var/www/letsencrypt/.well-known/acme-challenge/{token}")  # fmt: skip
    fetched = machine.run(
        "python3 -c 'import urllib.request; print(urllib.request.urlopen("
        f'"http://{domain}/.well-known/acme-challenge/{token}").read().decode())\''
    ).stdout
    return fetched.strip() == token


def follow_the_guide(machine, deployment):
    for title, step in deployment.steps.items():
        if title.startswith("1. ") or title in LATER_SECTIONS:
            continue  # step 1 made the cached root
        shown = []
        for index in range(len(step.blocks)):
            block = deployment.block(title, index)
            if block.strip().endswith("createsuperuser"):
                shown.append(machine.converse(block, [
                    (r"Username.*: ", "admin"), (r"Email address: ", "admin@example.test"),
                    (r"Password: ", ADMIN_PASSWORD), (r"Password \(again\): ", ADMIN_PASSWORD),
                ]))  # fmt: skip
                continue
            if block.startswith("certbot "):
                assert acme_challenge_is_served(machine, deployment.domain)
                block = certbot_stand_in(deployment.domain) + block[block.index("\n") :]
            shown.append(machine.run(block).stdout)
        deployment.shown[title] = "".join(shown)


def smoke_results(output):
    return re.findall(r"^(PASS|FAIL)\s+(\w+)", output, re.M)


SMOKE = "10. Prove it: the smoke test"
CHECKS = ["healthz", "echo"]
# demo: begin
CHECKS += ["chat", "push", "ticket"]
# demo: end
ALL_PASS = [("PASS", check) for check in CHECKS]


def test_the_guide_ends_in_a_passing_smoke_test_for_both_projects(server):
    _, deployments = server
    for deployment in deployments:
        output = deployment.shown[SMOKE]
        assert smoke_results(output) == ALL_PASS, output
        assert "'database': 'ok'" in output  # PostgreSQL, over its socket
    assert (
        "Superuser created successfully"
        in deployments[0].shown["6. The database schema, the static files and the first admin"]
    )


def test_every_service_of_both_projects_runs_under_systemd(server):
    machine, deployments = server
    units = ["nginx", "redis-server", "postgresql@15-main"]
    for name in (d.name for d in deployments):
        units += [f"{name}-gunicorn.socket", f"{name}-gunicorn.service",
                  f"{name}-daphne@1.service", f"{name}-daphne@2.service"]  # fmt: skip
    states = machine.run(f"systemctl is-active {' '.join(units)}", check=False).stdout.split()
    assert states == ["active"] * len(units), machine.run("systemctl --failed").stdout


def test_both_daphne_instances_of_each_project_served_websockets(server):
    machine, deployments = server
    for name in (d.name for d in deployments):
        for instance in (1, 2):
            log = machine.run(f"journalctl -u {name}-daphne@{instance} --no-pager -o cat").stdout
            assert "websocket closed" in log, f"{name}-daphne@{instance} served none:\n{log}"


METRICS_PROBE = """python3 -c "
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as error:
    print(error.code)
" """


def test_every_process_of_both_projects_serves_metrics_on_the_private_server_only(server):
    """nginx's metrics server on 127.0.0.1:9405 reaches each process's metrics socket in
    /run/NAME (made under the systemd sandbox, in a setgid directory nginx may enter); the
    public sites have no such path."""
    machine, deployments = server
    for deployment in deployments:
        name = deployment.name
        for process, metric in [("gunicorn", "realtime_http_requests_total"),
                                ("daphne-1", "realtime_websockets_open"),
                                ("daphne-2", "realtime_websockets_open")]:  # fmt: skip
            url = f"http://127.0.0.1:9405/{name}/{process}/metrics"
            shown = machine.run(METRICS_PROBE + url).stdout
            assert shown.startswith("200 ") and f"\n{metric}" in shown, (url, shown[:500])
            public = f"https://{deployment.domain}/{name}/{process}/metrics"
            assert machine.run(METRICS_PROBE + public).stdout.strip() == "404", public
    assert (
        "Active connections"
        in machine.run(METRICS_PROBE + "http://127.0.0.1:9405/nginx/stub_status").stdout
    )


def test_production_logs_one_json_object_a_line(server):
    """What gunicorn and daphne themselves wrote to the journal (not systemd's lines about
    their units)."""
    machine, _ = server
    for unit in ("realtime-gunicorn.service", "realtime-daphne@1.service"):
        shown = machine.run(f"journalctl _SYSTEMD_UNIT={unit} --no-pager -o cat").stdout
        entries = [json.loads(line) for line in shown.splitlines()]  # each line one object
        assert entries, unit
    closes = [entry for entry in entries if entry["message"].startswith("websocket closed")]
    assert closes and all("code" in entry and entry["process"] == "daphne-1" for entry in closes)


def test_the_first_admin_signs_in_with_the_server_settings(server):
    machine, deployments = server
    for deployment in deployments:
        check = (
            "from django.contrib.auth import authenticate; from django.conf import settings; "
            f"print(settings.SETTINGS_MODULE, authenticate(username='admin', "
            f"password={ADMIN_PASSWORD!r}) is not None)"
        )
        shown = machine.run(f"{deployment.name}-manage shell -c {json.dumps(check)}").stdout
        # Only the first project's admin was created (the guide's dialogue ran for both,
        # but each project has its own database).
        assert shown.splitlines()[-1].split() == ["config.settings.production", "True"]


# demo: begin
ISOLATION = """
import asyncio, json, sys
from websockets.asyncio.client import connect

async def main(realtime_token, chatapp_token):
    room = "/ws/chat/shared-name/"
    async with connect("wss://realtime.example.test" + room,
                       origin="https://realtime.example.test",
                       additional_headers={"Authorization": "Bearer " + realtime_token}) as a, \\
               connect("wss://chatapp.example.test" + room,
                       origin="https://chatapp.example.test",
                       additional_headers={"Authorization": "Bearer " + chatapp_token}) as b:
        await a.send(json.dumps({"message": "for realtime only"}))
        sent = ""
        while sent != "for realtime only":
            sent = json.loads(await asyncio.wait_for(a.recv(), 10)).get("message")
        heard = []
        try:
            while True:
                heard.append(json.loads(await asyncio.wait_for(b.recv(), 2)).get("message"))
        except TimeoutError:
            pass
        print("heard:", "for realtime only" in heard)

asyncio.run(main(*sys.argv[1:]))
"""


def test_projects_sharing_redis_do_not_hear_each_other(server):
    """A room of the same name in both projects, one Redis: a message in one stays there."""
    machine, deployments = server
    tokens = [
        machine.run(f"{d.name}-manage issue_token isolation --create-user --expires-in 1h")
        .stdout.strip()
        .splitlines()[-1]
        for d in deployments
    ]
    machine.run(f"cat > /tmp/isolation.py <<'EOF'\n{ISOLATION}\nEOF")
    output = machine.run(f"/srv/realtime/.venv/bin/python /tmp/isolation.py {' '.join(tokens)}")
    assert output.stdout.strip() == "heard: False"


# demo: end


def test_deploying_new_code_as_the_guide_says(server, tmp_path):
    machine, deployments = server
    deployment = deployments[0]
    secret_before = machine.run("grep ^SECRET_KEY= /etc/realtime/env").stdout
    daphnes_before = main_pids(machine, "realtime-daphne@1", "realtime-daphne@2")
    # A change pushed to the fork: the sign-in page says something new.
    work = tmp_path / "work"
    git("clone", "-q", str(machine.root / deployment.fork_url[1:]), str(work), cwd=tmp_path)
    marker = f"release {secrets.token_hex(4)}"
    login = work / "app/web/templates/web/login.html"
    text = login.read_text()
    end = text.rindex("{% endblock %}")
    login.write_text(f"{text[:end]}<!-- {marker} -->{text[end:]}")
    commit_all(work, marker)
    git("push", "-q", "origin", "HEAD:main", cwd=work)

    machine.run(deployment.block("Deploy new code"), timeout=600)

    page = machine.run(
        "python3 -c 'import urllib.request; print(urllib.request.urlopen("
        '"https://realtime.example.test/login/").read().decode())\''
    ).stdout
    assert marker in page
    assert machine.run("grep ^SECRET_KEY= /etc/realtime/env").stdout == secret_before
    daphnes_after = main_pids(machine, "realtime-daphne@1", "realtime-daphne@2")
    assert not set(daphnes_before) & set(daphnes_after)  # each instance restarted
    assert smoke_results(machine.run(deployment.block(SMOKE)).stdout) == ALL_PASS


def main_pids(machine, *units):
    return [
        machine.run(f"systemctl show -p MainPID --value {unit}").stdout.strip() for unit in units
    ]


def test_more_daphne_instances_as_the_guide_says(server):
    machine, deployments = server
    deployment = deployments[1]
    machine.run(deployment.block("More daphne instances"))
    units = [f"chatapp-daphne@{n}.service" for n in (1, 2, 3, 4)]
    states = machine.run(f"systemctl is-active {' '.join(units)}", check=False).stdout.split()
    assert states == ["active"] * 4
    site = machine.run("cat /etc/nginx/sites-available/chatapp.conf").stdout
    assert len(re.findall(r"server unix:/run/chatapp/daphne-\d\.sock", site)) == 4
    assert smoke_results(machine.run(deployment.block(SMOKE)).stdout) == ALL_PASS


def test_the_nginx_step_can_be_run_again(server):
    machine, deployments = server
    machine.run(deployments[0].block("8. nginx"))
    assert "worker_connections 24576;" in machine.run("nginx -T 2>/dev/null").stdout


def test_restarts_and_reloads_do_not_fail_clients(server):
    """A daphne restart closes sockets with 1012 while its socket unit keeps accepting;
    a gunicorn reload (HUP) replaces workers without dropping the socket."""
    machine, deployments = server
    machine.run("systemctl restart realtime-daphne@1.service realtime-daphne@2.service")
    machine.run("systemctl reload realtime-gunicorn.service")
    assert smoke_results(machine.run(deployments[0].block(SMOKE)).stdout) == ALL_PASS


def test_plain_http_redirects_and_unknown_hosts_get_nothing(server):
    machine, _ = server
    probe = """python3 -c "
import http.client
c = http.client.HTTPConnection('127.0.0.1', 80, timeout=5)
c.request('GET', '/', headers={'Host': 'chatapp.example.test'})
r = c.getresponse(); print(r.status, r.getheader('Location'))
c = http.client.HTTPConnection('127.0.0.1', 80, timeout=5)
c.request('GET', '/', headers={'Host': 'unknown.example'})
try:
    c.getresponse()
except http.client.RemoteDisconnected:
    print('closed')
" """
    lines = machine.run(probe).stdout.split("\n")
    assert lines[0] == "301 https://chatapp.example.test/"
    assert lines[1] == "closed"
