"""A saved Notification is pushed after its transaction commits, and never if it rolls back."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction
from polling import wait_until

from chat.events import room_group
from chat.models import ChatMessage
from notifications.events import user_group
from notifications.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)
QUIET = 0.5


class Rollback(Exception):
    pass


@pytest.fixture
async def listen():
    """Join a group on the real layer; returns a function reading the next event or None.

    A background task drains the channel into a queue: cancelling a receive() on the
    pub/sub layer unsubscribes the channel, so timeouts must not touch it.
    """
    layer = get_channel_layer()
    readers = []

    async def _listen(group):
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        events = asyncio.Queue()

        async def drain():
            while True:
                events.put_nowait(await layer.receive(channel))

        readers.append(asyncio.create_task(drain()))

        async def next_event(timeout=5):
            try:
                return await asyncio.wait_for(events.get(), timeout)
            except TimeoutError:
                return None

        return next_event

    yield _listen
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


@database_sync_to_async
def create_user():
    return get_user_model().objects.create_user("dora")


@database_sync_to_async
def notify(user, text, commit):
    try:
        with transaction.atomic():
            notification = Notification.objects.create(user=user, text=text)
            if not commit:
                raise Rollback
    except Rollback:
        return None
    return notification


async def test_committed_notification_is_pushed(listen):
    user = await create_user()
    next_event = await listen(user_group(user.id))
    notification = await notify(user, "committed", commit=True)
    event = await next_event()
    assert event["type"] == "notification"
    assert f'"id":{notification.id}' in event["text"]


async def test_rolled_back_notification_is_never_pushed(listen):
    user = await create_user()
    next_event = await listen(user_group(user.id))
    await notify(user, "rolled back", commit=False)
    assert await next_event(timeout=QUIET) is None
    assert not await database_sync_to_async(Notification.objects.exists)()


async def test_push_waits_for_the_outer_transaction(listen):
    """Inside atomic(), nothing is pushed until the outermost block commits."""
    user = await create_user()
    next_event = await listen(user_group(user.id))
    pushed_inside = asyncio.Event()

    @database_sync_to_async
    def create_then_check():
        with transaction.atomic():
            Notification.objects.create(user=user, text="later")
            # Still inside the transaction: the push must not have happened yet.
            future = asyncio.run_coroutine_threadsafe(next_event(timeout=QUIET), loop)
            if future.result() is not None:
                pushed_inside.set()

    loop = asyncio.get_running_loop()
    await create_then_check()
    assert not pushed_inside.is_set()
    assert (await next_event())["type"] == "notification"


async def test_chat_message_saved_anywhere_reaches_the_room(listen):
    next_event = await listen(room_group("lobby"))
    message = await database_sync_to_async(ChatMessage.objects.create)(
        room="lobby", username="script", message="from a management command"
    )
    event = await next_event()
    assert (event["type"], event["id"]) == ("chat.message", message.id)


async def test_a_gunicorn_worker_pushes_through_one_loop_of_its_own(listen):
    """What deploy/gunicorn.conf.py turns on: every push of the process, from any thread,
    goes through the same event loop (and so the same Redis connection)."""
    from realtime import broadcast

    user = await create_user()
    next_event = await listen(user_group(user.id))
    broadcast.use_a_layer_loop()
    try:
        first = await notify(user, "one", commit=True)
        loop = broadcast.layer_loop.loop
        second = await notify(user, "two", commit=True)
        assert broadcast.layer_loop.loop is loop and loop.is_running()
        for notification in (first, second):
            assert f'"id":{notification.id}' in (await next_event())["text"]
    finally:
        loop, broadcast.layer_loop = broadcast.layer_loop.loop, None
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(wait_until, lambda: not loop.is_running(), "the loop to stop", 5)
        # Closed in a thread with no running loop: channels_redis flushes the layer on close
        # (left to the garbage collector, that flush fails inside whatever loop is running).
        await asyncio.to_thread(loop.close)
