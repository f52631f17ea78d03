"""Faults on the real stack: processes killed and stopped, Redis restarted, sessions ended
under open sockets. Nothing persisted may be lost, and no one stays signed in who should not.

The module runs its own stack (it kills processes), re-checking signed-in sockets every
second instead of every 30.
"""

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid

import pytest
from e2e.conftest import receive_json, receive_until
from e2e.localstack import LocalStack, children, free_port
from polling import wait_until_async
from websockets.exceptions import ConnectionClosed, InvalidHandshake

REAUTH_INTERVAL = 1
RECOVERY_TIMEOUT = 60  # bound on every "until it works again" wait


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    local = LocalStack(
        tmp_path_factory.mktemp("faults") / "var",
        free_port(),
        WEBSOCKET_REAUTH_INTERVAL=str(REAUTH_INTERVAL),
    )
    local.up()
    try:
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def issue_token(stack):
    """stack.issue_token, remembering every raw token, to look for in the logs at the end."""

    def issue(username):
        raw = stack.issue_token(username)
        issue.issued.append(raw)
        return raw

    issue.issued = []
    return issue


@pytest.fixture
def restore(stack):
    """Whatever a test stops, started again afterwards, even if the test fails."""
    yield
    stack.restore()


def room_name():
    return f"fault-{uuid.uuid4().hex[:8]}"


async def close_frame(ws, timeout=15):
    """The close frame the server sent (None if the connection was dropped without one)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd


async def until(probe, what):
    """Poll ``probe`` (async) until it works again; a connection error means "not yet"."""
    return await wait_until_async(
        probe, what, RECOVERY_TIMEOUT,
        retry_on=(OSError, ConnectionClosed, InvalidHandshake, TimeoutError),
    )  # fmt: skip


class Poster:
    """Posts to a room over a socket on daphne-2, remembering the id of each message."""

    def __init__(self, stack, room):
        self.connection = stack.daphne_websocket(2, f"/ws/chat/{room}/")
        self.ids = []

    async def __aenter__(self):
        self.ws = await self.connection.__aenter__()
        return self

    async def __aexit__(self, *exc):
        await self.connection.__aexit__(*exc)

    async def post(self, text):
        await self.ws.send(json.dumps({"message": text}))
        frame = await receive_until(self.ws, lambda f: f.get("message") == text)
        self.ids.append(frame["id"])
        return frame["id"]

    async def keep_posting(self, stop):
        """Post about 6 times a second (under the rate limit) until ``stop`` is set."""
        while not stop.is_set():
            await self.post(f"during {len(self.ids)}")
            await asyncio.sleep(0.15)


async def reconnect(stack, path, timeout=RECOVERY_TIMEOUT):
    """A client's reconnect loop through nginx: retry with backoff until a handshake works."""
    deadline, delay = time.monotonic() + timeout, 0.1
    while True:
        try:
            return await stack.websocket(path)
        except (OSError, InvalidHandshake, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2)


async def resume(stack, room, since, expected):
    """Reconnect with ?since= as a client does; the ids it receives."""
    ids = []
    async with await reconnect(stack, f"/ws/chat/{room}/?since={since}") as ws:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while len(ids) < len(expected):
                    ids.append((await receive_json(ws))["id"])
        with contextlib.suppress(TimeoutError):  # anything more would be a duplicate
            ids.append((await receive_json(ws, timeout=0.5))["id"])
    return ids


def assert_nothing_lost(received, posted):
    lost = sorted(set(posted) - set(received))
    assert lost == [], f"{len(lost)} messages lost"
    assert received == posted  # in order, no duplicates


