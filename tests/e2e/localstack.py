"""Drive the real local stack (deploy/local/stack.py) from tests, as `make up` would."""

import http.cookiejar
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from xmlrpc.client import Fault, ServerProxy

from polling import wait_until
from supervisor.xmlrpc import SupervisorTransport
from websockets.asyncio.client import connect, unix_connect

REPO_DIR = Path(__file__).resolve().parents[2]
STACK = str(REPO_DIR / "deploy" / "local" / "stack.py")
MANAGE = str(REPO_DIR / "app" / "manage.py")
UP_TIMEOUT = 180
TIMEOUT = 10
# supervisord states of a program that nothing will start again unless asked to.
STOPPED_STATES = ("STOPPED", "EXITED", "FATAL")


def deploy_module(name):
    """A script of deploy/ (run_daphne, local/stack, ...) as a module: the servers' flags,
    limits and config writers live there, and the tests read them rather than copy them."""
    path = REPO_DIR / "deploy" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    # A launcher sets up the environment of the process it configures (gunicorn.conf.py:
    # PROMETHEUS_MULTIPROC_DIR). Reading its constants must not change the tests' own, or
    # every stack started later inherits it (its manage.py commands then wrote their metrics
    # into gunicorn's directory, and gunicorn served them).
    environment = dict(os.environ)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(environment)
    return module


def run_daphne():
    """deploy/run_daphne.py as a module: daphne's flags and limits live there."""
    return deploy_module("run_daphne")


