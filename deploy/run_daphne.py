#!/usr/bin/env python
"""Start one daphne instance: the one place daphne's flags live.

The local stack, systemd (``daphne@.service``) and compose all start daphne through this
script, so every instance runs the same way. Run it with the project's Python::

    .venv/bin/python deploy/run_daphne.py --bind unix:/run/app/daphne-1.sock
    .venv/bin/python deploy/run_daphne.py --bind tcp:0.0.0.0:8001

``--bind`` (or ``DAPHNE_BIND``) is ``unix:PATH``, ``tcp:HOST:PORT``, or ``systemd`` to
adopt the listening socket systemd passes in (socket activation, ``daphne@.socket``).
Its metrics are served beside it (realtime.metrics_endpoint: ``daphne-1.sock`` →
``daphne-1.metrics.sock``; port + 1000 for TCP).
"""

import argparse
import asyncio
import gc
import inspect
import logging
import os
import socket
import sys
import time
from importlib.metadata import version
from pathlib import Path


def choose_event_loop(name):
    """Make asyncio's next new loop a uvloop one (DAPHNE_EVENT_LOOP=uvloop, the default).

    daphne.server creates its loop with asyncio.new_event_loop() when it is first
    imported, and Twisted's asyncio reactor only asks that loop for fd readiness, timers
    and callbacks, all of which uvloop implements; the consumers, the channel layer's
    queues and every await then run on libuv. Public API only: an event loop policy set
    before the import. ``asyncio`` (or uvloop not installed) keeps the stock loop.
    """
    if name not in ("uvloop", "asyncio"):
        sys.exit(f"run_daphne: DAPHNE_EVENT_LOOP must be uvloop or asyncio, got {name!r}")
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            return
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


sys.path.insert(0, str(Path(__file__).resolve().parent))
import project  # noqa: E402 - deploy/project.py, beside this file

# The environment file first: it may choose the event loop, and it names the settings.
DJANGO_DIR = project.setup()
if __name__ == "__main__":  # not when tests import this module for its constants
    choose_event_loop(os.environ.get("DAPHNE_EVENT_LOOP") or "uvloop")
    # One process, one registry: never gunicorn's multiprocess files, even if the
    # environment names them (prometheus_client reads this when first imported).
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# Importing daphne.server installs Twisted's asyncio reactor: it must come after the
# event loop policy and before anything else that imports Twisted.
import daphne.server  # noqa: E402
import fast_path  # noqa: E402 - deploy/fast_path.py, beside this file
from autobahn.websocket import protocol as autobahn_protocol  # noqa: E402
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol  # noqa: E402
from autobahn.websocket.types import ConnectionDeny  # noqa: E402
from daphne.cli import CommandLineInterface  # noqa: E402
from daphne.http_protocol import WebRequest  # noqa: E402
from daphne.ws_protocol import WebSocketProtocol  # noqa: E402
from fast_path import SEND_BUFFER_HIGH_WATER, buffered_bytes  # noqa: E402
from twisted.internet import abstract, defer, reactor, task  # noqa: E402
from twisted.web.http import HTTPChannel  # noqa: E402

from realtime import logs, metrics_endpoint  # noqa: E402 - the kit, in DJANGO_DIR
from realtime.close_codes import SERVICE_RESTART  # noqa: E402
from realtime.metrics import (  # noqa: E402
    restore_counts,
    save_counts,
    tally,
    watch_event_loop_lag,
)

logger = logging.getLogger("run_daphne")

# A chat message is at most 4,000 characters: 16 KB of UTF-8, 48 KB if the client escapes
# it (\uXXXX pairs). The app answers longer text frames (settings'
# WEBSOCKET_MAX_MESSAGE_LENGTH, 48 Ki characters) with an error frame; above this, autobahn
# closes the socket with 1009 (message too big) before buffering the rest.
MAX_MESSAGE_BYTES = 64 * 1024

