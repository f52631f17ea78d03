"""The fast path (realtime.fanout): what a socket receives when the process writes a group
event's frame straight to its connection, interleaved with what its consumer sends itself.

The server's side is daphne's (deploy/fast_path.py, exercised through nginx in
tests/e2e/test_fast_path_end_to_end.py). Here the connection is the communicator's: its frame writer
puts each frame on the communicator's output, the very queue the consumer's own sends go
to, so the order a client would see is the order these tests read. The channel layer is
the real one, on the session's Redis; events come from the app's own writes
(post_message: stored, then published on commit).
"""

import asyncio
import contextlib

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import re_path
from unit.conftest import ORIGIN, TIMEOUT, receive

from accounts.tokens import issue_token
from chat.consumers import ChatConsumer
from chat.events import room_group
from chat.models import ChatMessage
from chat.services import post_message
from config.asgi import application
from realtime import catch_up, fanout, replay

pytestmark = pytest.mark.django_db(transaction=True)


class ConnectionFrames:
    """The frame writer a server offers for one connection (realtime.fanout's interface):
    frames go to the communicator's output, after whatever the consumer sent before."""

    prepared = 0  # over every connection: frames built

    def __init__(self, communicator):
        self.output = communicator.output_queue
        self.written = 0
        self.full = False  # a backed-up connection: nothing is written

    def prepare_frame(self, text):
        ConnectionFrames.prepared += 1
        return text

    def send_frame(self, frame):
        if self.full:
            return False
        self.output.put_nowait({"type": "websocket.send", "text": frame})
        self.written += 1
        return True

    def backed_up(self):
        return self.full


@pytest.fixture
async def fast():
    """Open sockets whose connection offers a frame writer: ``await fast(path)`` returns
    ``(communicator, frames)``; all are disconnected when the test ends."""
    opened = []
    ConnectionFrames.prepared = 0

    async def _open(path, headers=(ORIGIN,), app=application):
        communicator = WebsocketCommunicator(app, path, headers=list(headers))
        frames = ConnectionFrames(communicator)
        communicator.scope["extensions"] = {fanout.FRAMES: frames}
        opened.append(communicator)
        accepted, _ = await communicator.connect(timeout=TIMEOUT)
        assert accepted
        return communicator, frames

    yield _open
    for communicator in opened:
        await communicator.disconnect(timeout=TIMEOUT)


@database_sync_to_async
def post(room, text):
    """A message stored and published on commit, as a member's post is."""
    return post_message(room, AnonymousUser(), text).id


@database_sync_to_async
def store_unannounced(room, count):
    """Rows written without an event (bulk_create sends no post_save): what a socket
    misses when a publish finds no subscriber."""
    rows = ChatMessage.objects.bulk_create(
        ChatMessage(room=room, username="bob", message=f"m{n}") for n in range(count)
    )
    return [row.id for row in rows]


async def received_ids(ws, count):
    return [(await receive(ws))["id"] for _ in range(count)]


def nothing_queued_for_consumers():
    """No group event waits in any consumer's queue of the process's layer."""
    return all(queue.empty() for queue in get_channel_layer()._get_layer().channels.values())


async def test_each_message_is_framed_once_and_written_to_every_member(fast):
    alice, alice_frames = await fast("/ws/chat/fast/")
    bob, bob_frames = await fast("/ws/chat/fast/")
    await alice.send_json_to({"message": "hi"})
    frames = [await receive(ws) for ws in (alice, bob)]
    assert frames[0] == frames[1] and frames[0]["message"] == "hi"
    assert (alice_frames.written, bob_frames.written, ConnectionFrames.prepared) == (1, 1, 1)
    assert nothing_queued_for_consumers()


async def test_a_message_published_during_the_backlog_follows_it_once(fast):
    """The backlog (a resume, here waiting for a replay slot) goes first; the live
    message published meanwhile is not written ahead of it, but read after it."""
    backlog = await store_unannounced("backlog", 3)
    async with replay_slots_taken():
        ws, frames = await fast("/ws/chat/backlog/?since=0")
        live = await post("backlog", "published during the backlog")
        await delivered_before()
        assert frames.written == 0 and await ws.receive_nothing(timeout=0.3)
    assert await received_ids(ws, 4) == [*backlog, live]
    assert await ws.receive_nothing(timeout=0.3)
    assert frames.written == 0  # it came from the database, after the backlog
    after = await post("backlog", "live")
    assert (await received_ids(ws, 1), frames.written) == ([after], 1)


async def test_a_resume_racing_live_posts_gets_every_message_once_in_order(fast):
    first = await post("racing", "before")
    posting = asyncio.create_task(post_many("racing", 30))
    ws, _ = await fast(f"/ws/chat/racing/?since={first}")
    posted = await posting
    assert await received_ids(ws, len(posted)) == posted
    assert await ws.receive_nothing(timeout=0.3)


async def post_many(room, count):
    ids = []
    for n in range(count):
        ids.append(await post(room, f"m{n}"))
        await asyncio.sleep(0.005)
    return ids


async def test_after_an_outage_the_socket_reads_what_it_missed_then_takes_frames_again(fast):
    ws, frames = await fast("/ws/chat/outage/")
    async with replay_slots_taken():  # the catch-up waits to read
        catch_up.subscription_restored()  # as redis-py's connect hook does after an outage
        missed = await store_unannounced("outage", 2)
        during = await post("outage", "published while catching up")
        await delivered_before()
        assert frames.written == 0 and await ws.receive_nothing(timeout=0.3)
    assert await received_ids(ws, 3) == [*missed, during]
    assert frames.written == 0
    after = await post("outage", "after")
    assert (await received_ids(ws, 1), frames.written) == ([after], 1)
    assert await ws.receive_nothing(timeout=catch_up.SETTLE_SECONDS + 0.2)


