#!/usr/bin/env python
"""The local stack: what `make up`, `down`, `status`, `logs` and `smoke` run.

supervisord runs nginx, gunicorn, daphne ×DAPHNE_INSTANCES and, unless REDIS_URL or
REDIS_SENTINELS point elsewhere, redis-server, each started exactly as on a server
(deploy/gunicorn.conf.py, deploy/run_daphne.py, the shared nginx snippets). Everything
lives under DATA_DIR (`var/` by default): configs and sockets in run/, logs in log/.
nginx listens on PUBLIC_ADDRESS:PUBLIC_PORT (127.0.0.1:8080 by default), and serves every
process's metrics on 127.0.0.1:METRICS_PORT (9405), with a Prometheus config for them in
run/prometheus/ (`make top` reads them too). Run it with the project's Python:
`.venv/bin/python deploy/local/stack.py up`.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xmlrpc.client import Fault, ServerProxy

from supervisor.xmlrpc import SupervisorTransport
from websockets.sync.client import connect

REPO_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_DIR / "deploy"))
import project  # noqa: E402 - deploy/project.py
import render as kit  # noqa: E402 - deploy/render.py: the kit's templates, filled alike

# The environment file read (never overriding the real environment), the project found.
DJANGO_DIR = project.setup()
TEMPLATE_DIR = Path(__file__).resolve().parent

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT = 60
STOP_TIMEOUT = 60
UNIX_SOCKET_PATH_MAX = 107


class StackError(Exception):
    """A step failed; the message says which and where its log is."""


def step(text):
    print(f"==> {text}", flush=True)


def find_program(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")
    if path is None:
        raise StackError(f"{name} is not installed (run `make up`, which installs it when root)")
    return path


@dataclass
class Stack:
    data_dir: Path
    run_dir: Path
    log_dir: Path
    static_root: Path
    address: str
    port: int
    daphne_instances: int
    own_redis: bool
    allowed_hosts: list
    demo_users: bool  # the demo's sign-in (settings.DEMO_USERS_ALLOWED), if there is a demo
    # nginx's private metrics server: METRICS_PORT for `make up` and the tests' stacks;
    # None, none (the bench's floor, which serves no metrics and must not take 9405).
    metrics_port: int = None
    project_name: str = "realtime"

    @classmethod
    def from_environment(cls):
        """Read the same .env and settings as the Django processes will."""
        from django.conf import settings

        stack = cls(
            data_dir=settings.DATA_DIR,
            run_dir=settings.RUN_DIR,
            log_dir=settings.DATA_DIR / "log",
            static_root=settings.STATIC_ROOT,
            address=os.environ.get("PUBLIC_ADDRESS") or "127.0.0.1",
            port=int(os.environ.get("PUBLIC_PORT") or 8080),
            daphne_instances=int(os.environ.get("DAPHNE_INSTANCES") or 2),
            own_redis=not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_SENTINELS")),
            allowed_hosts=settings.ALLOWED_HOSTS,
            demo_users=getattr(settings, "DEMO_USERS_ALLOWED", False),
            metrics_port=int(os.environ.get("METRICS_PORT") or 9405),
            project_name=settings.PROJECT_NAME,
        )
        # Children get absolute paths even if .env gave relative ones.
        os.environ["DATA_DIR"] = str(stack.data_dir)
        return stack

    @property
    def url(self):
        return f"http://{self.address}:{self.port}"

    @property
    def metrics_url(self):
        """nginx's private metrics server: /NAME/<process>/metrics for each process."""
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def processes_measured(self):
        """The processes that serve metrics: gunicorn and each daphne."""
        return ["gunicorn", *(f"daphne-{n}" for n in range(1, self.daphne_instances + 1))]

    @property
    def prometheus_dir(self):
        return self.run_dir / "prometheus"

    @property
    def supervisor_conf(self):
        return self.run_dir / "supervisord.conf"

    def rpc(self):
        transport = SupervisorTransport(None, None, f"unix://{self.run_dir / 'supervisor.sock'}")
        return ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def supervisord_pid(self):
        """supervisord's pid if it is running, else None."""
        try:
            pid = int((self.run_dir / "supervisord.pid").read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def processes(self):
        return self.rpc().getAllProcessInfo()


def render(template, target, **values):
    text = string.Template((TEMPLATE_DIR / template).read_text()).substitute(values)
    target.write_text(text)


def write_configs(stack):
    if stack.static_root.name != "static":
        raise StackError(
            "STATIC_ROOT must end in /static (nginx serves <root>/static/), "
            f"got {stack.static_root}"
        )
    longest = stack.run_dir / f"daphne-{stack.daphne_instances}.sock"
    if len(str(longest)) > UNIX_SOCKET_PATH_MAX:
        raise StackError(f"{longest} is too long for a unix socket; set a shorter DATA_DIR in .env")
    for directory in (stack.run_dir / "nginx", stack.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    nginx = find_program("nginx")
    if stack.metrics_port is not None:
        write_metrics_configs(stack)
    write_nginx_conf(
        stack, [stack.run_dir / f"daphne-{n}.sock" for n in range(1, stack.daphne_instances + 1)]
    )
    render(
        "supervisord.conf.template",
        stack.supervisor_conf,
        run_dir=stack.run_dir,
        log_dir=stack.log_dir,
        repo_dir=REPO_DIR,
        worker_rlimit_nofile=NGINX_LIMITS["worker_rlimit_nofile"],
        venv_bin=VENV_BIN,
        nginx_command=" ".join(nginx_command(stack, nginx)),
        redis_server=find_program("redis-server") if stack.own_redis else "redis-server",
        own_redis=str(stack.own_redis).lower(),
        daphne_instances=stack.daphne_instances,
    )


# Each proxied websocket holds two nginx connections (client side and daphne side), and a
# worker gets at most worker_rlimit_nofile file descriptors: 20,000 is a common hard limit
# per process, which nginx cannot raise unless it starts as root. A worker keeps half of
# them for connections (the rest for the files it serves; gixy asks for that margin), so
# six workers of 10,000 connections hold 30,000 sockets; `reuseport` in
# nginx.conf.template spreads new connections evenly over them, so no worker reaches its
# cap while others idle. Idle workers cost a few megabytes and no CPU, so six is right on
# two cores too.
NGINX_LIMITS = {
    "worker_processes": max(6, os.cpu_count() or 1),
    "worker_connections": 10000,
    "worker_rlimit_nofile": 20000,
}


def kit_values(stack):
    """deploy/render.py's values for this stack's metrics files."""
    values = {
        **kit.DEFAULTS,
        "NAME": stack.project_name,
        "RUN_DIR": str(stack.run_dir),
        "DAPHNE_INSTANCES": str(stack.daphne_instances),
        "METRICS_LISTEN": f"127.0.0.1:{stack.metrics_port}",
        "PROMETHEUS_DIR": str(stack.prometheus_dir),
        "SCRAPE_INTERVAL": "1s",
    }
    return {**values, "METRICS_TARGETS": kit.metrics_targets(values)}


def write_metrics_configs(stack):
    """A Prometheus config scraping this stack's processes every second (with the kit's
    alert rules), to run `prometheus --config.file=RUN_DIR/prometheus/prometheus.yml`."""
    values = kit_values(stack)
    (stack.prometheus_dir / "targets").mkdir(parents=True, exist_ok=True)
    for template, target in [
        ("prometheus/prometheus.yml", stack.prometheus_dir / "prometheus.yml"),
        ("prometheus/rules.yml", stack.prometheus_dir / "rules.yml"),
        ("prometheus/targets.yml", stack.prometheus_dir / "targets" / f"{stack.project_name}.yml"),
    ]:
        target.write_text(kit.substitute((kit.DEPLOY_DIR / template).read_text(), values))


# nginx's private metrics server, on 127.0.0.1 only: each process's metrics by path, and
# nginx's stub_status; what `make top` and Prometheus read (as on a server, server.conf).
METRICS_SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        allow 127.0.0.1;
        deny all;
        include {repo_dir}/deploy/nginx/snippets/metrics-server.conf;
        include {locations};
    }}