DAPHNE_FLAGS = [
    # The client's address from nginx's X-Forwarded-For (nginx overwrites it).
    "--proxy-headers",
    # Keepalive pings well inside nginx's proxy_read_timeout; drop peers that vanished.
    "--ping-interval", "20",
    "--ping-timeout", "30",
    # Daphne's default closes every websocket after 24 h; clients reconnect anyway.
    "--websocket_timeout", "-1",
    "--websocket_connect_timeout", "10",
    "--application-close-timeout", "10",
    "--websocket-max-message-size", str(MAX_MESSAGE_BYTES),
    "--websocket-max-frame-size", str(MAX_MESSAGE_BYTES),
    # No per-connection access log: nginx logs every request (without query strings).
    "-v", "0",
]  # fmt: skip


# On SIGTERM (supervisord, systemd, compose stop) every open websocket is closed with
# 1012 "service restart" so clients reconnect at once (to another daphne, through nginx),
# instead of seeing a dropped connection. Not all at once: each close brings a handshake
# and a replay to the other daphnes, and thousands in the same instant overwhelmed them
# (tests/load: failed handshakes, seconds to come back); at 500 a second, one daphne
# taking over 5,000 sockets from another still fell behind its handshakes, and clients gave
# up on them. So at DAPHNE_DRAIN_RATE closes a second, faster if that would take longer
# than DRAIN_MAX_SECONDS; then consumers get SHUTDOWN_GRACE_SECONDS to finish. The stop
# timeouts of the process managers (supervisord stopwaitsecs, systemd TimeoutStopSec,
# compose stop_grace_period) exceed both.
DRAIN_RATE = 250
DRAIN_MAX_SECONDS = 20
DRAIN_TICK_SECONDS = 0.05
SHUTDOWN_GRACE_SECONDS = 5


# Python's cyclic garbage collector runs a young collection every 700 net allocations and,
# now and then, a full one over every live object. A fan-out allocates a dozen objects per
# member (futures, tasks, frames), so a message to a 2,000-member room triggered dozens
# of collections, and the full ones walk every object of every open socket: the profile
# showed the time inside asyncio's allocation sites. With the threshold raised, young
# collections run once per several messages; freezing moves everything loaded at start
# (Django, the app) out of every collection for good. Memory is freed by reference
# counting as before: only garbage cycles wait longer.
GC_THRESHOLDS = (50_000, 20, 100)
# ...and every closed socket leaves cycles (its consumer, tasks, protocol): with full
# collections that rare, connection churn grew the process by a third in six waves of
# 5,000 sockets (tests/load/soak.py), against 2 % with the stock collector. So after a
# burst of disconnects, once daphne has reaped their applications, one full collection.
CHURN_DISCONNECTS = 1000
CHURN_CHECK_SECONDS = 5


def tune_garbage_collector(mode):
    """DAPHNE_GC: ``tuned`` (the default) or ``stock`` (Python's own thresholds). True if
    tuned: then churn needs its collections (GracefulServer.collect_after_churn)."""
    if mode not in ("tuned", "stock"):
        sys.exit(f"run_daphne: DAPHNE_GC must be tuned or stock, got {mode!r}")
    if mode == "tuned":
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
    return mode == "tuned"


# A send waits while its connection holds more than this unsent (fast_path.py says why).
DRAIN_POLL_SECONDS = 0.01


