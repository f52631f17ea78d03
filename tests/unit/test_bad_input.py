"""Bad input on a socket: a clear error frame or close code, nothing stored, others served.

(Invalid room names and ``since`` values are in test_chat_consumer.py, foreign and
missing origins in test_echo_and_routing.py; the same cases through nginx and real
daphne are in e2e/test_bad_input_through_nginx.py.)
"""

import json
from datetime import timedelta

import pytest
from bad_frames import BAD_FRAMES
from channels.db import database_sync_to_async
from django.test import override_settings
from django.utils import timezone
from unit.conftest import ORIGIN, bearer, closed_with, receive

from accounts.models import ApiToken
from accounts.tokens import issue_token
from chat.models import ChatMessage

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def stored(room):
    return list(ChatMessage.objects.filter(room=room).values_list("message", flat=True))


@pytest.mark.parametrize("frame, reason", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_bad_frame_gets_an_error_and_others_keep_chatting(connect, frame, reason):
    sender, _, _ = await connect("/ws/chat/strict/")
    bystander, _, _ = await connect("/ws/chat/strict/")
    await sender.send_to(**{"bytes_data" if isinstance(frame, bytes) else "text_data": frame})
    assert reason in (await receive(sender))["error"]
    assert await bystander.receive_nothing(timeout=0.1)
    # The sender's socket is still open and useful, and the bystander hears only this.
    await sender.send_json_to({"message": "still here"})
    for ws in (sender, bystander):
        assert (await receive(ws))["message"] == "still here"
    assert await stored("strict") == ["still here"]


async def test_valid_surrogate_pairs_are_fine(connect):
    ws, _, _ = await connect("/ws/chat/emoji/")
    await ws.send_to(text_data='{"message": "\\ud83d\\ude00"}')
    assert (await receive(ws))["message"] == "\U0001f600"


@override_settings(WEBSOCKET_RATE_LIMIT=0.1, WEBSOCKET_RATE_BURST=3)
async def test_a_flood_gets_an_error_then_close_1008_and_the_rest_is_dropped(connect):
    flooder, _, _ = await connect("/ws/chat/flood/")
    bystander, _, _ = await connect("/ws/chat/flood/")
    for n in range(10):
        await flooder.send_json_to({"message": f"spam {n}"})
    errors = []
    while (output := await flooder.receive_output(timeout=5))["type"] != "websocket.close":
        frame = json.loads(output["text"])
        if "error" in frame:
            errors.append(frame["error"])
    assert output["code"] == 1008
    assert errors == ["too many messages: at most 0.1 a second"]
    # Only the burst was stored; the frames after the close were never acted on.
    expected = ["spam 0", "spam 1", "spam 2"]
    assert await stored("flood") == expected
    assert [(await receive(bystander))["message"] for _ in range(3)] == expected
    assert await bystander.receive_nothing(timeout=0.2)


@override_settings(WEBSOCKET_RATE_LIMIT=0)
async def test_the_rate_limit_can_be_turned_off(connect):
    ws, _, _ = await connect("/ws/echo/")
    await receive(ws)
    for n in range(100):
        await ws.send_json_to(n)
    assert [(await receive(ws))["echo"] for _ in range(100)] == list(range(100))


@pytest.fixture
def tokens(user):
    """Raw tokens of ``user`` in each state the server must refuse, and one good one."""
    expired, expired_raw = issue_token(user, expires_in=timedelta(hours=1))
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_raw = issue_token(user)
    revoked.revoke()
    return {
        "garbage": "garbage",
        "right shape, unknown": "0123456789ab." + "A" * 43,
        "expired": expired_raw,
        "revoked": revoked_raw,
        "good": issue_token(user)[1],
    }


@pytest.mark.parametrize("kind", ["garbage", "right shape, unknown", "expired", "revoked"])
async def test_bad_tokens_are_closed_with_4401(connect, tokens, kind):
    ws, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(tokens[kind])))
    assert "sign in" in (await receive(ws))["error"]
    assert await closed_with(ws) == 4401


async def test_a_token_in_the_url_signs_nobody_in(connect, tokens):
    """nginx refuses ``?token=`` before it could reach a log; daphne ignores it too."""
    ws, _, _ = await connect(f"/ws/notifications/?token={tokens['good']}")
    assert "sign in" in (await receive(ws))["error"]
    assert await closed_with(ws) == 4401


async def test_a_bearer_header_authenticates_a_websocket(connect, tokens):
    ws, _, _ = await connect("/ws/chat/lobby/", headers=(ORIGIN, bearer(tokens["good"])))
    await ws.send_json_to({"message": "by header"})
    assert (await receive(ws))["username"] == "alice"


@override_settings(WEBSOCKET_MAX_PER_USER=2)
async def test_per_user_socket_cap_closes_with_4429(connect, token):
    first, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    third, accepted, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    assert accepted
    assert "too many open sockets" in (await receive(third))["error"]
    assert await closed_with(third) == 4429
    await first.disconnect()
    fourth, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    assert await fourth.receive_nothing(timeout=0.2)  # a slot was freed: accepted and open


@override_settings(WEBSOCKET_MAX_PER_IP=1)
async def test_per_address_socket_cap_closes_with_4429(connect):
    first, _, _ = await connect("/ws/echo/", client="203.0.113.1")
    other, _, _ = await connect("/ws/echo/", client="203.0.113.2")
    assert await receive(first) == await receive(other) == {"hello": "world"}
    refused, _, _ = await connect("/ws/echo/", client="203.0.113.1")
    assert "too many open sockets" in (await receive(refused))["error"]
    assert await closed_with(refused) == 4429


async def test_caps_are_off_by_default(connect, token):
    signed_in = (ORIGIN, bearer(token))
    sockets = [await connect("/ws/notifications/", headers=signed_in) for _ in range(20)]
    assert all(accepted for _, accepted, _ in sockets)
    assert all([await ws.receive_nothing(timeout=0.01) for ws, _, _ in sockets])


@pytest.mark.parametrize(
    "body",
    ["[" * 5000 + "]" * 5000, '{"text": NaN}', b"\xff\xfe not utf-8"],
    ids=["deeply nested", "NaN", "invalid UTF-8"],
)
def test_http_api_answers_400_to_malformed_json(client, token, body):
    response = client.post(
        "/api/notifications/",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "request body must be JSON"}
