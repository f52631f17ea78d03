"""A stack configured as production runs, through nginx: on PostgreSQL, anonymous chat off.

The module runs its own stack on a private PostgreSQL cluster (tests/e2e/postgres.py).
Proven here: anonymous users cannot chat; control characters are refused before
PostgreSQL, which rejects NUL in text, sees them.
"""

import json
import uuid

import pytest
from bad_frames import BAD_FRAMES
from e2e.conftest import bearer, receive_json, receive_until_quiet
from e2e.localstack import LocalStack, free_port
from e2e.postgres import PostgresCluster
from websockets.exceptions import ConnectionClosed

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    database = PostgresCluster().start()
    local = LocalStack(
        tmp_path_factory.mktemp("production") / "var",
        free_port(),
        DATABASE_URL=database.url,
        CHAT_REQUIRE_LOGIN="true",
    )
    try:
        local.up()
        yield local
    finally:
        local.down()
        database.stop()


def new_user(stack, prefix):
    """A user with a password and an API token: (username, token)."""
    username = f"{prefix}-{uuid.uuid4().hex[:8]}"
    stack.create_staff_user(username, PASSWORD)
    return username, stack.issue_token(username)


async def test_anonymous_users_cannot_chat(stack):
    async with stack.websocket("/ws/chat/lobby/") as ws:
        assert (await receive_json(ws))["error"] == "sign in to chat"
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
    assert closed.value.rcvd.code == 4401


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
