from hashlib import sha256

import pytest
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.test import override_settings
from unit.conftest import ORIGIN, bearer, closed_with, receive

from chat.events import room_group
from chat.models import ChatMessage
from chat.services import RESUME_LIMIT
from realtime import replay

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def stored_messages(room):
    return list(ChatMessage.objects.filter(room=room).values_list("message", flat=True))


@database_sync_to_async
def seed(room, count):
    return [
        ChatMessage.objects.create(room=room, username="seed", message=f"m{n}").id
        for n in range(count)
    ]


async def test_members_of_a_room_receive_each_others_messages(connect):
    alice, _, _ = await connect("/ws/chat/lobby/")
    bob, _, _ = await connect("/ws/chat/lobby/")
    await alice.send_json_to({"message": "hi bob"})
    for ws in (alice, bob):
        frame = await receive(ws)
        assert frame["type"] == "chat.message"
        assert (frame["room"], frame["username"], frame["message"]) == ("lobby", "anon", "hi bob")
        assert isinstance(frame["id"], int) and "T" in frame["created"]
    assert await stored_messages("lobby") == ["hi bob"]


async def test_other_rooms_do_not_receive_the_message(connect):
    alice, _, _ = await connect("/ws/chat/one/")
    carol, _, _ = await connect("/ws/chat/two/")
    await alice.send_json_to({"message": "only for one"})
    await receive(alice)
    assert await carol.receive_nothing(timeout=0.3)


async def test_signed_in_users_chat_under_their_name(connect, token):
    ws, _, _ = await connect("/ws/chat/lobby/", headers=(ORIGIN, bearer(token)))
    await ws.send_json_to({"message": "hello"})
    assert (await receive(ws))["username"] == "alice"


async def test_history_is_the_last_50_oldest_first(connect):
    ids = await seed("busy", 60)
    ws, _, _ = await connect("/ws/chat/busy/")
    history = [(await receive(ws))["id"] for _ in range(50)]
    assert history == ids[-50:]
    assert await ws.receive_nothing(timeout=0.2)


async def test_since_resumes_with_every_missed_message_in_order(connect):
    ids = await seed("resume", 450)  # more than one page of the resume query
    ws, _, _ = await connect(f"/ws/chat/resume/?since={ids[9]}")
    resumed = [(await receive(ws))["id"] for _ in range(440)]
    assert resumed == ids[10:]
    assert await ws.receive_nothing(timeout=0.2)


@database_sync_to_async
def seed_many(room, count):
    rows = ChatMessage.objects.bulk_create(
        ChatMessage(room=room, username="seed", message=f"m{n}") for n in range(count)
    )
    return [row.id for row in rows]


async def test_a_resume_replays_up_to_the_limit_then_starts_the_client_over(connect):
    ids = await seed_many("far", RESUME_LIMIT + 1)
    ws, _, _ = await connect(f"/ws/chat/far/?since={ids[0]}")  # exactly the limit behind
    assert [(await receive(ws))["id"] for _ in range(RESUME_LIMIT)] == ids[1:]
    assert await ws.receive_nothing(timeout=0.2)
    ws, _, _ = await connect("/ws/chat/far/?since=0")
    reset = await receive(ws)
    assert (reset["type"], reset["limit"]) == ("resume.reset", RESUME_LIMIT)
    latest = [(await receive(ws))["id"] for _ in range(50)]
    assert latest == ids[-50:]
    assert await ws.receive_nothing(timeout=0.2)
    # It stays open: the client starts over on it, and live messages follow.
    await ws.send_json_to({"message": "after the reset"})
    assert (await receive(ws))["message"] == "after the reset"


async def test_replays_take_turns_for_the_processs_slots(connect):
    """While every replay slot of the process is taken, a resume waits for one: a few
    clients resuming cannot hold the database thread against everyone else."""
    ids = await seed("turns", 3)
    taken = replay.slots()
    for _ in range(replay.REPLAYS_PER_PROCESS):
        await taken.acquire()
    try:
        ws, accepted, _ = await connect("/ws/chat/turns/?since=0")
        assert accepted and await ws.receive_nothing(timeout=0.3)
        taken.release()
        assert [(await receive(ws))["id"] for _ in ids] == ids
    finally:
        for _ in range(replay.REPLAYS_PER_PROCESS - 1):
            taken.release()


@pytest.mark.parametrize(
    "frame, reason",
    [
        ({"message": ""}, "empty"),
        ({"message": "   "}, "empty"),
        ({"message": "x" * 4001}, "longer than 4000"),
        ({"message": 5}, "must be a string"),
        ({"text": "wrong field"}, "must be a string"),
        (["not", "an", "object"], "JSON object"),
    ],
)
async def test_invalid_messages_get_an_error_and_nothing_is_stored(connect, frame, reason):
    ws, _, _ = await connect("/ws/chat/strict/")
    await ws.send_json_to(frame)
    assert reason in (await receive(ws))["error"]
    assert await stored_messages("strict") == []


async def test_tabs_and_line_breaks_are_text_not_control_characters(connect):
    ws, _, _ = await connect("/ws/chat/lines/")
    await ws.send_json_to({"message": "one\ttwo\r\nthree \u00e9\U0001f600"})
    assert (await receive(ws))["message"] == "one\ttwo\r\nthree \u00e9\U0001f600"
    await ws.send_json_to({"message": "x" * 4000})  # the longest allowed still works
    assert (await receive(ws))["type"] == "chat.message"


@pytest.mark.parametrize("room", ["has%20space", "semi;colon", "x" * 101, "dots.dots", ""])
async def test_invalid_room_names_are_refused_with_4400(connect, room):
    ws, accepted, _ = await connect(f"/ws/chat/{room}/")
    assert accepted
    assert "invalid room name" in (await receive(ws))["error"]
    assert await closed_with(ws) == 4400


async def test_longest_room_name_works(connect):
    room = "r" * 100
    ws, _, _ = await connect(f"/ws/chat/{room}/")
    await ws.send_json_to({"message": "long room"})
    assert (await receive(ws))["room"] == room


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "9" * 30])
async def test_invalid_since_is_refused_with_4400(connect, since):
    ws, _, _ = await connect(f"/ws/chat/lobby/?since={since}")
    assert "since" in (await receive(ws))["error"]
    assert await closed_with(ws) == 4400


@override_settings(CHAT_REQUIRE_LOGIN=True)
async def test_login_can_be_required(connect, token):
    anonymous, _, _ = await connect("/ws/chat/members/")
    assert "sign in" in (await receive(anonymous))["error"]
    assert await closed_with(anonymous) == 4401
    member, _, _ = await connect("/ws/chat/members/", headers=(ORIGIN, bearer(token)))
    await member.send_json_to({"message": "members only"})
    assert (await receive(member))["username"] == "alice"


def test_room_groups_are_valid_group_names_and_never_shared():
    """Long names are hashed into the group; the 73-character room spelled like the
    long room's old shortened group (``chat_<40 characters>_<32 hex digits>``) got its
    messages. Group names are checked as Channels checks them."""
    long_room = "a" * 100
    lookalike = f"{long_room[:40]}_{sha256(long_room.encode()).hexdigest()[:32]}"
    rooms = [long_room, lookalike, "b" + "a" * 99, "a" * 94, "a" * 95, "a" * 99, "x"]
    groups = [room_group(room) for room in rooms]
    assert len(set(groups)) == len(rooms)
    for group in groups:
        BaseChannelLayer().require_valid_group_name(group)
