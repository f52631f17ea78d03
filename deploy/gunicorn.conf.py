"""gunicorn's settings for the HTTP tier: the one place its flags live.

Everything runs it the same way: ``gunicorn -c deploy/gunicorn.conf.py`` (the local stack,
the systemd unit, the compose services). It serves the settings' WSGI_APPLICATION, from
the project's directory (deploy/project.py); per-host values come from the environment.
"""

import multiprocessing
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import project  # noqa: E402 - deploy/project.py, beside this file

chdir = str(project.setup())

# Metrics: each worker keeps its counts in files of one directory (prometheus_client's
# multiprocess mode), and the master serves them all from one endpoint (when_ready below).
# Set here, before prometheus_client is imported, and for gunicorn's processes only: a
# daphne or a manage.py command with it set would write its metrics there too.
# GUNICORN_METRICS_DIR empty: a new private directory for each start, removed at exit, so
# two stacks never mix and nothing is left from a previous run. (A reload, which reads this
# file again, keeps the directory the master serves from: PROMETHEUS_MULTIPROC_DIR.)
PRIVATE_METRICS_DIR = "gunicorn-metrics-"
METRICS_DIR = Path(
    os.environ.get("GUNICORN_METRICS_DIR")
    or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    or tempfile.mkdtemp(prefix=PRIVATE_METRICS_DIR)
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

wsgi_app = project.application("WSGI_APPLICATION")

# Where to listen. Under systemd the socket unit hands over its socket (LISTEN_FDS) and
# this is ignored; the local stack and compose set it.
bind = [os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"]

worker_class = "sync"  # plain WSGI: every slow thing (websockets, SSE) lives in daphne
workers = int(os.environ.get("GUNICORN_WORKERS") or 2 * multiprocessing.cpu_count() + 1)
timeout = 30
# A stop waits this long for requests in flight; systemd's TimeoutStopSec matches it.
graceful_timeout = 30
# Recycle workers now and then, so a slow leak in any dependency cannot grow forever.
max_requests = 2000
max_requests_jitter = 200

# Only nginx connects (over a unix socket, or a private network in compose).
forwarded_allow_ips = "*"

# gunicorn 24+ opens a control socket in $HOME by default; two stacks on one machine would
# share it, and hardened units have no writable $HOME. Signals (HUP, TERM) are enough.
control_socket_disable = True

accesslog = "-"
# %(U)s is the path without the query string: tokens must never reach a log. The request
# id is nginx's (X-Request-ID), the one its access log and the pushes it causes carry.
access_log_format = (
    '%({x-forwarded-for}i)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %({x-request-id}i)s'
)
errorlog = "-"
# gunicorn's own loggers take the app's LOGGING (LOG_FORMAT: text or one JSON object a
# line), read from the same settings as the workers', so every line of this log has one
# format.
from django.conf import settings  # noqa: E402 - after the environment is read

logconfig_dict = settings.LOGGING


def on_starting(server):
    """Start from an empty metrics directory: counts of an earlier run are not this one's."""
    import realtime.logs

    realtime.logs.process_name = "gunicorn"
    for path in METRICS_DIR.glob("*.db"):
        path.unlink()
    METRICS_DIR.mkdir(parents=True, exist_ok=True)


def when_ready(server):
    """The master serves every worker's metrics beside gunicorn's own socket (unix:
    gunicorn.sock → gunicorn.metrics.sock; realtime.metrics_endpoint)."""
    from realtime.metrics_endpoint import metrics_bind, multiprocess_registry, serve

    address = server.LISTENERS[0].sock.getsockname()
    bind = f"unix:{address}" if isinstance(address, str) else f"tcp:{address[0]}:{address[1]}"
    registry = multiprocess_registry()
    server.metrics_server = serve(metrics_bind(bind), registry, [WorkerMemory(server)])


class WorkerMemory:
    """The resident memory of gunicorn's master and workers (each daphne reports its own as
    process_resident_memory_bytes)."""

    def __init__(self, server):
        self.server = server

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        pids = [os.getpid(), *self.server.WORKERS]
        memory = GaugeMetricFamily(
            "realtime_gunicorn_resident_memory_bytes",
            "Resident memory of gunicorn's master and all its workers.",
            value=sum(resident_bytes(pid) for pid in pids),
        )
        workers = GaugeMetricFamily(
            "realtime_gunicorn_workers", "gunicorn's running workers.", value=len(pids) - 1
        )
        return [memory, workers]


def resident_bytes(pid):
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # a worker that just exited
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def child_exit(server, worker):
    """A worker's counts stay (they are summed with the others'); its gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    from realtime.metrics_endpoint import stop

    if getattr(server, "metrics_server", None) is not None:
        stop(server.metrics_server)
    if METRICS_DIR.name.startswith(PRIVATE_METRICS_DIR):  # the private one made above
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


def post_worker_init(worker):
    """Each sync worker sends to the channel layer through one event loop of its own,
    rather than a new loop and Redis connection per push (realtime/broadcast.py)."""
    from realtime.broadcast import use_a_layer_loop

    use_a_layer_loop()