class ServerWebSocketProtocol(WebSocketProtocol):
    """daphne's protocol, able to send every close code RFC 6455 lets a server send, and
    counting the frames and bytes it carries (realtime.metrics: two additions a frame).

    autobahn's sendClose() accepts only 1000 and 3000-4999, so a consumer closing with
    1008 (policy violation) or 1013 (try again later) would crash into a bare 1011.

    A socket the server closes reports the server's code to the application (the
    disconnect log line, the closes metric), not what came back: autobahn takes a client
    echoing 1012 or 1013 for a protocol violation and reports 1006.
    """

    server_close_code = None  # the code this side closed with, if it closed first

    def onMessage(self, payload, isBinary):
        tally.frames_received += 1
        tally.bytes_received += len(payload)
        super().onMessage(payload, isBinary)

    def sendMessage(self, payload, *args, **kwargs):
        tally.frames_sent += 1
        tally.bytes_sent += len(payload)
        return super().sendMessage(payload, *args, **kwargs)

    def sendPreparedMessage(self, preparedMsg):
        # The fast path's frames (realtime.fanout: framed once for many sockets). daphne
        # accepts no compression, so these never go through sendMessage as well.
        tally.frames_sent += 1
        tally.bytes_sent += len(preparedMsg.payload)
        super().sendPreparedMessage(preparedMsg)

    def serverClose(self, code=None):
        self.server_close_code = code or AutobahnProtocol.CLOSE_STATUS_CODE_NORMAL
        if code in AutobahnProtocol.CLOSE_STATUS_CODES_ALLOWED:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code)

    def close_for_restart(self):
        self.server_close_code = SERVICE_RESTART
        self.sendCloseFrame(code=SERVICE_RESTART, reasonUtf8=b"server restarting", isReply=False)

    def onClose(self, wasClean, code, reason):
        super().onClose(wasClean, self.server_close_code or code, reason)


class FastPathWebSocketProtocol(fast_path.FrameWriter, ServerWebSocketProtocol):
    """The protocol with the fast path (DAPHNE_FAST_PATH=on): deploy/fast_path.py."""


