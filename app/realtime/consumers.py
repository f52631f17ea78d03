"""The base consumer every websocket endpoint builds on, and the echo endpoint."""

import json
import logging

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from . import close_codes

logger = logging.getLogger(__name__)


def encode(content):
    """JSON as sent on the wire: compact, UTF-8 kept as is."""
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


class JsonTextConsumer(AsyncWebsocketConsumer):
    """JSON text frames in and out; anything else gets an ``{"error": ...}`` frame.

    Subclasses implement ``receive_json``. Group events built by an ``events`` module
    carry their client JSON already encoded (once, by the sender) in ``event["text"]``;
    a handler that only relays it is ``forward_event``.
    """

    async def dispatch(self, message):
        # Channels' own dispatch first hops to the sync thread to close stale database
        # connections, for every message: with a 2,000-member room that is 2,000 hops,
        # one at a time. Our consumers reach the ORM only through database_sync_to_async,
        # which already closes stale connections around each call, so skip the hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.send_error("binary frames are not supported; send JSON text")
            return
        try:
            content = json.loads(text_data)
        except ValueError as error:
            await self.send_error(f"invalid JSON: {error}")
            return
        await self.receive_json(content)

    async def receive_json(self, content):
        await self.send_error("this socket does not accept messages")

    async def send_json(self, content):
        await self.send(text_data=encode(content))

    async def send_error(self, reason):
        await self.send_json({"error": reason})

    async def refuse(self, code, reason):
        """Accept, say why, then close with ``code``.

        A refused handshake reaches a browser as a bare 1006 with no reason, so the
        client could not tell "sign in" from "bad room" from a network failure.
        """
        await self.accept()
        await self.send_error(reason)
        await self.close(code=code)

    async def forward_event(self, event):
        await self.send(text_data=event["text"])


class EchoConsumer(JsonTextConsumer):
    """``/ws/echo/``: says hello, then answers each JSON message M with ``{"echo": M}``."""

    async def connect(self):
        await self.accept()
        await self.send_json({"hello": "world"})

    async def receive_json(self, content):
        await self.send_json({"echo": content})


class NotFoundConsumer(JsonTextConsumer):
    """Any other path under /ws/: a clear close code instead of a server-side traceback."""

    async def connect(self):
        await self.refuse(close_codes.NOT_FOUND, f"no websocket endpoint at {self.scope['path']}")
