"""One poster's first posts to a new room, racing (several sockets on several daphnes, or
database threads): the room is created and counted once, so none of them is refused as
one new room too many (chat.services.post_within_limits)."""

import asyncio
import threading
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import override_settings

from chat.models import ChatMessage
from chat.services import post_within_limits

WRITERS = 4


@override_settings(CHAT_ROOMS_PER_HOUR=1, POST_RATE_LIMIT=0)
@pytest.mark.django_db(transaction=True)
async def test_racing_first_posts_count_as_one_new_room():
    room = f"new-{uuid.uuid4().hex[:8]}"
    poster = f"address:racer-{uuid.uuid4().hex[:8]}"
    start = threading.Barrier(WRITERS)

    def first_post(n):
        try:
            start.wait(timeout=10)
            return post_within_limits(room, AnonymousUser(), f"post {n}", poster)
        finally:
            connection.close()  # each thread had a connection of its own

    refusals = await asyncio.gather(*(asyncio.to_thread(first_post, n) for n in range(WRITERS)))
    assert refusals == [None] * WRITERS
    count = await asyncio.to_thread(lambda: ChatMessage.objects.filter(room=room).count())
    assert count == WRITERS
