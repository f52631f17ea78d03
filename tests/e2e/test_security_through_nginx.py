"""Defences against what a black-box probe of the stack tried, each proven through nginx
against the real gunicorn, daphne and Redis. (Control characters are among bad_frames.py,
run by test_bad_input_through_nginx.py; production's limits in test_production_like_stack.py.)
"""

import asyncio
import contextlib
import http.client
import json
import socket
import time
import uuid
from hashlib import sha256

import pytest
from e2e.conftest import bearer, receive_json, receive_until, receive_until_quiet
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

# -- origins -------------------------------------------------------------------------------

DEMO_PASSWORD = "demo-password"  # web/management/commands/demo_data.py, run by `up`


async def refused_status(stack, path, origin, **kwargs):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{stack.ws_url}{path}", origin=origin, open_timeout=10, **kwargs):
            pass
    return refused.value.response.status_code


@pytest.fixture(scope="module")
def alice_cookie(stack):
    cookies = stack.sign_in("alice", DEMO_PASSWORD, login_path="/login/")
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def lookalike_origins(stack):
    """Origins on the site's own host names that are not the site: another port, another
    scheme. Channels' AllowedHostsOriginValidator compares host names only."""
    return {
        "another port": "http://127.0.0.1:9999",
        "localhost on another port": "http://localhost:1234",
        "https instead of http": f"https://127.0.0.1:{stack.port}",
        "no port": "http://127.0.0.1",
    }


async def test_websockets_from_another_origin_of_the_sites_hosts_get_403(stack, alice_cookie):
    for name, origin in lookalike_origins(stack).items():
        status = await refused_status(
            stack, "/ws/notifications/?since=0", origin, additional_headers={"Cookie": alice_cookie}
        )
        assert status == 403, name


