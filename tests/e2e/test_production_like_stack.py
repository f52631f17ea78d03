"""A stack configured as production runs, through nginx: on PostgreSQL, anonymous chat off,
and abuse limits small enough to reach in a few requests.

The module runs its own stack on the test session's private PostgreSQL server.
Proven here: posts limited per user across sockets, daphnes and the HTTP API; rooms
created per user per hour bounded; failed sign-ins throttled per user name and per
address; control characters refused before PostgreSQL, which rejects NUL in text, sees them.
"""

import asyncio
import http.client
import json
import re
import time
import urllib.parse
import uuid

import pytest
from bad_frames import BAD_FRAMES
from e2e.conftest import bearer, receive_json, receive_until, receive_until_quiet
from e2e.localstack import LocalStack, free_port
from websockets.exceptions import ConnectionClosed

POST_RATE, POST_BURST = 1, 5
ROOMS_PER_HOUR = 3
FAILURES_PER_USER, FAILURES_PER_ADDRESS = 3, 6
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_server):
    local = LocalStack(
        tmp_path_factory.mktemp("production") / "var",
        free_port(),
        DATABASE_URL=postgres_server.create_database("production_like"),
        CHAT_REQUIRE_LOGIN="true",
        POST_RATE_LIMIT=str(POST_RATE),
        POST_RATE_BURST=str(POST_BURST),
        CHAT_ROOMS_PER_HOUR=str(ROOMS_PER_HOUR),
        LOGIN_FAILURE_LIMIT=str(FAILURES_PER_USER),
        LOGIN_FAILURE_LIMIT_PER_ADDRESS=str(FAILURES_PER_ADDRESS),
    )
    try:
        local.up()
        yield local
    finally:
        local.down()


def new_user(stack, prefix):
    """A user with a password and an API token: (username, token)."""
    username = f"{prefix}-{uuid.uuid4().hex[:8]}"
    stack.create_staff_user(username, PASSWORD)
    return username, stack.issue_token(username)


async def post_once(stack, room, token, text):
    """Post ``text`` on a fresh socket: the frame answering it (the message, or an error)."""
    async with stack.websocket(f"/ws/chat/{room}/", additional_headers=bearer(token)) as ws:
        await ws.send(json.dumps({"message": text}))
        return await receive_until(ws, lambda f: "error" in f or f.get("message") == text)


async def test_anonymous_users_cannot_chat(stack):
    async with stack.websocket("/ws/chat/lobby/") as ws:
        assert (await receive_json(ws))["error"] == "sign in to chat"
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
    assert closed.value.rcvd.code == 4401


async def test_posts_are_limited_per_user_across_sockets_daphnes_and_the_api(stack):
    _, token = new_user(stack, "poster")
    room = f"limits-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    answers = await asyncio.gather(
        *(post_once(stack, room, token, f"post {n}") for n in range(4 * POST_BURST))
    )
    elapsed = time.monotonic() - started
    refused = [answer["error"] for answer in answers if "error" in answer]
    stored = len(answers) - len(refused)
    assert POST_BURST <= stored <= POST_BURST + POST_RATE * elapsed + 1, (stored, elapsed)
    assert refused and all(error.startswith("too many messages") for error in refused)
    # The same budget covers POST /api/notifications/.
    statuses = [(await asyncio.to_thread(stack.notify, token, "and more"))[0] for _ in range(3)]
    assert 429 in statuses, statuses


async def test_rooms_created_per_user_per_hour_are_bounded(stack):
    _, token = new_user(stack, "founder")
    rooms = [f"new-{uuid.uuid4().hex[:8]}" for _ in range(ROOMS_PER_HOUR + 1)]
    answers = [await post_once(stack, room, token, "first!") for room in rooms]
    assert [answer.get("message") for answer in answers[:-1]] == ["first!"] * ROOMS_PER_HOUR
    assert answers[-1]["error"].startswith("too many new rooms"), answers[-1]
    # Rooms that exist take messages as before.
    assert (await post_once(stack, rooms[0], token, "again"))["message"] == "again"


def sign_in(stack, path, username, password, address):
    """Submit the sign-in form at ``path`` from ``address``: the HTTP status (200: the form
    again, with an error; 302: signed in; 429: refused without checking)."""

    def request(method, body=None, headers=None):
        connection = http.client.HTTPConnection(
            "127.0.0.1", stack.port, timeout=10, source_address=(address, 0)
        )
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return response.status, response.getheader("Set-Cookie", ""), response.read().decode()
        finally:
            connection.close()

    _, set_cookie, page = request("GET")
    cookie = re.search(r"csrftoken=([^;]+)", set_cookie)[1]
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = {"username": username, "password": password, "csrfmiddlewaretoken": form_token}
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={cookie}",
    }
    status, _, _ = request("POST", urllib.parse.urlencode(form), headers)
    return status


@pytest.mark.parametrize(
    "path, address", [("/login/", "127.0.0.31"), ("/admin/login/", "127.0.0.32")]
)
def test_failed_sign_ins_are_throttled_per_user_name(stack, path, address):
    username, _ = new_user(stack, "target")
    failures = [sign_in(stack, path, username, "wrong", address) for _ in range(FAILURES_PER_USER)]
    assert failures == [200] * FAILURES_PER_USER
    # Refused now, the right password too, from any address: a guesser learns nothing more.
    assert sign_in(stack, path, username, PASSWORD, address) == 429
    assert sign_in(stack, path, username, PASSWORD, "127.0.0.33") == 429
    # Other users of the same address sign in as before.
    other, _ = new_user(stack, "bystander")
    assert sign_in(stack, path, other, PASSWORD, address) == 302


def test_failed_sign_ins_are_throttled_per_address(stack):
    address = "127.0.0.34"
    statuses = [
        sign_in(stack, "/login/", f"guess-{n}", "wrong", address)
        for n in range(FAILURES_PER_ADDRESS)
    ]
    assert statuses == [200] * FAILURES_PER_ADDRESS
    username, _ = new_user(stack, "behind-the-same-address")
    assert sign_in(stack, "/login/", username, PASSWORD, address) == 429
    assert sign_in(stack, "/login/", username, PASSWORD, "127.0.0.35") == 302


CONTROL_CHARACTERS = {name: case for name, case in BAD_FRAMES.items() if "control" in case[1]}


async def test_control_characters_are_refused_on_postgresql(stack):
    _, token = new_user(stack, "control")
    room = f"control-{uuid.uuid4().hex[:8]}"
    async with stack.websocket(f"/ws/chat/{room}/", additional_headers=bearer(token)) as ws:
        for name, (frame, reason) in CONTROL_CHARACTERS.items():
            await ws.send(frame)
            assert reason in (await receive_json(ws)).get("error", ""), name
        await ws.send(json.dumps({"message": "tabs\tand\nnew lines are fine"}))
        assert (await receive_json(ws))["message"] == "tabs\tand\nnew lines are fine"
    headers = {**bearer(token), "Content-Type": "application/json"}
    status, body, _ = stack.http("POST", "/api/notifications/", {"text": "a\x00b"}, headers)
    assert (status, "control character U+0000" in body["error"]) == (400, True)
    async with stack.websocket(f"/ws/chat/{room}/?since=0", additional_headers=bearer(token)) as ws:
        stored = [frame["message"] for frame in await receive_until_quiet(ws)]
    assert stored == ["tabs\tand\nnew lines are fine"]