class GracefulServer(daphne.server.Server):
    """daphne's server, stopping in an order clients and nginx can act on."""

    fast_path = True  # DAPHNE_FAST_PATH, set by main()
    metrics_bind = None  # where to serve this instance's metrics (set by main)
    counts_file = None  # where a graceful stop leaves its counts for the next instance
    metrics_server = None  # serving them (start_metrics), until the stop is done

    def run(self):
        self.ports = []
        self.socket_activated = any(e.startswith("systemd:") for e in self.endpoints)
        self.disconnects = 0
        reactor.callWhenRunning(self.use_server_protocol)
        reactor.callWhenRunning(self.start_metrics)
        if tune_garbage_collector(os.environ.get("DAPHNE_GC") or "tuned"):
            task.LoopingCall(self.collect_after_churn).start(CHURN_CHECK_SECONDS, now=False)
        super().run()

    def protocol_disconnected(self, protocol):
        self.disconnects += 1
        super().protocol_disconnected(protocol)
        if isinstance(protocol, WebRequest):
            forget_upgraded_request(protocol)

    def collect_after_churn(self):
        if self.disconnects >= CHURN_DISCONNECTS:
            self.disconnects = 0
            gc.collect()

    def start_metrics(self):
        """This instance's metrics endpoint, and the event-loop lag they report."""
        if self.counts_file is not None:
            restore_counts(self.counts_file)
        if self.metrics_bind:
            self.metrics_server = metrics_endpoint.serve(self.metrics_bind)
        watch_event_loop_lag(daphne.server.twisted_loop)
        loop = type(daphne.server.twisted_loop).__module__.partition(".")[0]
        fast = "on" if self.fast_path else "off"
        logger.info("run_daphne: %s, fast path: %s, event loop: %s", logs.process_name, fast, loop)

    def use_server_protocol(self):
        self.ws_factory.protocol = (
            FastPathWebSocketProtocol if self.fast_path else ServerWebSocketProtocol
        )
        # On a protocol error (a frame over the size limit, invalid UTF-8), send the close
        # code (1009, 1007...) before closing; autobahn's default drops the TCP
        # connection, which a client sees as a bare 1006.
        self.ws_factory.setProtocolOptions(failByDrop=False)

    def create_application(self, protocol, scope):
        fast_path.offer_frames(protocol, scope)
        return super().create_application(protocol, scope)

    async def handle_reply(self, protocol, message):
        await super().handle_reply(protocol, message)
        transport = getattr(protocol, "transport", None)
        if transport is None or buffered_bytes(transport) <= SEND_BUFFER_HIGH_WATER:
            return
        tally.send_buffer_waits += 1
        while not transport.disconnected and buffered_bytes(transport) > SEND_BUFFER_HIGH_WATER:
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    def listen_success(self, port):
        self.ports.append(port)
        super().listen_success(port)
        # Django is loaded (daphne imports the application first) and the socket is served:
        # under systemd (Type=notify), `systemctl restart` returns now, not before.
        notify_systemd("READY=1")

    def kill_all_applications(self):
        """daphne's "before shutdown" step: say goodbye first, then cancel what is left."""
        notify_systemd("STOPPING=1")
        closed = self.close_websockets()
        closed.addCallback(lambda _: self.cancel_applications())
        closed.addCallback(lambda _: self.save_counts())
        closed.addCallback(lambda _: self.stop_metrics())
        return closed

    def save_counts(self):
        """The counts of this instance, its last closes (1012) included, for the next one
        (realtime.metrics.save_counts): a scrape would rarely fall in its last second."""
        if self.counts_file is not None:
            save_counts(self.counts_file)

    def stop_metrics(self):
        """Last: the counts are saved, and a stopped daphne leaves no socket behind."""
        if self.metrics_server is not None:
            metrics_endpoint.stop(self.metrics_server)

    def close_websockets(self):
        for port in self.ports:
            if self.socket_activated:
                # systemd's socket: stop accepting, but leave it to systemd (Twisted's
                # stopListening would unlink the file, and the next instance could not
                # start). Connections made meanwhile wait in its backlog for that instance.
                port.stopReading()
            else:
                # Our own socket: it disappears, so nginx sends new connections (and the
                # clients reconnecting now) to the other daphne processes at once.
                port.stopListening()
        open_sockets = []
        for protocol in list(self.connections):
            if is_event_stream(protocol):
                # An open Server-Sent Events stream (/sse/) never ends by itself: end it
                # cleanly, and EventSource reconnects (through nginx, to another daphne),
                # resuming with Last-Event-ID, instead of holding the stop for the grace.
                protocol.finish()
                continue
            if not isinstance(protocol, WebSocketProtocol):
                continue
            if protocol.state == protocol.STATE_OPEN:
                open_sockets.append(protocol)
            elif getattr(protocol, "handshake_deferred", None) is not None:
                protocol.handshake_deferred.errback(ConnectionDeny(503, "Server restarting"))
                del protocol.handshake_deferred
        drained = self.close_gradually(open_sockets)
        drained.addCallback(
            lambda _: self.wait_until_finished(time.monotonic() + SHUTDOWN_GRACE_SECONDS)
        )
        return drained

    def close_gradually(self, sockets):
        """Send 1012 to ``sockets``, a batch every tick at the drain rate; fires when done."""
        rate = max(int(os.environ.get("DAPHNE_DRAIN_RATE") or DRAIN_RATE), 1)
        rate = max(rate, len(sockets) / DRAIN_MAX_SECONDS)
        batch = max(1, round(rate * DRAIN_TICK_SECONDS))
        done = defer.Deferred()

        def close_a_batch():
            for protocol in sockets[:batch]:
                if protocol.state == protocol.STATE_OPEN:
                    protocol.close_for_restart()
            del sockets[:batch]
            if sockets:
                reactor.callLater(DRAIN_TICK_SECONDS, close_a_batch)
            else:
                done.callback(None)

        close_a_batch()
        return done

    def running_applications(self):
        return [
            details["application_instance"]
            for details in self.connections.values()
            if "application_instance" in details and not details["application_instance"].done()
        ]

    def wait_until_finished(self, deadline):
        """Until every connection has closed and its consumer has run its disconnect
        handler (which logs the close and leaves its groups), or the deadline passes."""
        open_connections = [d for d in self.connections.values() if "disconnected" not in d]
        if time.monotonic() >= deadline or not (open_connections or self.running_applications()):
            return defer.succeed(None)
        return task.deferLater(reactor, 0.05, self.wait_until_finished, deadline)

    def cancel_applications(self):
        """daphne's own kill_all_applications, minus its assumption that every connection
        still has an application (one that ended may already have been reaped)."""
        running = self.running_applications()
        for application in running:
            application.cancel()
        waiting = defer.Deferred.fromFuture(asyncio.gather(*running, return_exceptions=True))
        return waiting.addErrback(lambda _: None)