"""


def write_nginx_conf(stack, ws_sockets):
    """nginx.conf in the run dir, sending /ws/ to the unix sockets ``ws_sockets``, and its
    private metrics server if the stack has one."""
    metrics_server = ""
    if stack.metrics_port is not None:
        locations = stack.run_dir / "nginx-metrics.conf"
        template = (kit.DEPLOY_DIR / "nginx" / "metrics.conf").read_text()
        locations.write_text(kit.substitute(template, kit_values(stack)))
        metrics_server = METRICS_SERVER.format(
            port=stack.metrics_port, repo_dir=REPO_DIR, locations=locations
        )
    # Run as root, nginx would switch its workers to `nobody`, which cannot open the
    # stack's sockets (mode 660); keep them as the invoking user, as for everyone else.
    user = "user root root;" if os.geteuid() == 0 else ""
    render(
        "nginx.conf.template",
        stack.run_dir / "nginx.conf",
        **NGINX_LIMITS,
        run_dir=stack.run_dir,
        log_dir=stack.log_dir,
        repo_dir=REPO_DIR,
        user_directive=user,
        nginx_conf_dir="/etc/nginx",
        public_address=stack.address,
        public_port=stack.port,
        metrics_server=metrics_server,
        server_names=server_names(stack.allowed_hosts),
        static_parent=stack.static_root.parent,
        # max_fails=0: never mark a daphne as failed. nginx lifts that mark only when a
        # later request to the server *completes*, and a websocket completes when it
        # closes, maybe an hour later: meanwhile a restarted daphne gets one new socket
        # per fail_timeout, and if the others restart too, clients get 502 "no live
        # upstreams". A daphne that is down costs one failed connect (a unix socket:
        # microseconds) before nginx tries the next one.
        daphne_servers="\n".join(f"        server unix:{path} max_fails=0;" for path in ws_sockets),
    )


def server_names(allowed_hosts):
    """nginx's server_name for Django's ALLOWED_HOSTS. ".example.com" means the same to
    both (the domain and its subdomains); "*" (any host) becomes a regular expression
    matching any name, so only requests without a Host fall to the refusing server."""
    if "*" in allowed_hosts:
        return "~."
    return " ".join(allowed_hosts)


def nginx_command(stack, nginx):
    """nginx in the foreground on the run dir's config (supervisord runs exactly this)."""
    return [
        nginx, "-p", f"{stack.run_dir}/nginx", "-c", f"{stack.run_dir}/nginx.conf",
        "-e", f"{stack.log_dir}/nginx-error.log",
    ]  # fmt: skip