@contextlib.asynccontextmanager
async def replay_slots_taken():
    """Every replay slot of the process taken: a backlog or a catch-up waits to read."""
    slots = replay.slots()
    for _ in range(replay.REPLAYS_PER_PROCESS):
        await slots.acquire()
    try:
        yield
    finally:
        for _ in range(replay.REPLAYS_PER_PROCESS):
            slots.release()


async def delivered_before():
    """Until what was published before now has reached this process: an event published
    now reaches a channel of its own (one subscription delivers in order)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("probe", channel)
    await layer.group_send("probe", {"type": "probe"})
    assert (await asyncio.wait_for(layer.receive(channel), TIMEOUT))["type"] == "probe"
    await layer.group_discard("probe", channel)


async def test_error_frames_and_broadcasts_interleave_each_in_its_own_order(fast):
    """A member's own answers (errors) and the room's messages share its connection:
    the answers come in the order of its frames, the messages in id order, each once."""
    alice, _ = await fast("/ws/chat/mixed/")
    bob, _ = await fast("/ws/chat/mixed/")
    for n in range(5):
        await alice.send_json_to({"message": ""})
        await alice.send_json_to({"message": f"m{n}"})
    frames = [await receive(alice) for _ in range(10)]
    assert [frame["error"] for frame in frames if "error" in frame] == ['"message" is empty'] * 5
    messages = [frame for frame in frames if "error" not in frame]
    assert [frame["message"] for frame in messages] == [f"m{n}" for n in range(5)]
    assert [frame["id"] for frame in messages] == await received_ids(bob, 5)
    assert await alice.receive_nothing(timeout=0.2)


class SlowToCloseChatConsumer(ChatConsumer):
    """A reason that takes a while to go out, as a send to a backed-up connection does
    (it waits for room after writing: deploy/run_daphne.py)."""

    async def send_error(self, reason):
        await super().send_error(reason)
        await asyncio.sleep(0.2)


async def test_after_the_signed_out_reason_nothing_but_the_close(fast, user, settings):
    """Re-authentication closes with 4401 while the room is busy: no message is written
    between the reason and the close, however long the reason takes to go out."""
    settings.WEBSOCKET_REAUTH_INTERVAL = 0.2
    token, raw = await database_sync_to_async(issue_token)(user)
    app = with_user(chat_app(SlowToCloseChatConsumer), user, token)
    ws, frames = await fast("/ws/chat/busy/", app=app)
    stop = asyncio.Event()

    async def keep_posting():
        while not stop.is_set():
            await post("busy", "busy")
            await asyncio.sleep(0.01)

    posting = asyncio.create_task(keep_posting())
    try:
        while frames.written < 5:  # messages flow, on the fast path
            assert (await receive(ws))["type"] == "chat.message"
        await database_sync_to_async(token.revoke)()
        while (frame := await receive(ws)).get("type") == "chat.message":
            pass
        assert frame == {"error": "signed out: sign in again"}
        output = await ws.receive_output(timeout=TIMEOUT)
        assert (output["type"], output.get("code")) == ("websocket.close", 4401)
    finally:
        stop.set()
        await posting


async def test_a_backed_up_member_holds_up_no_one_and_later_reads_what_it_missed(fast):
    """Nothing is written to a backed-up connection, nothing is kept for it in memory;
    the others get every message at once; once it has room, it reads from the database
    what it missed, in order, each once, and takes frames again."""
    alice, alice_frames = await fast("/ws/chat/slow/")
    slow, slow_frames = await fast("/ws/chat/slow/")
    slow_frames.full = True
    posted = [await post("slow", f"m{n}") for n in range(5)]
    assert await received_ids(alice, 5) == posted
    assert alice_frames.written == 5
    assert slow_frames.written == 0 and nothing_queued_for_consumers()
    assert await slow.receive_nothing(timeout=0.2)
    slow_frames.full = False
    assert await received_ids(slow, 5) == posted
    after = await post("slow", "after")
    assert await received_ids(slow, 1) == [after]
    assert slow_frames.written == 1
    assert await slow.receive_nothing(timeout=0.2)


class TypingChatConsumer(ChatConsumer):
    """A chat consumer with an event type handled per member (slowly): its frames must
    not be overtaken by the room's messages, which the fast path writes."""

    async def chat_typing(self, event):
        await asyncio.sleep(0.2)
        await self.send_json({"typing": event["who"]})


def chat_app(consumer):
    """``consumer`` at /ws/chat/<room>/, without the project's middleware (the scope's
    user comes from ``with_user``)."""
    return URLRouter([re_path(r"^ws/chat/(?P<room>[^/]*)/$", consumer.as_asgi())])


def with_user(app, user=None, token=None):
    """The scope's user (anonymous by default), as the auth middleware would set it."""

    async def signed_in(scope, receive, send):
        scope = {**scope, "user": user or AnonymousUser(), "api_token": token}
        return await app(scope, receive, send)

    return signed_in


async def test_a_frame_waits_behind_an_event_its_consumer_is_still_handling(fast):
    ws, frames = await fast("/ws/chat/typing/", app=with_user(chat_app(TypingChatConsumer)))
    await get_channel_layer().group_send(room_group("typing"), {"type": "chat.typing", "who": "b"})
    message = await post("typing", "after the typing event")
    assert await receive(ws) == {"typing": "b"}
    assert (await receive(ws))["id"] == message
    assert frames.written == 0  # through the handler, behind the typing event
    after = await post("typing", "later")
    assert (await received_ids(ws, 1), frames.written) == ([after], 1)
