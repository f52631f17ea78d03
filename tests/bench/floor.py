#!/usr/bin/env python
"""The floor: a bare `websockets` broadcast server, the fastest a Python process can fan out.

    python tests/bench/floor.py /path/to/floor.sock

Every socket joins the room named by its path (query string ignored). A text frame from a
member is sent to every member of its room, wrapped as the app wraps a chat message. A
plain GET to /ws/publish/<rest>?text=... sends to the room /ws/<rest> (the HTTP-triggered
push: no database, no Redis). No auth, no storage, no channel layer: what is left is the
websocket work itself, one process, one event loop.
"""

import asyncio
import json
import signal
import sys
from collections import defaultdict
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import broadcast, unix_serve

rooms = defaultdict(set)


def event(text):
    return json.dumps({"type": "chat.message", "message": text}, separators=(",", ":"))


def publish(connection, request):
    url = urlsplit(request.path)
    if not url.path.startswith("/ws/publish/"):
        return None  # a websocket handshake
    room = "/ws/" + url.path.removeprefix("/ws/publish/")
    text = parse_qs(url.query).get("text", [""])[0]
    broadcast(rooms[room], event(text))
    return connection.respond(HTTPStatus.OK, "sent\n")


async def member(websocket):
    room = rooms[urlsplit(websocket.request.path).path]
    room.add(websocket)
    try:
        async for message in websocket:
            broadcast(room, event(json.loads(message).get("message", "")))
    finally:
        room.discard(websocket)


async def main(path):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with unix_serve(
        member, path, process_request=publish, ping_interval=20, compression=None, backlog=1024
    ):
        await stop


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