def manage(stack, *args):
    """Run a manage.py command; on failure show its output and keep it in the log dir."""
    log = stack.log_dir / f"manage-{args[0]}.log"
    result = subprocess.run(
        [sys.executable, str(DJANGO_DIR / "manage.py"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    log.write_text(result.stdout)
    if result.returncode != 0:
        raise StackError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n(log: {log})"
        )


def ensure_port_free(address, port, setting="PUBLIC_PORT"):
    with socket.socket() as probe:
        # As nginx binds: connections of a stack stopped a moment ago, still in TIME_WAIT,
        # do not make the port taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            raise StackError(
                f"port {port} on {address} is taken ({error.strerror}); "
                f"set {setting} in .env or stop what uses it"
            ) from None


def wait_for_programs(stack):
    """Until every program is RUNNING; fail fast, naming the log, if one cannot start."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        infos = [info for info in stack.processes() if info["statename"] != "STOPPED"]
        broken = [info for info in infos if info["statename"] in ("FATAL", "EXITED", "BACKOFF")]
        if broken and (broken[0]["statename"] != "BACKOFF" or time.monotonic() > deadline - 30):
            info = broken[0]
            raise StackError(
                f"{info['name']} did not start "
                f"({info['statename']}: {info['spawnerr'] or 'exited'}); "
                f"see {info['stdout_logfile']}"
            )
        if infos and all(info["statename"] == "RUNNING" for info in infos):
            return [info["name"] for info in infos]
        if time.monotonic() > deadline:
            waiting = ", ".join(i["name"] for i in infos if i["statename"] != "RUNNING")
            raise StackError(f"timed out waiting for {waiting} to start; see {stack.log_dir}")
        time.sleep(0.2)


def wait_for_health(stack):
    """Until GET /healthz answers 200 through nginx."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{stack.url}/healthz", timeout=2) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}: {error.read()[:200].decode(errors='replace')}"
        except OSError as error:
            last = str(error)
        time.sleep(0.2)
    raise StackError(f"{stack.url}/healthz did not answer 200 ({last}); see {stack.log_dir}")