async def test_kill_9_daphne_http_keeps_answering_and_nothing_is_lost(stack, restore):
    room = room_name()
    async with (
        Poster(stack, room) as poster,
        stack.daphne_websocket(1, f"/ws/chat/{room}/") as reader,
    ):
        for n in range(5):
            await poster.post(f"before {n}")
        seen = [(await receive_json(reader))["id"] for _ in range(5)]
        assert seen == poster.ids
        stop = asyncio.Event()
        posting = asyncio.create_task(poster.keep_posting(stop))

        old_pid = stack.pid("daphne-1")
        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)
        assert await close_frame(reader) is None  # dropped: a kill sends no close frame

        # HTTP is gunicorn's: it keeps answering while daphne is down.
        status, body, _ = await asyncio.to_thread(stack.http, "GET", "/healthz")
        assert (status, body["status"]) == (200, "ok")
        # Through nginx, new sockets go to the surviving daphne at once.
        async with stack.websocket("/ws/echo/") as ws:
            assert await receive_json(ws) == {"hello": "world"}
        # supervisord restarts the killed one; it accepts sockets again within seconds.
        await asyncio.to_thread(stack.wait_running, "daphne-1", old_pid, RECOVERY_TIMEOUT)

        async def daphne_1_answers():
            async with stack.daphne_websocket(1, "/ws/echo/") as ws:
                return await receive_json(ws) == {"hello": "world"}

        await until(daphne_1_answers, "a connection to the restarted daphne-1")
        back_after = time.monotonic() - killed_at
        stop.set()
        await posting
        await poster.post("after the restart")
        missed = poster.ids[5:]
        assert len(missed) > 1
        assert_nothing_lost(await resume(stack, room, seen[-1], missed), missed)
    print(f"kill -9 daphne: accepting again after {back_after:.2f} s, {len(missed)} resumed")
    assert back_after < 30, f"daphne-1 took {back_after:.1f} s to accept sockets again"


async def test_graceful_stop_closes_sockets_with_1012_and_they_resume(stack, restore):
    room = room_name()
    # Every socket through nginx lands on daphne-1 while daphne-2 is stopped.
    stack.stop_program("daphne-2")
    async with contextlib.AsyncExitStack() as sockets:
        readers = [
            await sockets.enter_async_context(stack.websocket(f"/ws/chat/{room}/"))
            for _ in range(3)
        ]
        stack.start_program("daphne-2")
        stack.wait_running("daphne-2")
        poster = await sockets.enter_async_context(Poster(stack, room))
        await poster.post("before")
        seen = [(await receive_json(reader))["id"] for reader in readers]
        assert seen == poster.ids * 3
        stop = asyncio.Event()
        posting = asyncio.create_task(poster.keep_posting(stop))

        started = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(stack.stop_program, "daphne-1"))
        frames = await asyncio.gather(*(close_frame(reader) for reader in readers))
        closed_after = time.monotonic() - started
        await stopping
        stopped_after = time.monotonic() - started

        assert [(frame.code, frame.reason) for frame in frames] == [(1012, "server restarting")] * 3
        # Each client reconnects at once (nginx sends it to daphne-2) and resumes.
        stop.set()
        await posting
        missed = poster.ids[1:]
        for _ in readers:
            assert_nothing_lost(await resume(stack, room, seen[0], missed), missed)
    print(
        f"graceful stop: 1012 after {closed_after:.3f} s, stopped after {stopped_after:.2f} s, "
        f"{len(missed)} × 3 resumed"
    )
    assert closed_after < 5 and stopped_after < 15  # well inside supervisord's stopwaitsecs


