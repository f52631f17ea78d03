"""What the base consumer does when something goes wrong: log it, tell the client, go on."""

import logging

import pytest
from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.exceptions import SynchronousOnlyOperation
from django.db import OperationalError
from django.test import Client, override_settings
from unit.conftest import ORIGIN, TIMEOUT, bearer, closed_with, receive

from chat.events import room_group
from notifications.models import Notification
from realtime.consumers import JsonTextConsumer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_event_without_handler_is_logged_and_the_socket_stays_open(connect, caplog):
    ws, _, _ = await connect("/ws/chat/typo/")
    with caplog.at_level(logging.WARNING, logger="realtime.consumers"):
        await get_channel_layer().group_send(room_group("typo"), {"type": "chat.mesage", "x": 1})
        await get_channel_layer().group_send(room_group("typo"), {"type": "_private"})
        await get_channel_layer().group_send(room_group("typo"), {"no": "type"})
        await ws.send_json_to({"message": "still working"})
        assert (await receive(ws))["message"] == "still working"
    lines = [r.getMessage() for r in caplog.records if "unhandled event" in r.getMessage()]
    where = "groups=chat_typo consumer=ChatConsumer path=/ws/chat/typo/"
    assert lines == [
        f"unhandled event type='chat.mesage' {where}",
        f"unhandled event type='_private' {where}",
        f"unhandled event type=None {where}",
    ]


async def test_every_disconnect_is_one_structured_log_line(connect, caplog, user, token):
    with caplog.at_level(logging.INFO, logger="realtime.consumers"):
        anonymous, _, _ = await connect("/ws/echo/")
        await anonymous.disconnect(code=1001)
        signed_in, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
        await signed_in.disconnect(code=4000)
    records = [r for r in caplog.records if r.getMessage().startswith("websocket")]
    lines = [record.getMessage() for record in records]
    assert len(lines) == 2
    assert lines[0].startswith("websocket closed code=1001 path=/ws/echo/ user=- socket=")
    assert lines[1].startswith(
        f"websocket closed code=4000 path=/ws/notifications/ user={user.pk} socket="
    )
    assert all(line.endswith("s") and token not in line for line in lines)
    # The same as fields, for JSON logs (realtime.logs): a socket id each, never the token.
    fields = [(r.code, r.path, r.user, type(r.duration)) for r in records]
    assert fields == [
        (1001, "/ws/echo/", None, float),
        (4000, "/ws/notifications/", user.pk, float),
    ]
    assert records[0].socket and records[0].socket != records[1].socket


DEAD_REDIS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["unix:///nonexistent/redis.sock"]},
    }
}


@pytest.mark.parametrize("path", ["/ws/echo/", "/ws/chat/lobby/", "/ws/notifications/"])
async def test_an_unreachable_channel_layer_closes_with_1013(connect, path, token, caplog):
    with override_settings(CHANNEL_LAYERS=DEAD_REDIS):
        ws, accepted, _ = await connect(f"{path}", headers=(ORIGIN, bearer(token)))
        assert accepted
        assert (await receive(ws)) == {"error": "temporarily unavailable; reconnect later"}
        assert await closed_with(ws) == 1013
    assert "service unavailable path=" + path in caplog.text


class Broken(JsonTextConsumer):
    async def connect(self):
        await self.accept()

    async def receive_json(self, content):
        raise RuntimeError("a bug with a secret in it")


async def test_a_consumer_bug_closes_with_1011_and_no_traceback_on_the_wire(caplog):
    ws = WebsocketCommunicator(Broken.as_asgi(), "/ws/broken/", headers=[ORIGIN])
    await ws.connect(timeout=TIMEOUT)
    await ws.send_json_to({"boom": True})
    assert (await receive(ws)) == {"error": "internal server error"}
    assert await closed_with(ws) == 1011
    await ws.wait(timeout=TIMEOUT)  # the consumer ended without an exception escaping
    assert "websocket consumer failed path=/ws/broken/" in caplog.text
    assert "a bug with a secret in it" in caplog.text  # in the server's log only


class DatabaseDown(JsonTextConsumer):
    async def connect(self):
        await self.accept()

    async def receive_json(self, content):
        raise OperationalError("connection to server on socket failed: the database is starting up")


async def test_an_unreachable_database_closes_with_1013_without_a_traceback(caplog):
    """A PostgreSQL restart: come back later, as for Redis; a warning, not an error."""
    ws = WebsocketCommunicator(DatabaseDown.as_asgi(), "/ws/db/", headers=[ORIGIN])
    await ws.connect(timeout=TIMEOUT)
    await ws.send_json_to({"post": "now"})
    assert (await receive(ws)) == {"error": "temporarily unavailable; reconnect later"}
    assert await closed_with(ws) == 1013
    assert "service unavailable path=/ws/db/ error=OperationalError" in caplog.text
    assert "Traceback" not in caplog.text and "ERROR" not in caplog.text


class ClientGone(JsonTextConsumer):
    async def connect(self):
        await self.accept()

    async def receive_json(self, content):
        raise Disconnected("Attempt to send on a closed protocol")


async def test_a_send_to_a_client_already_gone_is_not_an_error(caplog):
    """daphne raises on a send racing the client's disconnect (thousands of times in a
    reconnect storm): nothing to log as a failure, nothing to send."""
    ws = WebsocketCommunicator(ClientGone.as_asgi(), "/ws/gone/", headers=[ORIGIN])
    await ws.connect(timeout=TIMEOUT)
    with caplog.at_level(logging.INFO):
        await ws.send_json_to({"x": 1})
        await ws.wait(timeout=TIMEOUT)
    assert caplog.records == [] and await ws.receive_nothing()


async def test_the_orm_guard_is_armed_in_these_tests():
    """Django raises SynchronousOnlyOperation for ORM calls made on the event loop; the
    tests below rely on it, so make sure nothing (DJANGO_ALLOW_ASYNC_UNSAFE) disarms it."""
    with pytest.raises(SynchronousOnlyOperation):
        get_user_model().objects.count()


async def test_no_consumer_path_touches_the_orm_from_the_event_loop(connect, user, token, caplog):
    """Every consumer path that reads or writes the database, with each kind of user:
    a SynchronousOnlyOperation anywhere would close a socket with 1011 and log an error."""
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    session = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    for headers in [[ORIGIN], [ORIGIN, session], [ORIGIN, bearer(token)]]:
        chat, _, _ = await connect("/ws/chat/orm/", headers=headers)
        await chat.send_json_to({"message": "stored and broadcast"})
        message = await receive(chat)
        resumed, _, _ = await connect(f"/ws/chat/orm/?since={message['id'] - 1}", headers)
        assert (await receive(resumed))["id"] == message["id"]
        echo, _, _ = await connect("/ws/echo/", headers=headers)
        assert await receive(echo) == {"hello": "world"}
        notifications, _, _ = await connect("/ws/notifications/", headers=headers)
        for ws in (chat, resumed, echo, notifications):
            await ws.disconnect()
    signed_in, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    await database_sync_to_async(Notification.objects.create)(user=user, text="pushed")
    assert (await receive(signed_in))["text"] == "pushed"
    assert "SynchronousOnlyOperation" not in caplog.text
    assert "consumer failed" not in caplog.text
