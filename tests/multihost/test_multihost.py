"""Several app hosts on one highly available channel layer, with real hosts (namespaces)."""

import asyncio
import json
import time
import uuid

import pytest
from e2e.conftest import bearer, receive_until
from e2e.localstack import TIMEOUT
from multihost.chat_clients import Reader, Writer
from websockets.exceptions import ConnectionClosed

# Sentinel notices in DOWN_AFTER_MS (1 s here) and promotes within seconds; this bounds
# the whole outage as the clients see it.
FAILOVER_BOUND = 30


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


async def test_http_push_on_one_host_reaches_a_socket_on_the_other(cluster):
    a, b = cluster.stacks["app-a"], cluster.stacks["app-b"]
    token = await asyncio.to_thread(a.issue_token, f"mh-{uuid.uuid4().hex[:8]}")
    async with a.websocket("/ws/notifications/", additional_headers=bearer(token)) as on_a:
        status, body = await asyncio.to_thread(b.notify, token, "pushed on B")
        assert status == 201
        frame = await receive_until(on_a, lambda f: f.get("type") == "notification")
    assert (frame["id"], frame["text"]) == (body["id"], "pushed on B")


def app_pids(cluster):
    return {name: stack.programs() for name, stack in cluster.stacks.items()}


def persisted_ids(stack, room):
    code = (
        "from chat.models import ChatMessage; "
        f"print(list(ChatMessage.objects.filter(room={room!r}).values_list('id', flat=True)))"
    )
    return set(json.loads(stack.manage("shell", "-c", code).strip().splitlines()[-1]))


async def test_killing_the_redis_primary_fails_over_without_losing_messages(cluster, capsys):
    """kill -9 the primary while a socket on B posts and a socket on A listens.

    Sentinel promotes the replica; the app processes, unrestarted, find it through the
    Sentinels and messages flow again. What was stored meanwhile but could not be
    published reaches the open socket once A's daphne re-subscribes (a catch-up from the
    database); a resume with ?since= returns it too.
    """
    a, b = cluster.stacks["app-a"], cluster.stacks["app-b"]
    pids_before = app_pids(cluster)
    room = room_name()
    writer = Writer(b, room)
    reader = Reader(a, room, writer)
    tasks = [asyncio.create_task(client.run()) for client in (reader, writer)]
    try:
        await reader.wait_for(lambda: len(reader.live) >= 5, 30, "5 messages before the kill")
        killed_at = time.monotonic()
        last_before = max(reader.live)
        await asyncio.to_thread(cluster.tier.kill_primary)
        await asyncio.to_thread(cluster.tier.wait_promoted, FAILOVER_BOUND)
        promoted_after = time.monotonic() - killed_at

        def sent_after_kill():
            return [
                at
                for at, text in reader.live.values()
                if writer.sent[text] > killed_at and at > killed_at
            ]

        await reader.wait_for(
            lambda: len(sent_after_kill()) >= 5, FAILOVER_BOUND, "messages again after the kill"
        )
        gap = min(sent_after_kill()) - killed_at
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    stored = await asyncio.to_thread(persisted_ids, a, room)
    after_kill = {id_ for id_ in stored if id_ > last_before}
    async with a.websocket(f"/ws/chat/{room}/?since={last_before}") as resume:
        backlog = set()
        while not after_kill <= backlog:
            backlog.add((await receive_until(resume, lambda f: "id" in f))["id"])
    # Up to the newest message the reader got, every one must have reached it (the few
    # stored after that were still on their way when the clients stopped).
    on_socket = set(reader.live) | reader.resumed
    not_on_socket = {id_ for id_ in after_kill if id_ < max(reader.live)} - on_socket
    lost = stored - on_socket - backlog
    with capsys.disabled():  # the figures docs/scaling.md quotes
        print(
            f"\nfailover: replica promoted {promoted_after:.1f}s after kill -9 of the primary; "
            f"first live message {gap:.1f}s after it; {len(stored)} messages stored, "
            f"{len(after_kill)} after the kill, {len(not_on_socket)} of them missing on the "
            f"open socket; duplicates {len(reader.duplicates)}; lost: {len(lost)}; "
            f"reader closes {reader.closes}, writer reconnects {writer.reconnects}"
        )
    assert lost == set()
    assert not_on_socket == set(), "the open socket was not caught up"
    assert reader.duplicates == []
    assert gap < FAILOVER_BOUND
    assert app_pids(cluster) == pids_before, "an app process was restarted"
    # Several times, so each gunicorn worker answers (each has its own cached client).
    for stack in (a, b) * 4:
        status, body, _ = await asyncio.to_thread(stack.http, "GET", "/healthz")
        assert (status, body["checks"]["redis"]) == (200, "ok")


async def test_one_app_host_crashing_leaves_the_other_serving(cluster):
    """kill -9 everything on host A: its clients move to B and resume where they were."""
    a, b = cluster.stacks["app-a"], cluster.stacks["app-b"]
    room = room_name()
    async with a.websocket(f"/ws/chat/{room}/") as on_a, b.websocket(f"/ws/chat/{room}/") as on_b:
        await on_a.send(json.dumps({"message": "before the crash"}))
        last_seen = (await receive_until(on_a, is_chat("before the crash")))["id"]
        await receive_until(on_b, is_chat("before the crash"))

        cluster.host("app-a").crash()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(on_a.recv(), TIMEOUT)
        await on_b.send(json.dumps({"message": "while A is down"}))
        await receive_until(on_b, is_chat("while A is down"))

    with pytest.raises(OSError):
        await asyncio.to_thread(a.http, "GET", "/healthz")
    status, body, _ = await asyncio.to_thread(b.http, "GET", "/healthz")
    assert (status, body["status"]) == (200, "ok")
    # A's client, sent to B by the load balancer, resumes from the last message it saw.
    async with b.websocket(f"/ws/chat/{room}/?since={last_seen}") as moved:
        frame = await receive_until(moved, lambda f: f.get("type") == "chat.message")
    assert frame["message"] == "while A is down"
