"""The fast path's daphne side (realtime/fanout.py is the application's), and how much a
connection holds unsent.

Two gaps, filled here for every websocket daphne serves, unless DAPHNE_FAST_PATH=off:

- One frame per member, built by each member's consumer. realtime.fanout instead frames a
  group event once per process and writes that frame to each member's connection: it
  finds the connection's frame writer in the scope (``scope["extensions"][FRAMES]``, the
  protocol itself, with ``prepare_frame``, ``send_frame`` and ``backed_up``), built on
  autobahn's prepareMessage / sendPreparedMessage.
- Writes that wait for the next loop turn. Twisted's transport.write() only queues the
  bytes and has the reactor watch the socket for writability (an epoll_ctl), writes on
  the next turn, then stops watching (another): three system calls and two callbacks per
  frame, a third of a fan-out's time (docs/benchmarks/profile.md). asyncio's transports
  try send() at once; so does ``write_now`` when nothing is queued ahead, and only what
  the kernel does not take is queued the Twisted way.

Both reach into autobahn and Twisted (INTERNALS). A wrong guess there would corrupt frames
rather than fail loudly, so unlike the launcher's other internals (a warning), the fast
path refuses to start on a release it was not tested with: run_daphne exits with one line
saying so, and DAPHNE_FAST_PATH=off starts daphne without it (every event then goes
through its consumer, and writes the Twisted way).
"""

import inspect
import sys
from importlib.metadata import version

from autobahn.websocket.protocol import WebSocketFactory
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from twisted.internet import abstract, tcp

FRAMES = "realtime.frames"  # realtime.fanout.FRAMES

# daphne hands each frame the application sends to Twisted, which buffers whatever the
# client has not read yet, without limit, and returns at once: a replay to a slow client
# would pile up in memory. Past this many buffered bytes on a connection, the
# application's next send waits until it drains (deploy/run_daphne.py, polling, only while
# it is backed up: the ASGI send is the only backpressure an application gets), and the
# fast path writes nothing more to it (the socket falls behind and later reads what it
# missed from the database: realtime.consumers.StoredEventConsumer).
SEND_BUFFER_HIGH_WATER = 256 * 1024


def buffered_bytes(transport):
    """Bytes a Twisted connection holds for the kernel to take (FileDescriptor's buffers;
    Twisted has no public accessor). 0 for a transport that keeps none of its own."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return 0


def write_now(transport, data):
    """``transport.write(data)``, but sent at once, as far as the kernel takes it, when
    nothing is queued ahead (the rest is queued as write() would)."""
    if (
        transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not getattr(transport, "TLS", False)
        and not buffered_bytes(transport)
    ):
        sent = transport.writeSomeData(data)
        # An exception instead of a count: the connection is lost, and write() lets
        # Twisted find that out its own way (connectionLost), as without this.
        if isinstance(sent, int) and sent > 0:
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)


class FrameWriter:
    """Mixed into daphne's websocket protocol: the connection's writes go out at once,
    and it is the frame writer realtime.fanout writes through."""

    def prepare_frame(self, text):
        """A text frame, framed once for every connection (autobahn's PreparedMessage)."""
        return self.factory.prepareMessage(text.encode())

    def send_frame(self, frame):
        """Write a prepared frame unless the connection is backed up (then False, and
        nothing is written). A connection no longer open takes nothing: True, its
        disconnect is on its way."""
        if self.state != AutobahnProtocol.STATE_OPEN:
            return True
        if self.backed_up():
            return False
        self.sendPreparedMessage(frame)
        return True

    def backed_up(self):
        return buffered_bytes(self.transport) > SEND_BUFFER_HIGH_WATER

    def sendData(self, data, sync=False, chopsize=None):
        if sync or chopsize or self.send_queue:  # autobahn's trickling writes: its own way
            return super().sendData(data, sync, chopsize)
        write_now(self.transport, data)
        return None


def offer_frames(protocol, scope):
    """A websocket's scope names its connection as its frame writer (realtime.fanout)."""
    if isinstance(protocol, FrameWriter):
        scope["extensions"] = {**(scope.get("extensions") or {}), FRAMES: protocol}


# What the fast path reaches into, each checked at start like run_daphne's INTERNALS.
INTERNALS = [
    ("autobahn", WebSocketFactory, "prepareMessage"),
    ("autobahn", AutobahnProtocol, "sendPreparedMessage"),
    ("autobahn", AutobahnProtocol, "sendData"),
    ("autobahn", AutobahnProtocol, "send_queue"),
    ("Twisted", abstract.FileDescriptor, "writeSomeData"),
    ("Twisted", abstract.FileDescriptor, "_writeDisconnected"),
    ("Twisted", abstract.FileDescriptor, "offset"),
    ("Twisted", abstract.FileDescriptor, "dataBuffer"),
    ("Twisted", abstract.FileDescriptor, "_tempDataLen"),
    ("Twisted", tcp.Connection, "writeSomeData"),
]
# The releases the fast path was tested with; on any other it refuses to start.
TESTED_RELEASES = {"autobahn": ("26.10.",), "Twisted": ("26.10.",), "daphne": ("4.2.",)}


def switched_on(value):
    """DAPHNE_FAST_PATH: ``on`` (the default) or ``off``."""
    if value not in ("on", "off"):
        sys.exit(f"run_daphne: DAPHNE_FAST_PATH must be on or off, got {value!r}")
    return value == "on"


def check_internals():
    """Exit with one line if an internal is gone or a release untested: the fast path
    writes frames by hand, where a wrong guess corrupts a stream instead of failing."""
    for package, owner, name in INTERNALS:
        if not (hasattr(owner, name) or name in inspect.getsource(owner)):
            sys.exit(
                f"run_daphne: {package} {version(package)} has no {owner.__name__}.{name}, which "
                "the fast path relies on (deploy/fast_path.py); set DAPHNE_FAST_PATH=off"
            )
    for package, tested in TESTED_RELEASES.items():
        if not version(package).startswith(tested):
            sys.exit(
                f"run_daphne: the fast path is untested with {package} {version(package)} "
                f"(tested: {', '.join(tested)}x): set DAPHNE_FAST_PATH=off to run without it, "
                "or test it and add the release to TESTED_RELEASES in deploy/fast_path.py"
            )
