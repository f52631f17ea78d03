"""gunicorn's settings for the HTTP tier: the one place its flags live.

Everything runs it the same way: ``gunicorn -c deploy/gunicorn.conf.py`` (the local stack,
the systemd unit, the compose services). It serves the settings' WSGI_APPLICATION, from
the project's directory (deploy/project.py); per-host values come from the environment.
"""

import multiprocessing
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import project  # noqa: E402 - deploy/project.py, beside this file

chdir = str(project.setup())
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
# %(U)s is the path without the query string: tokens must never reach a log.
access_log_format = '%({x-forwarded-for}i)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"


def post_worker_init(worker):
    """Each sync worker sends to the channel layer through one event loop of its own,
    rather than a new loop and Redis connection per push (realtime/broadcast.py)."""
    from realtime.broadcast import use_a_layer_loop

    use_a_layer_loop()
