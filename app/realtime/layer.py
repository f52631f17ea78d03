"""The channel layer: channels_redis' layers on this project's Redis, and letting go of a
finished consumer's channel and groups.

``PubSubChannelLayer`` and ``CoreChannelLayer`` (settings.CHANNEL_LAYERS' backends) are
channels_redis' own, given the Redis servers the settings describe (realtime.redis_hosts),
with the connect hook that catches open sockets up after an outage (realtime.catch_up).
The pub/sub layer also counts the group events the process receives from Redis (one per
event, before it is queued for each member: realtime.metrics).

As for letting go:

``RedisPubSubChannelLayer`` unsubscribes a consumer's specific channel only when a
``receive()`` waiting on it is cancelled, which is how Channels ends a consumer. But a
consumer that ends just as a message for it arrived (a group message while its socket
closes) finds that receive completed, not cancelled: the channel then stays subscribed in
Redis and held in the process, with its queue, for as long as the process lives. And a
consumer cancelled before its websocket_disconnect ran (daphne gives up on an application
whose client has gone) never leaves its groups: the process stays subscribed to them.
Under connection churn with group traffic that is one leaked subscription per such socket,
and memory that only grows (channels_redis#276, daphne#373): measured here by
tests/load/soak.py.

This reaches into the layer's internals (its per-event-loop layer, ``channels``,
``_get_shard``, each shard's ``_receive_message``); ``check_internals`` refuses to start on a
channels_redis that lacks them.
"""

from importlib.metadata import version

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)

from . import redis_hosts
from .metrics import tally

# The channels_redis releases whose pub/sub internals this module was written against.
TESTED_VERSIONS = ("4.2", "4.3")


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args, hosts=None, **kwargs):
        super().__init__(*args, hosts=hosts or redis_hosts.hosts(), **kwargs)

    def _get_layer(self):
        layer = super()._get_layer()
        if not getattr(layer, "counting", False):  # a new event loop's layer
            for shard in layer._shards:
                shard._receive_message = counting_group_events(shard._receive_message)
            layer.counting = True
        return layer


def counting_group_events(receive_message):
    """A shard's handler of what Redis delivers, counting the group events among it."""

    def receive_and_count(message):
        if message is not None:
            channel = message["channel"]  # bytes, as redis-py delivers it by default
            if (b"__group__" if isinstance(channel, bytes) else "__group__") in channel:
                tally.layer_events += 1
        receive_message(message)

    return receive_and_count


class CoreChannelLayer(RedisChannelLayer):
    def __init__(self, hosts=None, **kwargs):
        super().__init__(hosts=hosts or redis_hosts.hosts(), **kwargs)


async def release(layer, channel, groups):
    """After a consumer ended: ``channel`` out of ``groups`` (a no-op for those it left
    already) and unsubscribed, if the pub/sub layer still holds it."""
    if not isinstance(layer, RedisPubSubChannelLayer) or channel is None:
        return
    for group in groups:
        await layer.group_discard(group, channel)
    loop_layer = layer._get_layer()
    if loop_layer.channels.pop(channel, None) is not None:
        await loop_layer._get_shard(channel).unsubscribe(channel)


def check_internals():
    """A clear error at start, not an AttributeError mid-traffic, on an untested release."""
    found = version("channels-redis")
    present = (
        hasattr(RedisPubSubChannelLayer, "_get_layer")
        and hasattr(RedisPubSubLoopLayer, "_get_shard")
        and hasattr(RedisSingleShardConnection, "_receive_message")
    )
    if not present or not found.startswith(TESTED_VERSIONS):
        raise RuntimeError(
            f"channels-redis {found} is not one realtime/layer.py was tested with "
            f"({', '.join(TESTED_VERSIONS)}.x): check its pub/sub internals, then add it"
        )
