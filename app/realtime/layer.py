"""Letting go of a finished consumer's channel and groups in channels_redis' pub/sub layer.

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
``_get_shard``); ``check_internals`` refuses to start on a channels_redis that lacks them.
"""

from importlib.metadata import version

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer

# The channels_redis releases whose pub/sub internals this module was written against.
TESTED_VERSIONS = ("4.2", "4.3")


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
    present = hasattr(RedisPubSubChannelLayer, "_get_layer") and hasattr(
        RedisPubSubLoopLayer, "_get_shard"
    )
    if not present or not found.startswith(TESTED_VERSIONS):
        raise RuntimeError(
            f"channels-redis {found} is not one realtime/layer.py was tested with "
            f"({', '.join(TESTED_VERSIONS)}.x): check its pub/sub internals, then add it"
        )
