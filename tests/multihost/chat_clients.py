"""Chat clients that behave like the browser's across a failover: they reconnect when the
server closes them, and a reader resumes with ?since=<last id it saw>."""

import asyncio
import contextlib
import json
import time

from websockets.exceptions import ConnectionClosed, InvalidHandshake

RETRY_SECONDS = 0.1


class Writer:
    """Posts "m0", "m1", ... to a room every ``interval`` seconds, reconnecting as needed.

    ``sent[text]`` is when the frame was handed to an open socket (not proof it was
    stored: a socket the server is closing may drop it; the database is the judge).
    """

    def __init__(self, stack, room, interval=0.2):
        self.stack, self.room, self.interval = stack, room, interval
        self.sent = {}
        self.reconnects = 0

    async def run(self):
        count = 0
        while True:
            try:
                async with self.stack.websocket(f"/ws/chat/{self.room}/", max_queue=None) as ws:
                    while True:
                        text = f"m{count}"
                        self.sent[text] = time.monotonic()  # before: a reply may beat it
                        await ws.send(json.dumps({"message": text}))
                        count += 1
                        await asyncio.sleep(self.interval)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                self.reconnects += 1
                await asyncio.sleep(RETRY_SECONDS)


class Reader:
    """Receives a room's messages; after a close it reconnects with ?since=<last id>.

    ``live`` maps id → (monotonic time received, text) for messages received on a socket
    that was open before they were sent; ``resumed`` holds ids that came in a backlog;
    ``duplicates`` ids received more than once.
    """

    def __init__(self, stack, room, writer):
        self.stack, self.room, self.writer = stack, room, writer
        self.live, self.resumed, self.duplicates = {}, set(), []
        self.last_id = None
        self.closes = []  # close codes the server sent
        self.new_message = asyncio.Event()

    def path(self):
        since = "" if self.last_id is None else f"?since={self.last_id}"
        return f"/ws/chat/{self.room}/{since}"

    async def run(self):
        while True:
            try:
                async with self.stack.websocket(self.path(), max_queue=None) as ws:
                    opened = time.monotonic()
                    async for raw in ws:
                        self.receive(json.loads(raw), opened)
                    self.closes.append(ws.close_code)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as error:
                self.closes.append(getattr(getattr(error, "rcvd", None), "code", repr(error)))
            await asyncio.sleep(RETRY_SECONDS)

    def receive(self, frame, opened):
        if frame.get("type") != "chat.message":
            return
        if frame["id"] in self.live or frame["id"] in self.resumed:
            self.duplicates.append(frame["id"])
        sent = self.writer.sent.get(frame["message"])
        if sent is not None and sent > opened:
            self.live[frame["id"]] = (time.monotonic(), frame["message"])
        else:
            self.resumed.add(frame["id"])
        self.last_id = max(self.last_id or 0, frame["id"])
        self.new_message.set()

    async def wait_for(self, predicate, timeout, what):
        """Until ``predicate()`` holds, re-checked as messages arrive."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout}s; closes: {self.closes}")
            self.new_message.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.new_message.wait(), 0.5)
