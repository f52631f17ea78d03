import pytest
from channels.db import database_sync_to_async
from unit.conftest import ORIGIN, bearer, closed_with, receive

from notifications.models import Notification
from notifications.services import RECENT, RESUME_LIMIT

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def notify(user, text):
    return Notification.objects.create(user=user, text=text)


async def test_anonymous_is_closed_with_4401(connect):
    ws, accepted, _ = await connect("/ws/notifications/")
    assert accepted
    assert "sign in" in (await receive(ws))["error"]
    assert await closed_with(ws) == 4401


@pytest.mark.parametrize("bad", ["garbage", "0123456789ab.wrong", ""])
async def test_bad_token_is_closed_with_4401(connect, user, bad):
    ws, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(bad)))
    assert await closed_with(ws) == 4401


async def test_every_socket_of_the_user_receives_its_notifications(connect, user, token):
    phone, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    laptop, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    notification = await notify(user, "your build passed")
    for ws in (phone, laptop):
        frame = await receive(ws)
        assert frame == {
            "type": "notification",
            "id": notification.id,
            "text": "your build passed",
            "created": notification.created.isoformat(),
        }


async def test_other_users_do_not_receive_it(connect, user, token, django_user_model):
    mine, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    other = await database_sync_to_async(django_user_model.objects.create_user)("mallory")
    await notify(other, "not for alice")
    assert await mine.receive_nothing(timeout=0.3)


async def test_the_socket_is_receive_only(connect, token):
    ws, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    await ws.send_json_to({"text": "hello?"})
    assert "does not accept messages" in (await receive(ws))["error"]


async def test_since_replays_what_was_missed_then_streams_live(connect, user, token):
    seen = await notify(user, "seen before the reconnect")
    missed = [await notify(user, f"missed {n}") for n in range(2)]
    ws, _, _ = await connect(f"/ws/notifications/?since={seen.id}", headers=(ORIGIN, bearer(token)))
    assert [(await receive(ws))["id"] for _ in missed] == [n.id for n in missed]
    live = await notify(user, "live")
    assert (await receive(ws))["id"] == live.id
    assert await ws.receive_nothing(timeout=0.3)


async def test_a_bad_since_is_closed_with_4400(connect, token):
    ws, _, _ = await connect("/ws/notifications/?since=yesterday", headers=(ORIGIN, bearer(token)))
    assert "since" in (await receive(ws))["error"]
    assert await closed_with(ws) == 4400


@database_sync_to_async
def notify_many(user, count):
    rows = Notification.objects.bulk_create(
        Notification(user=user, text=f"n{n}") for n in range(count)
    )
    return [row.id for row in rows]


async def test_a_resume_past_the_limit_starts_over_with_the_latest(connect, user, token):
    ids = await notify_many(user, RESUME_LIMIT + 1)
    ws, _, _ = await connect("/ws/notifications/?since=0", headers=(ORIGIN, bearer(token)))
    reset = await receive(ws)
    assert (reset["type"], reset["limit"]) == ("resume.reset", RESUME_LIMIT)
    assert [(await receive(ws))["id"] for _ in range(RECENT)] == ids[-RECENT:]
    assert await ws.receive_nothing(timeout=0.2)
    # Exactly the limit behind: every one, no reset.
    ws, _, _ = await connect(f"/ws/notifications/?since={ids[0]}", headers=(ORIGIN, bearer(token)))
    assert [(await receive(ws))["id"] for _ in range(RESUME_LIMIT)] == ids[1:]
    assert await ws.receive_nothing(timeout=0.2)
