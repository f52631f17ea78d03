"""What the benchmark measures, each behind the same nginx configuration.

- ``tuned``: the stack `make up` ships (deploy/local/stack.py via the tests' LocalStack).
- ``article``: the article's default: one daphne, channels_redis' RedisChannelLayer.
- ``floor``: a bare `websockets` broadcast server (floor.py), behind an nginx rendered
  from the same template by the same function as the stack's.

Each target answers the same questions: where members connect, what raw HTTP request
triggers a push to them, and which processes are its websocket tier and its nginx.
"""

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from e2e.localstack import LocalStack, children, deploy_module, free_port
from polling import wait_until

BENCH_USER = "bench"
START_TIMEOUT = 60


def stack_module():
    return deploy_module("local/stack")


def http_request(method, path, port, body=b"", headers=()):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class StackTarget:
    """The project's own stack with some settings: tuned (shipped defaults) or article."""

    def __init__(self, name, description, data_dir, **settings):
        self.name = name
        self.description = description
        self.port = free_port()
        # The push benchmark posts 50 notifications a second as one user, far past the
        # posting limit (POST_RATE_LIMIT), which would refuse most of them: it is off here.
        self.stack = LocalStack(data_dir, self.port, POST_RATE_LIMIT="0", **settings)
        self.token = None

    def start(self):
        self.stack.up()
        self.token = self.stack.issue_token(BENCH_USER)

    def stop(self):
        self.stack.down()

    def chat_path(self, room):
        return f"/ws/chat/{room}/"

    def push_socket(self):
        """Where a push's recipient connects, and with which handshake headers."""
        return "/ws/notifications/", [("Authorization", f"Bearer {self.token}")]

    def handshake_path(self):
        return "/ws/echo/"

    def push_request(self, text):
        body = json.dumps({"text": text}).encode()
        headers = [("Authorization", f"Bearer {self.token}"), ("Content-Type", "application/json")]
        return http_request("POST", "/api/notifications/", self.port, body, headers)

    def http_path(self):
        return "/healthz"

    def ws_tier_pids(self):
        return [
            pid for name, (_, pid) in self.stack.programs().items() if name.startswith("daphne")
        ]

    def nginx_pids(self):
        return children(self.stack.pid("nginx"))


class FloorTarget:
    """floor.py on a unix socket behind the stack's nginx template."""

    name = "floor"
    description = "bare `websockets` broadcast server, one process"

    def __init__(self, data_dir):
        self.port = free_port()
        self.data_dir = Path(data_dir)
        self.module = stack_module()
        self.config = self.module.Stack(
            data_dir=self.data_dir,
            run_dir=self.data_dir / "run",
            log_dir=self.data_dir / "log",
            static_root=self.data_dir / "public" / "static",
            address="127.0.0.1",
            port=self.port,
            daphne_instances=1,
            own_redis=False,
            allowed_hosts=["127.0.0.1"],
            demo_users=False,
        )
        self.socket = self.config.run_dir / "floor.sock"
        self.processes = []

    def start(self):
        for directory in (self.config.run_dir / "nginx", self.config.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.config.static_root.mkdir(parents=True, exist_ok=True)
        (self.config.static_root / "bench.txt").write_text("ok\n")
        self.module.write_nginx_conf(self.config, [self.socket])
        log = open(self.config.log_dir / "floor.log", "wb")  # noqa: SIM115 - outlives start()
        self.processes.append(
            subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("floor.py")), str(self.socket)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        nginx = self.module.find_program("nginx")
        self.processes.append(subprocess.Popen(self.module.nginx_command(self.config, nginx)))
        self.wait_ready()

    def wait_ready(self):
        def serving():
            if any(process.poll() is not None for process in self.processes):
                raise RuntimeError(f"floor exited; see {self.config.log_dir}")
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/static/bench.txt"):
                return self.socket.exists()

        try:
            wait_until(serving, "the floor to serve", START_TIMEOUT, retry_on=OSError)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes = []

    def chat_path(self, room):
        return f"/ws/chat/{room}/"

    def push_socket(self):
        return "/ws/notifications/", []

    def handshake_path(self):
        return "/ws/echo/"

    def push_request(self, text):
        query = urllib.parse.urlencode({"text": text})
        return http_request("GET", f"/ws/publish/notifications/?{query}", self.port)

    def http_path(self):
        return "/static/bench.txt"

    def ws_tier_pids(self):
        return [self.processes[0].pid]

    def nginx_pids(self):
        return children(self.processes[1].pid)