async def test_kill_9_gunicorn_sockets_keep_working_and_http_comes_back(
    stack, restore, issue_token
):
    room = room_name()
    async with (
        stack.daphne_websocket(1, f"/ws/chat/{room}/") as alice,
        stack.daphne_websocket(2, f"/ws/chat/{room}/") as bob,
    ):
        master = stack.pid("gunicorn")
        group = [master, *children(master)]
        for pid in group:  # the whole tier at once: master and workers
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        # Sockets live in daphne: the chat keeps working with gunicorn gone.
        await alice.send(json.dumps({"message": "gunicorn is down"}))
        assert (await receive_json(bob))["message"] == "gunicorn is down"

        async def healthy():
            status, _, _ = await asyncio.to_thread(stack.http, "GET", "/healthz")
            return status == 200

        await until(healthy, "HTTP answering again")
        back_after = time.monotonic() - killed_at
        assert stack.pid("gunicorn") != master
        # And the push path through the new gunicorn works.
        token = await asyncio.to_thread(issue_token, f"gunicorn-{room}")
        async with stack.websocket(
            "/ws/notifications/", additional_headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            status, body = await asyncio.to_thread(stack.notify, token, "after the crash")
            assert status == 201
            assert (await receive_json(ws))["id"] == body["id"]
    print(f"kill -9 gunicorn: HTTP back after {back_after:.2f} s")
    assert back_after < 30, f"HTTP took {back_after:.1f} s to come back"


async def test_redis_down_then_back_without_restarting_the_app(stack, restore, issue_token):
    room = room_name()
    token = await asyncio.to_thread(issue_token, f"redis-{room}")
    bearer = {"Authorization": f"Bearer {token}"}
    pids = {name: stack.pid(name) for name in ("gunicorn", "daphne-1", "daphne-2")}
    async with (
        stack.daphne_websocket(1, f"/ws/chat/{room}/") as alice,
        stack.daphne_websocket(2, f"/ws/chat/{room}/") as bob,
        stack.websocket("/ws/notifications/", additional_headers=bearer) as bell,
    ):
        await alice.send(json.dumps({"message": "before"}))
        last_seen = (await receive_json(bob))["id"]

        await asyncio.to_thread(stack.stop_program, "redis")
        # /healthz names what is down.
        status, body, _ = await asyncio.to_thread(stack.http, "GET", "/healthz")
        assert status == 503
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("unavailable")
        # New sockets are told to come back later.
        async with stack.websocket(f"/ws/chat/{room}/") as late:
            assert "temporarily unavailable" in (await receive_json(late))["error"]
            assert (await close_frame(late)).code == 1013
        # Writes still succeed and are stored; they cannot be delivered live.
        await alice.send(json.dumps({"message": "while redis is down"}))
        status, _ = await asyncio.to_thread(stack.notify, token, "while redis is down")
        assert status == 201

        await asyncio.to_thread(stack.start_program, "redis")
        recovered_at = time.monotonic()

        # Open sockets are caught up from the database once their daphne re-subscribes,
        # before any newer event and without reconnecting.
        missed = await receive_json(bob, timeout=RECOVERY_TIMEOUT)
        assert missed["message"] == "while redis is down" and missed["id"] > last_seen
        missed_push = await receive_json(bell, timeout=RECOVERY_TIMEOUT)
        assert missed_push["text"] == "while redis is down"
        caught_up_after = time.monotonic() - recovered_at

        # Group messages flow again between the two daphne processes...
        async def chat_flows():
            text = f"after {uuid.uuid4().hex[:6]}"
            await alice.send(json.dumps({"message": text}))
            frame = await receive_until(bob, lambda f: f.get("message") == text, timeout=1)
            return frame["id"]

        after_id = await until(chat_flows, "a group message after Redis came back")
        chat_back_after = time.monotonic() - recovered_at

        # ...and so do HTTP pushes, from gunicorn through Redis to daphne.
        async def push_flows():
            text = f"push {uuid.uuid4().hex[:6]}"
            await asyncio.to_thread(stack.notify, token, text)
            return await receive_until(bell, lambda f: f.get("text") == text, timeout=1)

        await until(push_flows, "an HTTP push after Redis came back")
    assert {name: stack.pid(name) for name in pids} == pids  # nothing was restarted
    status, body, _ = await asyncio.to_thread(stack.http, "GET", "/healthz")
    assert (status, body["status"]) == (200, "ok")
    # The message posted during the outage was stored: a resume delivers it too.
    async with stack.websocket(f"/ws/chat/{room}/?since={last_seen}") as ws:
        assert (await receive_json(ws))["id"] == missed["id"] < after_id
    print(
        f"redis restart: open sockets caught up {caught_up_after:.2f} s, "
        f"group messages again {chat_back_after:.2f} s after it started"
    )
    assert chat_back_after < 10, f"group messages took {chat_back_after:.1f} s to flow again"


async def test_kill_9_redis_is_restarted_and_messages_flow_again(stack, restore):
    room = room_name()
    async with (
        stack.daphne_websocket(1, f"/ws/chat/{room}/") as alice,
        stack.daphne_websocket(2, f"/ws/chat/{room}/") as bob,
    ):
        old_pid = stack.pid("redis")
        os.kill(old_pid, signal.SIGKILL)
        await asyncio.to_thread(stack.wait_running, "redis", old_pid)

        async def chat_flows():
            text = f"after kill {uuid.uuid4().hex[:6]}"
            await alice.send(json.dumps({"message": text}))
            return await receive_until(bob, lambda f: f.get("message") == text, timeout=1)

        await until(chat_flows, "a group message after Redis was restarted")


@pytest.fixture(scope="module")
def browser(stack):
    stack.create_staff_user("e2e-faults", "a long enough password")
    return stack.sign_in("e2e-faults", "a long enough password")


async def test_logout_closes_the_sessions_sockets_with_4401(stack, browser):
    cookie = "; ".join(f"{name}={value}" for name, value in browser.items())
    async with stack.websocket("/ws/notifications/", additional_headers={"Cookie": cookie}) as ws:
        with pytest.raises(TimeoutError):  # signed in: several sweeps pass, it stays open
            await receive_json(ws, timeout=REAUTH_INTERVAL * 2.5)
        status, _, _ = await asyncio.to_thread(
            stack.http,
            "POST",
            "/admin/logout/",
            b"",
            {"Cookie": cookie, "X-CSRFToken": browser["csrftoken"], "Referer": stack.url},
        )
        assert status in (200, 302)
        logged_out_at = time.monotonic()
        assert await receive_json(ws) == {"error": "signed out: sign in again"}
        assert (await close_frame(ws)).code == 4401
    closed_after = time.monotonic() - logged_out_at
    print(f"logout: 4401 after {closed_after:.2f} s (interval {REAUTH_INTERVAL} s)")
    assert closed_after < REAUTH_INTERVAL + 5


async def test_token_revocation_closes_the_tokens_sockets_with_4401(stack, issue_token):
    raw = await asyncio.to_thread(issue_token, "e2e-revoked")
    bearer = {"Authorization": f"Bearer {raw}"}
    async with stack.websocket("/ws/notifications/", additional_headers=bearer) as ws:
        revoked_at = time.monotonic()  # at the latest: the command below takes a moment
        await asyncio.to_thread(
            stack.manage,
            "shell",
            "-c",
            "from accounts.models import ApiToken; "
            f"ApiToken.objects.get(prefix={raw.split('.')[0]!r}).revoke()",
        )
        assert await receive_json(ws) == {"error": "signed out: sign in again"}
        assert (await close_frame(ws)).code == 4401
    closed_after = time.monotonic() - revoked_at
    print(f"token revoked: 4401 after {closed_after:.2f} s (interval {REAUTH_INTERVAL} s)")
    assert closed_after < REAUTH_INTERVAL + 5


def test_header_tokens_never_reach_any_log_even_through_faults(stack, issue_token):
    """Every token this module sent in an Authorization header, through kills, restarts
    and a Redis outage: in no log file, nginx's error log included."""
    assert len(issue_token.issued) == 3
    for raw in issue_token.issued:
        assert stack.logs_containing(raw.split(".", 1)[1]) == []
    assert stack.logs_containing("Bearer") == []