def notify_systemd(state):
    """sd_notify(3), without libsystemd: one datagram to $NOTIFY_SOCKET, which systemd sets
    for Type=notify units (elsewhere there is none, and nothing is sent)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.connect(address)
        notify.sendall(state.encode())


def forget_upgraded_request(request):
    """Let go of the HTTP request a websocket was upgraded from.

    daphne hands the connection to the websocket protocol and says the request is gone
    (protocol_disconnected), but Twisted's HTTPChannel, which stays the transport's
    producer, still lists it among its requests: its headers, body buffer and addresses,
    about 2 KiB, lived as long as the socket (docs/benchmarks/memory-census.md). Nothing
    reads that list once the connection is upgraded (the channel gets no more data, and
    its connectionLost, which would, is the websocket's now). daphne's upgrade is the one
    place a request's transport becomes None.
    """
    channel = request.channel
    if request.transport is None and channel is not None and request in channel.requests:
        channel.requests.remove(request)


def is_event_stream(protocol):
    """An HTTP connection in the middle of a text/event-stream response."""
    if not isinstance(protocol, WebRequest) or protocol.finished:
        return False
    if not getattr(protocol, "_response_started", False):
        return False
    content_type = protocol.responseHeaders.getRawHeaders(b"content-type", [b""])[0]
    return content_type.startswith(b"text/event-stream")


def clear_stale_unix_socket(path):
    """A socket file left by a killed daphne goes; a live one is not stolen
    (realtime.metrics_endpoint.clear_stale_unix_socket)."""
    try:
        metrics_endpoint.clear_stale_unix_socket(path)
    except metrics_endpoint.StaleSocketError as error:
        sys.exit(f"run_daphne: {error}")


# Connections waiting to be accepted. Twisted's default is 50: a burst of handshakes (a
# deploy, a reconnect wave after a restart) overflows it, and nginx gets EAGAIN from a
# full unix socket at once (it does not wait as for TCP), answering 502. The kernel caps
# it at net.core.somaxconn (4096 on current kernels); the systemd socket unit asks for
# as many (Backlog=).
LISTEN_BACKLOG = 4096


def endpoint(bind):
    """Translate --bind into a Twisted endpoint description for daphne's -e."""
    kind, _, rest = bind.partition(":")
    if kind == "unix" and rest:
        clear_stale_unix_socket(rest)
        # lockfile=0: staleness is handled above; Twisted's lock file is what goes stale.
        return f"unix:{rest}:mode=660:lockfile=0:backlog={LISTEN_BACKLOG}"
    if kind == "tcp" and rest.count(":") == 1:
        host, port = rest.split(":")
        return f"tcp:port={int(port)}:interface={host}:backlog={LISTEN_BACKLOG}"
    if bind == "systemd":
        # The one socket systemd passed (LISTEN_FDS=1; its backlog is the socket unit's).
        # systemd owns it, so it outlives a daphne restart: connections wait in its backlog
        # instead of being refused.
        return "systemd:domain=UNIX:index=0"
    sys.exit(f"run_daphne: --bind must be unix:PATH, tcp:HOST:PORT or systemd, got {bind!r}")


def process_name(bind):
    """What this instance is called in its logs: its socket's name (daphne-1), or its port."""
    kind, _, rest = bind.partition(":")
    return Path(rest).stem if kind == "unix" else f"daphne:{rest.rpartition(':')[2]}"


# What this launcher reaches into beyond daphne's options, each for a gap upstream. Checked
# at start: an upgrade that moves one stops here with one line naming the package and its
# version, instead of failing mid-traffic (or, for the send buffer, silently).
INTERNALS = [
    # Connection draining, 1012 closes spread over a window (daphne#177): daphne's shutdown
    # step, its listening ports and its per-connection bookkeeping.
    ("daphne", daphne.server.Server, "kill_all_applications"),
    ("daphne", daphne.server.Server, "listen_success"),
    ("daphne", daphne.server.Server, "protocol_disconnected"),
    ("daphne", daphne.server.Server, "connections"),
    ("daphne", daphne.server.Server, "ws_factory"),
    # The fast path (fast_path.py, which lists what it reaches into itself): the scope.
    ("daphne", daphne.server.Server, "create_application"),
    # Backpressure: a send waits while the connection is backed up (handle_reply), and
    # Twisted exposes no size for a transport's send buffer.
    ("daphne", daphne.server.Server, "handle_reply"),
    ("Twisted", abstract.FileDescriptor, "dataBuffer"),
    ("Twisted", abstract.FileDescriptor, "_tempDataLen"),
    # Close codes 1008, 1012, 1013 (daphne#374, autobahn-python#1642: autobahn's sendClose
    # accepts only 1000 and 3000-4999).
    ("autobahn", AutobahnProtocol, "CLOSE_STATUS_CODES_ALLOWED"),
    ("autobahn", AutobahnProtocol, "sendCloseFrame"),
    ("daphne", WebSocketProtocol, "serverClose"),
    # Memory: the request a websocket was upgraded from, still listed by its HTTP channel.
    ("Twisted", HTTPChannel, "requests"),
    # Ending open Server-Sent Events streams on a stop: is a response streaming yet?
    ("daphne", WebRequest, "_response_started"),
    # Cheaper handshakes (main): the pretty-printer autobahn formats its debug lines with.
    ("autobahn", autobahn_protocol, "pformat"),
]
# The releases those were checked against; another one starts with a warning.
TESTED_RELEASES = {"daphne": ("4.1", "4.2"), "autobahn": ("24.", "25.", "26."),
                   "Twisted": ("24.", "25.", "26.")}  # fmt: skip


def check_internals():
    """Exit with one line if an internal the launcher relies on is gone; warn on a release
    it was not tested with."""
    for package, owner, name in INTERNALS:
        if not (hasattr(owner, name) or name in inspect.getsource(owner)):
            sys.exit(
                f"run_daphne: {package} {version(package)} has no {owner.__name__}.{name}, which "
                "this launcher relies on (see INTERNALS in deploy/run_daphne.py)"
            )
    for package, tested in TESTED_RELEASES.items():
        if not version(package).startswith(tested):
            print(f"run_daphne: warning: {package} {version(package)} is untested here "
                  f"(tested: {', '.join(tested)}x)", file=sys.stderr, flush=True)  # fmt: skip


def main(argv=None):
    check_internals()
    # autobahn pretty-prints its 40-odd options on every new connection for a debug line
    # that is formatted whatever the log level: a tenth of a daphne's time while it took
    # over thousands of sockets (py-spy, tests/load). repr says the same, at a fraction.
    autobahn_protocol.pformat = repr
    GracefulServer.fast_path = fast_path.switched_on(os.environ.get("DAPHNE_FAST_PATH") or "on")
    if GracefulServer.fast_path:
        fast_path.check_internals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=os.environ.get("DAPHNE_BIND"), required=False)
    args = parser.parse_args(argv)
    if not args.bind:
        parser.error("--bind (or DAPHNE_BIND) is required")
    os.chdir(DJANGO_DIR)  # daphne imports the application relative to the working directory
    bind = metrics_endpoint.systemd_bind() if args.bind == "systemd" else args.bind
    logs.process_name = process_name(bind)
    GracefulServer.metrics_bind = metrics_endpoint.metrics_bind(bind)
    GracefulServer.counts_file = metrics_endpoint.counts_file(GracefulServer.metrics_bind)

    cli = CommandLineInterface()
    cli.server_class = GracefulServer
    cli.run(["-e", endpoint(args.bind), *DAPHNE_FLAGS, project.application("ASGI_APPLICATION")])


if __name__ == "__main__":
    main()
