"""Several app hosts on one highly available channel layer, with real hosts (namespaces)."""

import json
import uuid

from e2e.conftest import receive_until


def room_name():
    return f"mh-{uuid.uuid4().hex[:8]}"


def is_chat(text):
    return lambda frame: frame.get("type") == "chat.message" and frame["message"] == text


async def test_sockets_on_two_hosts_share_a_room(cluster):
    a, b = cluster.stacks["app-a"], cluster.stacks["app-b"]
    room = room_name()
    async with a.websocket(f"/ws/chat/{room}/") as on_a, b.websocket(f"/ws/chat/{room}/") as on_b:
        await on_a.send(json.dumps({"message": "from A"}))
        await receive_until(on_b, is_chat("from A"))
        await on_b.send(json.dumps({"message": "from B"}))
        await receive_until(on_a, is_chat("from B"))
