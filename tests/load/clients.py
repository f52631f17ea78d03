"""The load rig's clients: members that resume as the page's client does.

Each member is one websocket (a chat room's member or a user's notification feed) that,
like app/web/static/web/js/reconnecting-socket.js, reconnects after any drop: at once with
0-0.5 s of jitter after close code 1012, else with exponential backoff and equal jitter
(0.25-0.5 s, doubling up to 7.5-15 s); each attempt resumes with ``?since=<last id>`` and
ids seen twice are shown once. A member records every id it received, in order, and each
drop: when, the close code, when it was open again and when it was caught up (the first
message posted after it reopened had arrived: the server replays before it relays, so
everything before had too).

Thousands of members per process: bare asyncio protocols (bench.client.ClientProtocol),
several processes (bench.client.ClientPool with LoadWorker).
"""

import asyncio
import json
import random
import time
from datetime import datetime
from time import monotonic

from bench.client import ClientProtocol, handshake_request

HANDSHAKE_TIMEOUT = 15
# reconnecting-socket.js: codes after which the same request cannot succeed.
GIVE_UP = {1007, 1009, 4400, 4401, 4404}
SERVICE_RESTART = 1012


def restart_delay():
    """backoff.js restartDelay: a random share of half a second."""
    return random.random() * 0.5


def backoff_delay(attempt, base=0.5, cap=15.0):
    """backoff.js backoffDelay: half the ceiling plus a random share of the other half."""
    ceiling = min(cap, base * 2**attempt)
    return ceiling / 2 + random.random() * ceiling / 2


def posted_at(frame):
    """When the server stored a message (its "created"), as a Unix time."""
    return datetime.fromisoformat(frame["created"]).timestamp()


class MemberSocket(ClientProtocol):
    def __init__(self, request, member):
        super().__init__(request)
        self.member = member
        self.started = monotonic()

    def connection_made(self, transport):
        super().connection_made(transport)
        self.member.socket = self
        # A server too busy to answer the upgrade counts as a failed handshake too.
        self.member.worker.loop.call_later(HANDSHAKE_TIMEOUT, self.give_up_waiting)

    def give_up_waiting(self):
        if not self.open and not self.transport.is_closing():
            self.transport.abort()

    def opened(self):
        self.member.opened(self)

    def text(self, payload, now):
        self.member.text(payload)

    def closed(self, code, was_open):
        self.member.closed(self, code, was_open)


class Member:
    """One resuming client of ``path`` (``?since=`` added), from id ``since`` on."""

    def __init__(self, worker, path, since, headers):
        self.worker, self.path, self.last_id, self.headers = worker, path, since, headers
        self.received = []  # ids, in arrival order, copies included
        self.shown = set()
        self.drops = []  # [dropped_at, close code, open again at, caught up at]
        self.attempt = 0
        self.socket = None
        self.gave_up = None
        self.stopped = False

    # -- connecting -------------------------------------------------------------------------

    def connect(self):
        separator = "&" if "?" in self.path else "?"
        path = f"{self.path}{separator}since={self.last_id}"
        request = handshake_request(self.worker.host, self.worker.port, path, self.worker.origin,
                                    self.headers)  # fmt: skip
        self.worker.loop.create_task(self._connect(request))

    async def _connect(self, request):
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                await self.worker.loop.create_connection(
                    lambda: MemberSocket(request, self), self.worker.host, self.worker.port
                )
        except (OSError, TimeoutError):
            self.failed_handshake()

    def failed_handshake(self):
        self.worker.handshake_failures.append(time.time())
        self.retry(None)

    def opened(self, socket):
        self.attempt = 0
        self.worker.handshakes.append(monotonic() - socket.started)
        if self.drops and self.drops[-1][2] is None:
            self.drops[-1][2] = time.time()

    def closed(self, socket, code, was_open):
        if socket is not self.socket:
            return
        self.socket = None
        if not was_open:  # refused or cut during the handshake
            self.failed_handshake()
            return
        if not self.drops or self.drops[-1][2] is not None:
            self.drops.append([time.time(), code, None, None])
        self.retry(code)

    def retry(self, code):
        if self.stopped:
            return
        if code in GIVE_UP:
            self.gave_up = code
            return
        delay = restart_delay() if code == SERVICE_RESTART else backoff_delay(self.attempt)
        self.attempt += 1
        self.worker.loop.call_later(delay, self.connect)

    # -- frames -----------------------------------------------------------------------------

    def text(self, payload):
        frame = json.loads(payload)
        if "id" not in frame:
            return  # an error frame: counted by the close that follows
        self.received.append(frame["id"])
        if frame["id"] in self.shown:
            return  # a copy: shown once
        self.shown.add(frame["id"])
        self.last_id = max(self.last_id, frame["id"])
        drop = self.drops[-1] if self.drops else None
        if drop and drop[2] is not None and drop[3] is None and posted_at(frame) >= drop[2]:
            drop[3] = time.time()

    def summary(self):
        return {
            "received": self.received,
            "drops": self.drops,
            "open": self.socket is not None and self.socket.open,
            "gave_up": self.gave_up,
        }

    def stop(self):
        self.stopped = True
        if self.socket is not None:
            self.socket.transport.close()


class LoadWorker:
    """The members of one client process; the orchestrator's commands are its methods."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.members = []
        self.handshakes = []  # seconds each successful handshake took
        self.handshake_failures = []  # when each failed attempt ended (time.time())

    async def start(self, host, port, members, per_second):
        """Connect ``members`` ([(path, since, headers)]) at ``per_second``; returns once
        every one is open (or gave up), with the number open."""
        self.host, self.port, self.origin = host, port, f"http://{host}:{port}"
        begin = monotonic()
        for index, (path, since, headers) in enumerate(members):
            member = Member(self, path, since, headers)
            self.members.append(member)
            await asyncio.sleep(max(0.0, begin + index / per_second - monotonic()))
            member.connect()
        return await self.until_open(60)

    async def until_open(self, timeout):
        """Every member open (or given up): the number open, once so or at the timeout."""
        deadline = monotonic() + timeout
        while monotonic() < deadline:
            if all(m.gave_up or (m.socket and m.socket.open) for m in self.members):
                break
            await asyncio.sleep(0.1)
        return sum(1 for m in self.members if m.socket and m.socket.open)

    async def received_counts(self):
        return [len(m.shown) for m in self.members]

    async def summaries(self):
        return {
            "members": [m.summary() for m in self.members],
            "handshakes": self.handshakes,
            "handshake_failures": self.handshake_failures,
        }

    async def shutdown(self):
        """Close every member for good (they do not reconnect)."""
        for member in self.members:
            member.stop()
        self.members = []
        return True
