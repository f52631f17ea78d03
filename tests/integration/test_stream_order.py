"""Writers racing on one stream still publish it in id order (realtime.streams): a client
resuming after the newest id it saw can never skip an older one committed later."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from chat.events import room_group
from chat.services import post_message

WRITERS, EACH = 4, 40


@pytest.mark.django_db(transaction=True)
async def test_concurrent_writers_publish_one_room_in_id_order():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(room_group("racing"), channel)

    def write(writer):
        try:
            for n in range(EACH):
                post_message("racing", AnonymousUser(), f"writer {writer}, message {n}")
        finally:
            connection.close()  # each thread had a connection of its own

    await asyncio.gather(*(asyncio.to_thread(write, writer) for writer in range(WRITERS)))
    arrived = [(await asyncio.wait_for(layer.receive(channel), 10))["id"]
               for _ in range(WRITERS * EACH)]  # fmt: skip
    assert arrived == sorted(arrived)