def sse_status(stack, headers):
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        connection.request("GET", "/sse/notifications/?since=0", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_event_streams_from_another_origin_get_403(stack, alice_cookie):
    for name, origin in lookalike_origins(stack).items():
        assert sse_status(stack, {"Cookie": alice_cookie, "Origin": origin}) == 403, name
    # The site's own origin, and a same-origin EventSource, which sends no Origin at all.
    assert sse_status(stack, {"Cookie": alice_cookie, "Origin": stack.url}) == 200
    assert sse_status(stack, {"Cookie": alice_cookie}) == 200


async def test_clients_without_an_origin_need_a_token_and_their_cookies_are_not_enough(
    stack, alice_cookie
):
    """Browsers always send Origin on a websocket handshake: one without it is a script or
    an app, which authenticates with a token, never with a cookie it might have copied."""
    assert await refused_status(stack, "/ws/echo/", None) == 403
    cookie = {"Cookie": alice_cookie}
    assert await refused_status(stack, "/ws/notifications/", None, additional_headers=cookie) == 403
    token = stack.issue_token(f"no-origin-{uuid.uuid4().hex[:8]}")
    async with connect(
        f"{stack.ws_url}/ws/notifications/", origin=None, additional_headers=bearer(token)
    ) as ws:
        status, body = await asyncio.to_thread(stack.notify, token, "to a script")
        assert status == 201
        assert (await receive_json(ws))["id"] == body["id"]


# -- replay ---------------------------------------------------------------------------------


def store_unannounced(stack, statement):
    """Run ``statement`` (bulk_create: no post_save, no broadcast) in manage.py shell and
    return what it prints last, as JSON."""
    output = stack.manage("shell", "-c", f"import json; {statement}")
    return json.loads(output.strip().splitlines()[-1])


def fill_room(stack, room, count):
    """``count`` messages in ``room``, stored at once: their ids, oldest first."""
    return store_unannounced(
        stack,
        "from chat.models import ChatMessage; "
        f"rows = ChatMessage.objects.bulk_create(ChatMessage(room={room!r}, username='bulk', "
        f"message=f'bulk {{n}}') for n in range({count})); "
        "print(json.dumps([row.id for row in rows]))",
    )


async def test_a_resume_replays_at_most_the_limit_then_tells_the_client_to_start_over(stack):
    room = f"big-{uuid.uuid4().hex[:8]}"
    ids = fill_room(stack, room, 1200)
    # Within the limit (1,000 messages): every one, in order, then nothing more.
    async with stack.websocket(f"/ws/chat/{room}/?since={ids[199]}") as ws:
        replayed = await receive_until_quiet(ws)
    assert [frame["id"] for frame in replayed] == ids[200:]
    # Past it: a reset, then the room's latest 50 as on a first visit, then nothing more.
    async with stack.websocket(f"/ws/chat/{room}/?since=0") as ws:
        frames = await receive_until_quiet(ws)
    reset, *latest = frames
    assert reset["type"] == "resume.reset" and reset["limit"] == 1000, reset
    assert [frame["id"] for frame in latest] == ids[-50:]
    # The socket lives on: the client starts over on it.
    async with stack.websocket(f"/ws/chat/{room}/?since=0") as ws:
        await receive_until_quiet(ws, quiet=0.5)
        await ws.send(json.dumps({"message": "after the reset"}))
        frame = await receive_until(ws, lambda f: f.get("message") == "after the reset")
        assert frame["id"] > ids[-1]


def notify_unannounced(stack, username, count):
    return store_unannounced(
        stack,
        "from django.contrib.auth import get_user_model; "
        "from notifications.models import Notification; "
        f"user = get_user_model().objects.get(username={username!r}); "
        "rows = Notification.objects.bulk_create(Notification(user=user, text=f'bulk {n}') "
        f"for n in range({count})); print(json.dumps([row.id for row in rows]))",
    )


async def test_a_notification_resume_past_its_limit_gets_a_reset_on_both_transports(stack):
    username, password = f"busy-{uuid.uuid4().hex[:8]}", "a long enough password"
    stack.create_staff_user(username, password)
    token = stack.issue_token(username)
    ids = notify_unannounced(stack, username, 250)
    resume = stack.websocket("/ws/notifications/?since=0", additional_headers=bearer(token))
    async with resume as ws:
        reset, *latest = await receive_until_quiet(ws)
    assert reset["type"] == "resume.reset" and reset["limit"] == 200, reset
    assert [frame["id"] for frame in latest] == ids[-20:]

    cookies = stack.sign_in(username, password, login_path="/login/")
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        headers = {"Cookie": cookie, "Last-Event-ID": "0"}
        connection.request("GET", "/sse/notifications/", headers=headers)
        response = connection.getresponse()
        # retry, the reset event, then 20 notifications of 4 lines each (id, event, data, "")
        lines = [response.readline().decode().rstrip("\n") for _ in range(5 + 4 * 20)]
    finally:
        connection.close()
    assert lines[:3] == ["retry: 1000", "", "event: resume.reset"]
    assert json.loads(lines[3].removeprefix("data: "))["limit"] == 200
    assert [int(line[4:]) for line in lines if line.startswith("id: ")] == ids[-20:]


# -- room groups ----------------------------------------------------------------------------


async def test_a_long_room_name_never_shares_a_group_with_another_room(stack):
    """Group names stay under 100 characters, so long room names are hashed; the 73-
    character room spelled like a long room's old shortened group used to get its messages."""
    long_room = f"long-{uuid.uuid4().hex}".ljust(100, "x")
    lookalike = f"{long_room[:40]}_{sha256(long_room.encode()).hexdigest()[:32]}"
    async with (
        stack.websocket(f"/ws/chat/{long_room}/") as long_member,
        stack.websocket(f"/ws/chat/{lookalike}/") as lookalike_member,
    ):
        for ws, room in ((long_member, long_room), (lookalike_member, lookalike)):
            await ws.send(json.dumps({"message": f"only in {room}"}))
            assert (await receive_json(ws))["room"] == room
        assert await receive_until_quiet(long_member, quiet=0.5) == []
        assert await receive_until_quiet(lookalike_member, quiet=0.5) == []


# -- posting limits -------------------------------------------------------------------------


async def test_posting_is_limited_per_address_across_sockets_and_daphnes(stack):
    """One message per fresh socket, from one address: the sockets share one budget in Redis
    (the stack's defaults: 10 a second, 30 at once), whichever daphne holds each of them."""
    room = f"flood-{uuid.uuid4().hex[:8]}"
    address = "127.0.0.21"
    started = time.monotonic()
    answers = []
    async with contextlib.AsyncExitStack() as sockets:
        members = [
            await sockets.enter_async_context(
                stack.websocket(f"/ws/chat/{room}/", local_addr=(address, 0))
            )
            for _ in range(60)
        ]
        for n, ws in enumerate(members):
            await ws.send(json.dumps({"message": f"post {n}"}))
        for n, ws in enumerate(members):
            answers.append(
                await receive_until(
                    ws, lambda f, n=n: "error" in f or f.get("message") == f"post {n}"
                )
            )
    elapsed = time.monotonic() - started
    refused = [answer for answer in answers if "error" in answer]
    assert refused, "every post was stored"
    assert all(answer["error"].startswith("too many messages") for answer in refused)
    stored = len(answers) - len(refused)
    assert 30 <= stored <= 30 + 10 * elapsed + 1, (stored, elapsed)


# -- secrets in URLs --------------------------------------------------------------------------

DAPHNES = ("daphne-1", "daphne-2")


def test_tokens_in_urls_are_refused_by_nginx_and_never_logged_even_with_daphne_down(stack):
    raw = stack.issue_token(f"in-url-{uuid.uuid4().hex[:8]}")
    secret = raw.split(".", 1)[1]
    for name in DAPHNES:
        stack.stop_program(name)
    try:
        for path in ("/ws/notifications/", "/sse/notifications/"):
            status, body, _ = stack.http("GET", f"{path}?token={raw}")
            assert status == 400 and "Authorization" in body, (path, status, body)
    finally:
        stack.restore(DAPHNES)
    assert stack.logs_containing(secret) == []


async def test_a_ticket_opens_one_socket_once_and_never_travels_in_a_url(stack):
    token = stack.issue_token(f"ticket-{uuid.uuid4().hex[:8]}")
    headers = {**bearer(token), "Content-Type": "application/json"}
    status, body, _ = stack.http("POST", "/api/ws-ticket/", b"", headers)
    assert status == 201 and body["expires_in"] <= 60, body
    offer = ["realtime.ticket", body["ticket"]]
    async with connect(
        f"{stack.ws_url}/ws/notifications/", origin=None, subprotocols=offer, open_timeout=10
    ) as ws:
        assert ws.subprotocol == "realtime.ticket"
        status, pushed = await asyncio.to_thread(stack.notify, token, "over a ticket")
        assert (await receive_json(ws))["id"] == pushed["id"]
    async with connect(
        f"{stack.ws_url}/ws/notifications/", origin=stack.url, subprotocols=offer, open_timeout=10
    ) as again:
        assert "sign in" in (await receive_json(again))["error"]
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(again)
    assert closed.value.rcvd.code == 4401
    assert stack.logs_containing(body["ticket"]) == []


# -- unknown hosts ----------------------------------------------------------------------------


def raw_request(address, host):
    """The bytes answered to a GET /healthz with ``host`` (b"": closed without an answer)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family) as client:
        client.settimeout(10)
        client.connect(address)
        request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        client.sendall(request.encode())
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def test_unknown_hosts_get_no_answer_from_nginx_and_never_reach_django(stack):
    host = f"probe-{uuid.uuid4().hex[:8]}.example"
    assert raw_request(("127.0.0.1", stack.port), host) == b""
    assert raw_request(("127.0.0.1", stack.port), f"localhost:{stack.port}").startswith(
        b"HTTP/1.1 200"
    )
    assert stack.logs_containing(host) == []


def test_a_disallowed_host_that_reaches_gunicorn_is_one_log_line_without_traceback(stack):
    host = f"direct-{uuid.uuid4().hex[:8]}.example"
    answer = raw_request(str(stack.run_dir / "gunicorn.sock"), host)
    assert answer.startswith(b"HTTP/1.1 400") and b"Traceback" not in answer
    log = (stack.data_dir / "log" / "gunicorn.log").read_text()
    lines = [line for line in log.splitlines() if host in line]
    # One line: a traceback would end with the exception, naming the host again.
    assert len(lines) == 1 and "WARNING django.security.DisallowedHost" in lines[0], lines
