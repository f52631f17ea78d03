"""Open sockets are sent what was stored while the layer's subscription to Redis was down.

"Stored while down" is a row written without a broadcast (``bulk_create`` sends no
post_save signal): exactly what a socket misses when a publish finds no subscriber.
The subscription is broken for real: Redis is told to drop its pub/sub clients, and
redis-py reconnects on its own.
"""

import asyncio

import pytest
import redis
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from unit.conftest import ORIGIN, bearer, receive

from chat.models import ChatMessage
from chat.services import post_message
from notifications.models import Notification
from realtime import catch_up

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def store_unannounced(model, *rows):
    """Rows written without a group event (bulk_create sends no post_save): their ids."""
    return [row.id for row in model.objects.bulk_create(model(**fields) for fields in rows)]


def drop_pubsub_connections():
    """What a Redis restart or a network cut does to a subscriber, and nothing else."""
    client = redis.Redis.from_url(settings.REDIS_HOSTS[0]["address"])
    try:
        return client.client_kill_filter(_type="pubsub")
    finally:
        client.close()


async def received_ids(ws, count):
    return [(await receive(ws))["id"] for _ in range(count)]


async def test_a_chat_socket_gets_what_it_missed_after_the_subscription_comes_back(connect):
    ws, _, _ = await connect("/ws/chat/outage/")
    before = await database_sync_to_async(post_message)("outage", AnonymousUser(), "before")
    assert (await receive(ws))["id"] == before.id
    missed = await store_unannounced(
        ChatMessage,
        {"room": "outage", "username": "bob", "message": "missed 1"},
        {"room": "outage", "username": "bob", "message": "missed 2"},
    )
    assert await asyncio.to_thread(drop_pubsub_connections) >= 1
    assert await received_ids(ws, 2) == missed
    after = await database_sync_to_async(post_message)("outage", AnonymousUser(), "after")
    assert (await receive(ws))["id"] == after.id
    assert await ws.receive_nothing(timeout=0.3)


async def test_a_notification_socket_gets_only_what_came_after_it_opened(connect, user, token):
    old = await database_sync_to_async(Notification.objects.create)(user=user, text="old")
    ws, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    assert await ws.receive_nothing(timeout=0.2)
    missed = await store_unannounced(Notification, {"user": user, "text": "missed"})
    assert await asyncio.to_thread(drop_pubsub_connections) >= 1
    frame = await receive(ws)
    assert (frame["id"], frame["text"]) == (missed[0], "missed")
    assert frame["id"] > old.id
    assert await ws.receive_nothing(timeout=0.3)


async def test_live_events_wait_for_the_catch_up_and_none_is_sent_twice(connect):
    ws, _, _ = await connect("/ws/chat/held/")
    assert await ws.receive_nothing(timeout=0.1)  # connected, empty room
    catch_up.subscription_restored()  # as the hook does: live events are held from here
    missed = await store_unannounced(
        ChatMessage, {"room": "held", "username": "bob", "message": "missed"}
    )
    # Stored and announced during the hold: read by the catch-up *and* held as an event.
    live = await database_sync_to_async(post_message)("held", AnonymousUser(), "live")
    assert await received_ids(ws, 2) == [*missed, live.id]
    assert await ws.receive_nothing(timeout=catch_up.SETTLE_SECONDS + 0.3)


async def test_a_catch_up_past_the_replay_limit_starts_the_socket_over(connect):
    """An outage in a busy room: the catch-up follows the resume's rules (realtime.replay)."""
    ws, _, _ = await connect("/ws/chat/busy-outage/")
    assert await ws.receive_nothing(timeout=0.1)
    missed = await store_unannounced(
        ChatMessage,
        *({"room": "busy-outage", "username": "bob", "message": f"m{n}"} for n in range(1001)),
    )
    assert await asyncio.to_thread(drop_pubsub_connections) >= 1
    assert (await receive(ws))["type"] == "resume.reset"
    assert await received_ids(ws, 50) == missed[-50:]
    assert await ws.receive_nothing(timeout=0.3)
