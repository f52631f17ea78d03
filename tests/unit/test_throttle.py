"""Limits every process shares, counted in Redis (realtime.throttle): posts per user or
address across sockets and the HTTP API, and rooms created per hour."""

import logging

import pytest
from channels.db import database_sync_to_async
from django.test import Client, override_settings
from unit.conftest import ORIGIN, bearer, receive

from chat.models import ChatMessage
from notifications.models import Notification
from realtime.throttle import Rate, wait_seconds

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_bucket_allows_its_burst_then_its_rate():
    rate = Rate(per_second=0.5, burst=3)
    waits = [wait_seconds("test", "client", rate) for _ in range(4)]
    assert waits[:3] == [0, 0, 0] and 1.9 < waits[3] <= 2
    assert wait_seconds("test", "another client", rate) == 0
    assert wait_seconds("test", "client", Rate(0, 3)) == 0  # 0 turns a limit off


def test_looking_does_not_count():
    rate = Rate(per_second=0.5, burst=2)
    assert [wait_seconds("look", "client", rate, take=False) for _ in range(5)] == [0] * 5
    assert [wait_seconds("look", "client", rate) > 0 for _ in range(3)] == [False, False, True]
    assert wait_seconds("look", "client", rate, take=False) > 0


async def post_from(connect, room, text, address, headers=(ORIGIN,)):
    """Post ``text`` on a fresh socket from ``address``: the frame answering it (the
    message, or an error), after the room's history."""
    ws, _, _ = await connect(f"/ws/chat/{room}/", headers=headers, client=address)
    await ws.send_json_to({"message": text})
    while not ("error" in (frame := await receive(ws)) or frame.get("message") == text):
        pass
    return frame


@override_settings(POST_RATE_LIMIT=0.01, POST_RATE_BURST=3)
async def test_an_address_posts_its_burst_however_many_sockets_it_opens(connect):
    answers = [await post_from(connect, "busy", f"m{n}", "203.0.113.7") for n in range(5)]
    assert [answer.get("message") for answer in answers[:3]] == ["m0", "m1", "m2"]
    assert all(answer["error"].startswith("too many messages") for answer in answers[3:])
    assert (await post_from(connect, "busy", "other", "203.0.113.8"))["message"] == "other"
    stored = await database_sync_to_async(ChatMessage.objects.count)()
    assert stored == 4


@override_settings(POST_RATE_LIMIT=0.01, POST_RATE_BURST=3)
async def test_a_user_has_one_budget_for_chat_and_notifications(connect, token):
    signed_in = (ORIGIN, bearer(token))
    for n, address in enumerate(["198.51.100.1", "198.51.100.2", "198.51.100.3"]):
        assert (await post_from(connect, "mine", f"m{n}", address, signed_in))["message"]
    response = await database_sync_to_async(Client().post)(
        "/api/notifications/", {"text": "one more"}, "application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"].startswith("too many messages")
    assert not await database_sync_to_async(Notification.objects.exists)()


@override_settings(CHAT_ROOMS_PER_HOUR=2)
async def test_rooms_created_per_hour_are_bounded(connect):
    address = "192.0.2.9"
    for room in ("first", "second"):
        assert (await post_from(connect, room, "hello", address))["message"] == "hello"
    refused = await post_from(connect, "third", "hello", address)
    assert refused["error"].startswith("too many new rooms: at most 2 an hour")
    assert (await post_from(connect, "first", "again", address))["message"] == "again"
    assert not await database_sync_to_async(ChatMessage.objects.filter(room="third").exists)()


@override_settings(POST_RATE_LIMIT=0.01, POST_RATE_BURST=1)
def test_without_redis_the_limits_step_aside_and_say_so(unreachable_redis, token, caplog):
    """Posting keeps working through a Redis outage, as storing does; the log says why
    no limit applied (once: the next checks skip Redis for a moment)."""
    client = Client()
    with caplog.at_level(logging.WARNING, logger="realtime.throttle"):
        for text in ("one", "two", "three"):
            response = client.post(
                "/api/notifications/", {"text": text}, "application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )  # fmt: skip
            assert response.status_code == 201
    assert caplog.messages == ["rate limits not applied: Redis unavailable (ConnectionError)"]
