"""Where each process serves its metrics: never on the public site.

Every process gets a listener of its own beside the socket it serves on, derived from its
bind (``metrics_bind``): ``unix:/run/app/daphne-1.sock`` → ``/run/app/daphne-1.metrics.sock``,
``tcp:0.0.0.0:8001`` → port 9001. A unix socket lives in the sockets' directory, which only
the app and nginx may enter; nginx's private metrics server (127.0.0.1 only, see
deploy/nginx/metrics.conf) is how Prometheus reaches them, one path per process. gunicorn's
master serves every worker's metrics (prometheus_client's multiprocess collector); each
daphne serves its own.

The listener is a small threaded HTTP server: a scrape is rendered on its own thread, so it
never waits behind daphne's event loop, and the loop never waits for it.
"""

import contextlib
import logging
import os
import socket
import socketserver
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import MetricsHandler

logger = logging.getLogger(__name__)

# tcp:HOST:PORT binds (compose) serve metrics on PORT + this, on the same interface: the
# containers' own network, never published.
TCP_PORT_OFFSET = 1000


def metrics_bind(bind):
    """The metrics listener of a process bound to ``bind`` (``unix:PATH``, ``tcp:HOST:PORT``)."""
    if bind.startswith("unix:"):
        return f"unix:{bind.removeprefix('unix:').removesuffix('.sock')}.metrics.sock"
    host, _, port = bind.removeprefix("tcp:").rpartition(":")
    if not (host and port.isdigit()):
        raise ValueError(f"cannot derive a metrics listener from {bind!r}")
    return f"tcp:{host}:{int(port) + TCP_PORT_OFFSET}"


def counts_file(bind):
    """Where a process serving metrics at ``bind`` leaves its counts when it stops, for the
    next one of the same name (realtime.metrics.save_counts): beside its metrics socket.
    None for TCP: a container's successor starts afresh, in a new container."""
    kind, _, rest = bind.partition(":")
    return Path(rest.removesuffix(".metrics.sock") + ".counts.json") if kind == "unix" else None


def systemd_bind(fd=3):
    """``unix:PATH`` of the socket systemd passed as ``fd`` (socket activation)."""
    with socket.socket(fileno=os.dup(fd)) as passed:
        address = passed.getsockname()
    if not isinstance(address, str) or not address:
        raise ValueError(f"systemd passed a socket that is not a unix path: {address!r}")
    return f"unix:{address}"


class StaleSocketError(RuntimeError):
    """Another live process already serves a unix socket we were asked to bind."""


def clear_stale_unix_socket(path):
    """Remove a socket file left by a killed process, refusing to steal a live one.

    A crashed process leaves its socket file behind and the next bind fails with
    "address already in use", the classic cause of units that never restart.
    """
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
    else:
        raise StaleSocketError(f"{path} is already served by another process")
    finally:
        probe.close()


class _Handler(MetricsHandler):
    def address_string(self):  # a unix socket's peer has no address
        return "local"


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def multiprocess_registry():
    """Every gunicorn worker's metrics, live and dead, from PROMETHEUS_MULTIPROC_DIR."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def serve(bind, registry=REGISTRY, collectors=()):
    """Serve ``registry`` (plus ``collectors``) at ``bind`` on a daemon thread; the server."""
    for collector in collectors:
        registry.register(collector)
    handler = _Handler.factory(registry)
    kind, _, rest = bind.partition(":")
    if kind == "unix":
        clear_stale_unix_socket(rest)
        server = _UnixServer(rest, handler)
        # Group may connect: nginx, whose group owns the sockets' directory (setgid).
        os.chmod(rest, 0o660)
    else:
        host, _, port = rest.rpartition(":")
        server = ThreadingHTTPServer((host, int(port)), handler)
        server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("metrics at %s", bind)
    return server


def stop(server):
    """Stop serving, and remove a unix socket's file: a stopped process leaves none."""
    server.shutdown()
    server.server_close()
    if isinstance(server.server_address, str):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(server.server_address)
