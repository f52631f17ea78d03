"""The public contract, exercised through nginx against real gunicorn, daphne and Redis."""

import asyncio
import json
import uuid

import pytest
from e2e.conftest import bearer, receive_json, receive_until
from websockets.exceptions import ConnectionClosed, InvalidStatus


def test_healthz_answers_through_gunicorn(stack):
    status, body, headers = stack.http("GET", "/healthz")
    assert status == 200
    assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert "no-cache" in headers["Cache-Control"]


def test_nginx_serves_static_files_with_long_cache(stack):
    manifest = json.loads((stack.data_dir / "public" / "static" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    status, body, headers = stack.http("GET", f"/static/{hashed}")
    assert status == 200 and "body" in body
    assert headers["Server"] == "nginx"
    assert "max-age=315360000" in headers["Cache-Control"]


async def test_echo_through_nginx(stack):
    async with stack.websocket("/ws/echo/") as ws:
        assert await receive_json(ws) == {"hello": "world"}
        await ws.send(json.dumps({"n": [1, 2, 3]}))
        assert await receive_json(ws) == {"echo": {"n": [1, 2, 3]}}
        await ws.send("not json")
        assert "invalid JSON" in (await receive_json(ws))["error"]
        await ws.send(json.dumps("still open"))
        assert await receive_json(ws) == {"echo": "still open"}


async def test_foreign_origin_is_refused(stack):
    with pytest.raises(InvalidStatus) as refused:
        async with stack.websocket("/ws/echo/", origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_chat_between_two_daphne_processes(stack):
    """One socket on each daphne process: the message can only cross through Redis."""
    room = f"e2e-{uuid.uuid4().hex[:8]}"
    async with (
        stack.daphne_websocket(1, f"/ws/chat/{room}/") as alice,
        stack.daphne_websocket(2, f"/ws/chat/{room}/") as bob,
    ):
        await alice.send(json.dumps({"message": "across processes"}))
        frames = [await receive_json(ws) for ws in (alice, bob)]
    assert frames[0] == frames[1]
    assert frames[1]["message"] == "across processes"


async def test_chat_through_nginx_with_history(stack):
    room = f"e2e-{uuid.uuid4().hex[:8]}"
    async with stack.websocket(f"/ws/chat/{room}/") as alice:
        for n in range(3):
            await alice.send(json.dumps({"message": f"m{n}"}))
            await receive_json(alice)
    async with stack.websocket(f"/ws/chat/{room}/") as late:
        history = [(await receive_json(late))["message"] for _ in range(3)]
    assert history == ["m0", "m1", "m2"]


async def test_http_push_reaches_the_users_socket(stack):
    """POST to gunicorn → Redis → the user's socket in daphne."""
    token = stack.issue_token(f"e2e-{uuid.uuid4().hex[:8]}")
    async with stack.websocket("/ws/notifications/", additional_headers=bearer(token)) as ws:
        status, body = await asyncio.to_thread(stack.notify, token, "deploy finished")
        assert status == 201
        frame = await receive_until(ws, lambda f: f.get("type") == "notification")
    assert (frame["id"], frame["text"]) == (body["id"], "deploy finished")


async def test_anonymous_notifications_socket_is_closed_with_4401(stack):
    async with stack.websocket("/ws/notifications/") as ws:
        assert "sign in" in (await receive_json(ws))["error"]
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
    assert closed.value.rcvd.code == 4401


@pytest.mark.parametrize(
    "body, headers, expected",
    [
        ({"text": "x"}, {}, 401),
        ({"text": "x"}, {"Authorization": "Bearer garbage"}, 401),
        (b"{not json", {"Authorization": "Bearer TOKEN"}, 400),
        ({"text": ""}, {"Authorization": "Bearer TOKEN"}, 400),
        ({"text": "a\x00b"}, {"Authorization": "Bearer TOKEN"}, 400),
    ],
    ids=["anonymous", "bad token", "not JSON", "empty text", "NUL in the text"],
)
def test_api_errors_through_nginx(stack, body, headers, expected):
    if "TOKEN" in headers.get("Authorization", ""):
        headers = {"Authorization": f"Bearer {stack.issue_token('e2e-errors')}"}
    status, content, _ = stack.http(
        "POST", "/api/notifications/", body, {"Content-Type": "application/json", **headers}
    )
    assert status == expected
    assert "error" in content