def wait_for_daphne(stack):
    """Until every daphne accepts connections on its socket.

    supervisord calls a program RUNNING after `startsecs`, which a busy machine can
    outlast while daphne loads Django; nginx would answer 502 meanwhile.
    """
    pending = {stack.run_dir / f"daphne-{n}.sock" for n in range(1, stack.daphne_instances + 1)}
    deadline = time.monotonic() + START_TIMEOUT
    while pending:
        for path in list(pending):
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                except OSError:
                    continue
            pending.discard(path)
        if pending and time.monotonic() > deadline:
            names = ", ".join(sorted(path.name for path in pending))
            raise StackError(f"nothing accepts connections on {names}; see {stack.log_dir}")
        time.sleep(0.1)


def check_echo(stack):
    """One websocket round trip through nginx to daphne."""
    url = f"ws://{stack.address}:{stack.port}/ws/echo/"
    try:
        with connect(url, origin=stack.url, open_timeout=10, close_timeout=2) as ws:
            hello = json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"ping": "make up"}))
            echo = json.loads(ws.recv(timeout=10))
    except Exception as error:  # noqa: BLE001 - any failure is reported the same way
        raise StackError(
            f"websocket echo at {url} failed: {error!r}; see {stack.log_dir}/daphne-*.log"
        ) from None
    if hello != {"hello": "world"} or echo != {"echo": {"ping": "make up"}}:
        raise StackError(f"websocket echo at {url} answered {hello!r}, {echo!r}")


def up(stack):
    started = not stack.supervisord_pid()
    if not started:
        step(f"Already running (data in {stack.data_dir}); checking it")
    try:
        if started:
            start(stack)
            print(f"    running: {', '.join(wait_for_programs(stack))}")
        step(f"Waiting for {stack.url}/healthz through nginx")
        print(f"    {wait_for_health(stack)['checks']}")
        step("Checking a websocket echo through nginx")
        wait_for_daphne(stack)
        check_echo(stack)
    except BaseException:  # a failed check, or Ctrl-C while waiting
        if started:
            down(stack, quiet=True)  # leave nothing half-running behind
        raise
    if stack.demo_users:
        step("Creating the demo users")
        manage(stack, "demo_data")
    step(f"The stack is up: {stack.url}  (logs: {stack.log_dir}, stop: make down)")
    print(
        f"    metrics: {stack.metrics_url}/{stack.project_name}/<process>/metrics "
        f"(make top; Prometheus: {stack.prometheus_dir / 'prometheus.yml'})"
    )
    if stack.demo_users:
        print(f"    open {stack.url}/  and {demo_sign_in(stack)}", flush=True)


def demo_sign_in(stack):
    """The demo_data command's last line: who to sign in as."""
    return (stack.log_dir / "manage-demo_data.log").read_text().strip().splitlines()[-1].lower()


