"""GET /sse/notifications/: the Server-Sent Events fallback of the notification socket."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.test import Client

from config.asgi import application
from notifications.models import Notification
from notifications.services import RECENT, RESUME_LIMIT
from notifications.sse import stream_events

TIMEOUT = 5


@pytest.mark.django_db
def test_anonymous_is_401():
    assert Client().get("/sse/notifications/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("resume", [{"HTTP_LAST_EVENT_ID": "x"}, {"QUERY_STRING": "since=-1"}])
def test_a_bad_resume_point_is_400(user, resume):
    client = Client()
    client.force_login(user)
    assert client.get("/sse/notifications/", **resume).status_code == 400


@pytest.mark.parametrize("origin", ["http://127.0.0.1:9999", "https://127.0.0.1:8080", "null"])
async def test_a_stream_opened_from_another_origin_is_403(origin):
    """The check websockets get (realtime.origins), on daphne's HTTP side: before the view,
    so before any database work."""
    request = HttpCommunicator(
        application, "GET", "/sse/notifications/", headers=[(b"origin", origin.encode())]
    )
    response = await request.get_response(timeout=TIMEOUT)
    assert response["status"] == 403
    assert json.loads(response["body"]) == {"error": "this origin may not use the site's streams"}


@database_sync_to_async
def notify(user, text):
    return Notification.objects.create(user=user, text=text)


async def next_message(stream):
    """The next SSE message (keep-alive comments skipped) as {field: value}."""
    while True:
        chunk = await asyncio.wait_for(anext(stream), TIMEOUT)
        if not chunk.startswith(":"):
            return dict(line.split(": ", 1) for line in chunk.strip().splitlines())


@pytest.mark.django_db(transaction=True)
async def test_a_new_stream_marks_where_to_resume_then_streams_live(user):
    old = await notify(user, "before the stream")
    stream = stream_events(user.pk, since=None)
    try:
        assert await next_message(stream) == {"retry": "1000"}
        # Sets the browser's Last-Event-ID: a reconnect resumes after the newest one.
        assert await next_message(stream) == {"id": str(old.id)}
        live = await notify(user, "live")
        message = await next_message(stream)
        assert (message["id"], message["event"]) == (str(live.id), "notification")
        assert json.loads(message["data"])["text"] == "live"
    finally:
        await stream.aclose()


@pytest.mark.django_db(transaction=True)
async def test_a_resumed_stream_replays_what_was_missed_once(user):
    seen = await notify(user, "seen")
    missed = await notify(user, "missed")
    stream = stream_events(user.pk, since=seen.id)
    try:
        await next_message(stream)  # retry
        assert json.loads((await next_message(stream))["data"])["text"] == "missed"
        live = await notify(user, "live")
        assert (await next_message(stream))["id"] == str(live.id)
    finally:
        await stream.aclose()
    assert missed.id < live.id


@pytest.mark.django_db(transaction=True)
async def test_a_stream_resumed_past_the_limit_says_reset_then_sends_the_latest(user):
    rows = await database_sync_to_async(Notification.objects.bulk_create)(
        [Notification(user=user, text=f"n{n}") for n in range(RESUME_LIMIT + 5)]
    )
    stream = stream_events(user.pk, since=0)
    try:
        await next_message(stream)  # retry
        reset = await next_message(stream)
        assert reset["event"] == "resume.reset"
        assert json.loads(reset["data"])["limit"] == RESUME_LIMIT
        ids = [int((await next_message(stream))["id"]) for _ in range(RECENT)]
        assert ids == [row.id for row in rows[-RECENT:]]
    finally:
        await stream.aclose()
