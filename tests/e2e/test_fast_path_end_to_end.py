"""The fast path on the real stack (deploy/fast_path.py under daphne, realtime.fanout), and
the same promises with it switched off (DAPHNE_FAST_PATH=off).

Messages are posted from a separate process (manage.py shell, as a script or a worker
would: stored, then published on commit), so that a test can post faster than one
client's rate limits allow.
"""

import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import pytest
from e2e.conftest import bearer, receive_json, receive_until_quiet
from e2e.localstack import LocalStack, free_port
from websockets.exceptions import ConnectionClosed

REAUTH_INTERVAL = 1


def start(tmp_path_factory, name, **settings):
    local = LocalStack(tmp_path_factory.mktemp(name) / "var", free_port(), **settings)
    local.up()
    return local


@pytest.fixture(scope="module")
def fast_stack(tmp_path_factory):
    """The stack as shipped (the fast path on), re-checking signed-in sockets each second."""
    local = start(tmp_path_factory, "fast", WEBSOCKET_REAUTH_INTERVAL=str(REAUTH_INTERVAL))
    try:
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def off_stack(tmp_path_factory):
    local = start(tmp_path_factory, "off", DAPHNE_FAST_PATH="off")
    try:
        yield local
    finally:
        local.down()


@pytest.fixture(params=["on", "off"])
def either_stack(request):
    """Each test with this fixture runs against both: the same promises either way."""
    return request.getfixturevalue({"on": "fast_stack", "off": "off_stack"}[request.param])


def room_name():
    return f"fast-{uuid.uuid4().hex[:8]}"


def post_messages(stack, room, count, size=10, interval=0.0):
    """Store and publish ``count`` messages of ``size`` characters from another process;
    their ids, in order."""
    script = (
        "import time; from django.contrib.auth.models import AnonymousUser; "
        "from chat.services import post_message\n"
        f"for n in range({count}):\n"
        f"    print(post_message({room!r}, AnonymousUser(), str(n).ljust({size}, 'x')).id)\n"
        f"    time.sleep({interval})\n"
    )
    output = stack.manage("shell", "--verbosity", "0", "-c", script)
    return [int(line) for line in output.split()]


def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status)[1])


def chat_ids(frames):
    return [frame["id"] for frame in frames if frame.get("type") == "chat.message"]


def test_each_daphne_says_whether_it_runs_the_fast_path(fast_stack, off_stack):
    daphnes = ["daphne-1.log", "daphne-2.log"]
    assert fast_stack.logs_containing("fast path: on") == daphnes
    assert off_stack.logs_containing("fast path: off") == daphnes
    assert fast_stack.logs_containing("fast path: off") == []


async def test_a_room_across_both_daphnes_gets_every_message_once_in_order(either_stack):
    """Members on both daphne processes, one resuming while messages are posted: every
    member gets every message after the point it asked for, once, in order."""
    room = room_name()
    first = (await asyncio.to_thread(post_messages, either_stack, room, 1))[0]
    async with (
        either_stack.daphne_websocket(1, f"/ws/chat/{room}/?since={first}") as one,
        either_stack.daphne_websocket(2, f"/ws/chat/{room}/?since={first}") as two,
    ):
        posting = asyncio.create_task(
            asyncio.to_thread(post_messages, either_stack, room, 100, interval=0.005)
        )
        await asyncio.sleep(0.1)  # a third member resumes while they are being posted
        async with either_stack.websocket(f"/ws/chat/{room}/?since={first}") as late:
            posted = await posting
            for ws in (one, two, late):
                assert chat_ids(await receive_until_quiet(ws)) == posted


async def test_a_reader_that_stops_holds_up_no_one_and_costs_its_daphne_nothing(fast_stack):
    """A member that stops reading (its client's queue full, then the kernel's buffers):
    the others on its daphne get every message as it is posted; nothing piles up for it
    in daphne's memory; when it reads again, it gets what it missed from the database, in
    order, each once (a reset and the latest if it fell more than a resume behind)."""
    room = room_name()
    count, size = 1500, 3900  # ~6 MB: far past the connection's buffers
    daphne = fast_stack.pid("daphne-1")
    async with (
        fast_stack.daphne_websocket(1, f"/ws/chat/{room}/", max_queue=4) as stalled,
        fast_stack.daphne_websocket(1, f"/ws/chat/{room}/") as reader,
    ):
        before = rss_kib(daphne)
        started = time.monotonic()
        posting = asyncio.create_task(
            asyncio.to_thread(post_messages, fast_stack, room, count, size)
        )
        received = [(await receive_json(reader, timeout=60))["id"] for _ in range(count)]
        posted = await posting
        assert received == posted
        behind = time.monotonic() - started
        growth = rss_kib(daphne) - before
        frames = await receive_until_quiet(stalled, quiet=2)
    print(f"stalled reader: the others had all {count} after {behind:.1f} s; daphne-1 grew "
          f"{growth} KiB while {count * size // 1024} KiB went out")  # fmt: skip
    assert growth < count * size / 1024 / 4
    ids = chat_ids(frames)
    assert ids == sorted(set(ids)) and ids[-1] == posted[-1]
    if any(frame.get("type") == "resume.reset" for frame in frames):
        reset = next(i for i, frame in enumerate(frames) if frame.get("type") == "resume.reset")
        assert chat_ids(frames[reset:]) == posted[-50:]
    else:
        assert ids == posted


async def test_signed_out_in_a_busy_room_gets_the_reason_then_the_close(fast_stack):
    """Re-authentication closes a token's socket while the room gets a message every few
    milliseconds: the reason, then 4401, and no message in between."""
    room = room_name()
    raw = await asyncio.to_thread(fast_stack.issue_token, f"busy-{room}")
    async with fast_stack.websocket(f"/ws/chat/{room}/", additional_headers=bearer(raw)) as ws:
        posting = asyncio.create_task(
            asyncio.to_thread(post_messages, fast_stack, room, 400, interval=0.01)
        )
        assert (await receive_json(ws))["type"] == "chat.message"  # the room is busy
        await asyncio.to_thread(
            fast_stack.manage,
            "shell",
            "-c",
            "from accounts.models import ApiToken; "
            f"ApiToken.objects.get(prefix={raw.split('.')[0]!r}).revoke()",
        )
        frames = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        await posting
    assert frames[-1] == {"error": "signed out: sign in again"}
    assert all(frame.get("type") == "chat.message" for frame in frames[:-1])
    assert closed.value.rcvd.code == 4401