def start(stack):
    ensure_port_free(stack.address, stack.port)
    if stack.metrics_port is not None:
        ensure_port_free("127.0.0.1", stack.metrics_port, "METRICS_PORT")
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    step("Migrating the database")
    manage(stack, "migrate", "--noinput")
    step("Collecting static files")
    manage(stack, "collectstatic", "--noinput")
    write_configs(stack)
    redis = "redis-server, " if stack.own_redis else ""
    step(f"Starting {redis}gunicorn, daphne ×{stack.daphne_instances} and nginx under supervisord")
    result = subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(stack.supervisor_conf)])
    if result.returncode != 0:
        raise StackError(f"supervisord did not start; see {stack.log_dir}/supervisord.log")


def child_pids():
    """Every process's direct children, from /proc: {parent pid: [child pids]}."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def children(pid):
    """The direct children of ``pid`` (gunicorn's workers, nginx's)."""
    return child_pids().get(pid, [])


def process_tree(pids):
    """The pids and all their descendants (gunicorn workers, nginx workers)."""
    children = child_pids()
    tree, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid and pid not in tree:
            tree.add(pid)
            todo += children.get(pid, [])
    return tree


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def down(stack, quiet=False):
    supervisord = stack.supervisord_pid()
    if supervisord is None:
        if not quiet:
            step("Not running")
        return
    if not quiet:
        step("Stopping the stack")
    try:
        pids = process_tree([supervisord] + [info["pid"] for info in stack.processes()])
        stack.rpc().shutdown()
    except (OSError, Fault):  # already shutting down, or not answering: signal it instead
        pids = process_tree([supervisord])
        os.kill(supervisord, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers = [pid for pid in pids if alive(pid)]
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    if leftovers:
        print(f"    killed {len(leftovers)} process(es) still alive after {STOP_TIMEOUT}s")
    if not quiet:
        step("Stopped; nothing left running")


def status(stack):
    if stack.supervisord_pid() is None:
        print(f"not running (data: {stack.data_dir})")
        return 3
    for info in stack.processes():
        print(f"{info['name']:<12} {info['statename']:<9} {info['description']}")
    print(f"url: {stack.url}   logs: {stack.log_dir}")
    return 0


def logs(stack):
    files = sorted(map(str, stack.log_dir.glob("*.log")))
    if not files:
        raise StackError(f"no logs in {stack.log_dir} yet; start the stack with `make up`")
    os.execvp("tail", ["tail", "-n", "20", "-F", *files])


def top(stack):
    """A live view of the stack's processes, from their metrics, until Ctrl-C."""
    from top import watch

    if stack.supervisord_pid() is None:
        raise StackError("the stack is not running; start it with `make up`")
    title = f"{stack.project_name}: {stack.url}, metrics {stack.metrics_url}"
    try:
        watch(stack.metrics_url, stack.project_name, stack.daphne_instances, title, sys.stdout)
    except KeyboardInterrupt:
        return 0


def smoke(stack):
    """The smoke test against this stack, with a fresh token for the push check."""
    result = subprocess.run(
        [sys.executable, str(DJANGO_DIR / "manage.py"), "issue_token", "smoke", "--create-user",
         "--name", "make smoke", "--expires-in", "1h"],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise StackError(f"could not issue a token: {result.stderr.strip()}")
    token = result.stdout.strip().splitlines()[-1]
    smoke_script = str(REPO_DIR / "deploy" / "smoke.py")
    os.execv(sys.executable, [sys.executable, smoke_script, stack.url, "--token", token])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = {"up": up, "down": down, "status": status, "logs": logs, "smoke": smoke, "top": top}
    parser.add_argument("command", choices=commands)
    command = parser.parse_args().command
    try:
        return commands[command](Stack.from_environment()) or 0
    except StackError as error:
        print(f"make {command} failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"make {command} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