def children(pid):
    """The direct children of ``pid`` (gunicorn's workers, nginx's), as stack.py sees them."""
    return deploy_module("local/stack").children(pid)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sign_in(base_url, username, password, login_path="/admin/login/", handlers=()):
    """Sign in through a site's login form as a browser does: {cookie name: value}.
    ``handlers``: more urllib handlers (how to reach the site)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), *handlers)
    with opener.open(f"{base_url}{login_path}", timeout=TIMEOUT) as page:
        form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())
    form = {"username": username, "password": password, "csrfmiddlewaretoken": form_token[1]}
    # Over HTTPS Django also wants to know where the form was: the Referer a browser sends.
    request = urllib.request.Request(
        f"{base_url}{login_path}", urllib.parse.urlencode(form).encode(),
        headers={"Referer": f"{base_url}{login_path}"},
    )  # fmt: skip
    with opener.open(request, timeout=TIMEOUT):
        pass
    cookies = {cookie.name: cookie.value for cookie in jar}
    if "sessionid" not in cookies:
        raise RuntimeError(f"could not sign in as {username}")
    return cookies


class LocalStack:
    """One stack on its own port and data directory, with its own redis-server.

    ``address`` is where nginx listens; ``host_command`` prefixes the stack's commands, e.g.
    ``["ip", "netns", "exec", "app-a"]`` to run the whole stack inside a network namespace
    (the multi-host rehearsal's "host").
    """

    def __init__(self, data_dir, port, address="127.0.0.1", host_command=(), **settings):
        self.data_dir = Path(data_dir)
        self.run_dir = self.data_dir / "run"
        self.port = port
        self.host_command = list(host_command)
        self.url = f"http://{address}:{port}"
        self.ws_url = f"ws://{address}:{port}"
        self.env = {
            **os.environ,
            "DJANGO_ENV_FILE": "",  # never the developer's .env
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATA_DIR": str(self.data_dir),
            "PUBLIC_ADDRESS": address,
            "PUBLIC_PORT": str(port),
            "REDIS_URL": "",  # the stack's own redis-server
            "METRICS_PORT": str(free_port()),  # nginx's private metrics server
            **settings,
        }

    def command(self, name, timeout=UP_TIMEOUT):
        return subprocess.run(
            [*self.host_command, sys.executable, STACK, name],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def up(self):
        """Start the stack; if that fails, a timeout included, stop whatever did start
        (supervisord runs detached: it would outlive the test run)."""
        try:
            result = self.command("up")
            if result.returncode != 0:
                raise RuntimeError(f"stack did not start:\n{result.stdout}\n{result.stderr}")
        except BaseException:
            self.down()
            raise
        return result

    def down(self):
        return self.command("down")

    # -- the processes, through supervisord's XML-RPC interface ---------------------------

    def supervisor(self):
        transport = SupervisorTransport(None, None, f"unix://{self.run_dir / 'supervisor.sock'}")
        return ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def programs(self):
        """{name: (state, pid)} for every program, e.g. {"daphne-1": ("RUNNING", 4242)}."""
        return {
            info["name"]: (info["statename"], info["pid"])
            for info in self.supervisor().getAllProcessInfo()
        }

    def pid(self, name):
        return self.programs()[name][1]

    def supervisor_name(self, name):
        """supervisord's group:name for a program ("daphne-1" → "daphne:daphne-1")."""
        return f"daphne:{name}" if name.startswith("daphne-") else name

    def stop_program(self, name):
        self.supervisor().stopProcess(self.supervisor_name(name), True)

    def start_program(self, name):
        try:
            self.supervisor().startProcess(self.supervisor_name(name), True)
        except Fault as fault:
            # supervisord began restarting it between our look at its state and this call.
            if not fault.faultString.startswith("ALREADY_STARTED"):
                raise

    def wait_running(self, name, old_pid=None, timeout=60):
        """Until ``name`` is RUNNING (with a pid other than ``old_pid``); returns the pid.

        For a daphne, also until it accepts connections: supervisord says RUNNING after
        `startsecs`, which a busy machine can outlast while daphne loads Django.
        """

        def running_pid():
            state, pid = self.programs()[name]
            return state == "RUNNING" and pid != old_pid and self.accepting(name) and pid

        return wait_until(running_pid, f"{name} to run again", timeout)

    def restore(self, names=None):
        """Start again whatever a test stopped (of ``names``, default all), and wait for it.

        A program that crashed is being restarted by supervisord itself (STARTING, or
        BACKOFF between attempts): asking it to start then would fail with ALREADY_STARTED,
        so only what is stopped for good is started; everything is waited for.
        """
        for name, (state, _) in self.programs().items():
            if names is None or name in names:
                if state in STOPPED_STATES:
                    self.start_program(name)
                self.wait_running(name)

    def accepting(self, name):
        if not name.startswith("daphne-"):
            return True
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(self.run_dir / f"{name}.sock"))
            except OSError:
                return False
        return True

    def manage(self, *args):
        result = subprocess.run(
            [sys.executable, MANAGE, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    def issue_token(self, username):
        return self.manage("issue_token", username, "--create-user").strip().splitlines()[-1]

    def create_staff_user(self, username, password):
        """A user who can sign in through the admin's login page (a real session)."""
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({username!r}, password={password!r}, "
            "is_staff=True)",
        )

    def sign_in(self, username, password, login_path="/admin/login/"):
        """Sign in through nginx and gunicorn as a browser does: {cookie name: value}.

        The admin's login page takes staff users only; the page's (/login/) takes anyone.
        """
        return sign_in(self.url, username, password, login_path)

    def logs_containing(self, text):
        """The names of the stack's log files that contain ``text``."""
        return sorted(
            path.name
            for path in (self.data_dir / "log").glob("*.log")
            if text.encode() in path.read_bytes()
        )

    def http(self, method, path, body=None, headers=None):
        """(status, parsed JSON or text, headers) of a request through nginx."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                status, raw, response_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, response_headers = error.code, error.read(), error.headers
        try:
            content = json.loads(raw)
        except ValueError:
            content = raw.decode(errors="replace")
        return status, content, response_headers

    # demo: begin
    def notify(self, token, text):
        """POST /api/notifications/ with a bearer token: (status, body)."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, body, _ = self.http("POST", "/api/notifications/", {"text": text}, headers)
        return status, body

    # demo: end
    def websocket(self, path, origin=None, **kwargs):
        """A websocket through nginx, with the Origin a browser on the site would send."""
        return connect(
            self.ws_url + path,
            origin=origin or self.url,
            open_timeout=TIMEOUT,
            close_timeout=2,
            **kwargs,
        )

    def daphne_websocket(self, instance, path, **kwargs):
        """A websocket straight to one daphne process's unix socket, bypassing nginx."""
        return unix_connect(
            str(self.run_dir / f"daphne-{instance}.sock"),
            f"ws://127.0.0.1{path}",
            origin=self.url,
            open_timeout=TIMEOUT,
            close_timeout=2,
            **kwargs,
        )
