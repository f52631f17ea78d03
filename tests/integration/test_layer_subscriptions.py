"""The layer subscribes in batches (realtime.layer.FanOutShard): a burst of sockets opening
at once costs a few SUBSCRIBE commands, not one each behind a lock, and every channel and
group is subscribed, then unsubscribed, as one by one. On the session's real Redis."""

import asyncio
import uuid

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from polling import wait_until_async

from realtime import layer as realtime_layer

MEMBERS = 500
TIMEOUT = 15


def subscribe_commands(client):
    return client.info("commandstats").get("cmdstat_subscribe", {}).get("calls", 0)


async def test_a_burst_of_members_subscribes_in_a_few_commands_and_leaves_nothing():
    layer = get_channel_layer()
    group = f"burst-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    before = subscribe_commands(client)

    async def join():
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return channel

    channels = await asyncio.gather(*(join() for _ in range(MEMBERS)))
    assert subscribe_commands(client) - before < 20  # one each would be 501

    await layer.group_send(group, {"type": "burst.message"})
    received = await asyncio.wait_for(asyncio.gather(*map(layer.receive, channels)), TIMEOUT)
    assert [message["type"] for message in received] == ["burst.message"] * MEMBERS

    await asyncio.gather(*(realtime_layer.release(layer, c, [group]) for c in channels))
    watched = [*channels, layer._get_group_channel_name(group)]

    async def all_unsubscribed():
        return all(count == 0 for _, count in client.pubsub_numsub(*watched))

    await wait_until_async(all_unsubscribed, "every channel and the group unsubscribed", TIMEOUT)
    client.close()
