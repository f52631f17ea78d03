"""Bad input through nginx to the real daphne and gunicorn: each case gets a clear error
frame, close code or HTTP status, nothing from it is stored, and everyone else is served.
"""

import asyncio
import contextlib
import json
import uuid

import pytest
from bad_frames import BAD_FRAMES
from e2e.conftest import bearer, receive_json
from e2e.localstack import run_daphne
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def closed(ws):
    """(code, reason) of the close frame the server sent, after any frames before it."""
    with pytest.raises(ConnectionClosed) as close:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    assert close.value.rcvd is not None, "no close frame: the connection was dropped"
    return close.value.rcvd.code, close.value.rcvd.reason


async def history(stack, room):
    """Every message stored in ``room``, read back through the resume path."""
    async with stack.websocket(f"/ws/chat/{room}/?since=0") as ws:
        frames = []
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 1)))
        except TimeoutError:
            return [frame["message"] for frame in frames]


async def test_bad_frames_get_errors_nothing_is_stored_and_others_are_served(stack):
    room = f"bad-{uuid.uuid4().hex[:8]}"
    async with (
        stack.websocket(f"/ws/chat/{room}/") as sender,
        stack.websocket(f"/ws/chat/{room}/") as bystander,
    ):
        for name, (frame, reason) in BAD_FRAMES.items():
            await sender.send(frame)
            answer = await receive_json(sender)
            assert reason in answer.get("error", ""), (name, answer)
        await sender.send(json.dumps({"message": "the only good one"}))
        for ws in (sender, bystander):
            assert (await receive_json(ws))["message"] == "the only good one"
    assert await history(stack, room) == ["the only good one"]


async def test_frame_over_daphnes_limit_closes_with_1009(stack):
    room = f"big-{uuid.uuid4().hex[:8]}"
    async with stack.websocket(f"/ws/chat/{room}/") as bystander:
        async with stack.websocket(f"/ws/chat/{room}/", max_size=None) as sender:
            await sender.send(json.dumps({"message": "x" * run_daphne().MAX_MESSAGE_BYTES}))
            assert (await closed(sender))[0] == 1009
        async with stack.websocket(f"/ws/chat/{room}/") as next_one:
            await next_one.send(json.dumps({"message": "after the big one"}))
            assert (await receive_json(bystander))["message"] == "after the big one"
    assert await history(stack, room) == ["after the big one"]


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(stack):
    async with stack.websocket("/ws/echo/") as ws:
        await receive_json(ws)
        await ws.send(b'{"a": "\xff"}', text=True)
        assert (await closed(ws))[0] == 1007


FLOOD = 60


async def test_a_flood_gets_an_error_then_close_1008(stack):
    """The stack's defaults: 10 frames a second, 30 at once."""
    async with stack.websocket("/ws/echo/") as flooder, stack.websocket("/ws/echo/") as other:
        await receive_json(flooder)
        await receive_json(other)
        # Twice the burst, written at once: the close must not race a client still sending
        # (on a busy machine a long flood was cut mid-write, and its close frame with it).
        with contextlib.suppress(ConnectionClosed):
            for n in range(FLOOD):
                await flooder.send(json.dumps(n))
        answers = []
        with pytest.raises(ConnectionClosed) as close:
            async with asyncio.timeout(10):
                while True:
                    answers.append(json.loads(await flooder.recv()))
        echoes = [answer["echo"] for answer in answers if "echo" in answer]
        assert 30 <= len(echoes) < FLOOD and echoes == list(range(len(echoes)))
        assert answers[len(echoes)] == {"error": "too many messages: at most 10 a second"}
        assert close.value.rcvd.code == 1008
        await other.send(json.dumps("unaffected"))
        assert await receive_json(other) == {"echo": "unaffected"}


@pytest.mark.parametrize("room", ["has%20space", "semi;colon", "x" * 101, "dots.dots"])
async def test_invalid_room_names_close_with_4400(stack, room):
    async with stack.websocket(f"/ws/chat/{room}/") as ws:
        assert "invalid room name" in (await receive_json(ws))["error"]
        assert (await closed(ws))[0] == 4400


@pytest.mark.parametrize("origin", ["https://evil.example", None], ids=["foreign", "missing"])
async def test_handshakes_from_a_foreign_or_no_origin_get_403(stack, origin):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{stack.ws_url}/ws/echo/", origin=origin, open_timeout=10):
            pass
    assert refused.value.response.status_code == 403


@pytest.fixture(scope="module")
def tokens(stack):
    """Raw tokens the server must refuse: garbage, expired and revoked ones."""
    expired, revoked = stack.issue_token("e2e-bad-tokens"), stack.issue_token("e2e-bad-tokens")
    stack.manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; "
        "from accounts.models import ApiToken; "
        f"ApiToken.objects.filter(prefix={expired.split('.')[0]!r})"
        ".update(expires_at=timezone.now() - timedelta(seconds=1)); "
        f"ApiToken.objects.get(prefix={revoked.split('.')[0]!r}).revoke()",
    )
    return {"garbage": "garbage", "expired": expired, "revoked": revoked}


@pytest.mark.parametrize("kind", ["garbage", "expired", "revoked"])
async def test_bad_tokens_close_with_4401(stack, tokens, kind):
    async with stack.websocket("/ws/notifications/", additional_headers=bearer(tokens[kind])) as ws:
        assert "sign in" in (await receive_json(ws))["error"]
        assert (await closed(ws))[0] == 4401


@pytest.fixture(scope="module")
def browser_session(stack):
    stack.create_staff_user("e2e-browser", "a long enough password")
    return stack.sign_in("e2e-browser", "a long enough password")


def test_session_post_without_csrf_token_is_403_and_stores_nothing(stack, browser_session):
    cookie = "; ".join(f"{name}={value}" for name, value in browser_session.items())
    json_body = {"Content-Type": "application/json", "Cookie": cookie}
    status, body, _ = stack.http("POST", "/api/notifications/", {"text": "forged"}, json_body)
    assert (status, "CSRF verification failed" in body["error"]) == (403, True)
    with_csrf = {**json_body, "X-CSRFToken": browser_session["csrftoken"]}
    status, body, _ = stack.http("POST", "/api/notifications/", {"text": "genuine"}, with_csrf)
    assert status == 201
    count = stack.manage(
        "shell",
        "-c",
        "from notifications.models import Notification; "
        "print(list(Notification.objects.filter(user__username='e2e-browser')"
        ".values_list('text', flat=True)))",
    )
    assert count.strip().splitlines()[-1] == "['genuine']"


def test_tokens_never_reach_the_logs(stack, tokens):
    """Tokens travel in headers, which no log records; daphne and Django log paths only."""
    secrets = [raw.split(".", 1)[1] for raw in (tokens["expired"], tokens["revoked"])]
    assert [stack.logs_containing(secret) for secret in secrets] == [[], []]
