"""The channel layer: channels_redis' layers on this project's Redis, and letting go of a
finished consumer's channel and groups.

``PubSubChannelLayer`` and ``CoreChannelLayer`` (settings.CHANNEL_LAYERS' backends) are
channels_redis' own, given the Redis servers the settings describe (realtime.redis_hosts),
with the connect hook that catches open sockets up after an outage (realtime.catch_up).

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
``_get_shard``); ``check_internals`` refuses to start on a channels_redis that lacks them.
"""

import inspect
import logging
from importlib.metadata import version

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from django.core.exceptions import ImproperlyConfigured

from . import redis_hosts

logger = logging.getLogger(__name__)

# The channels_redis releases whose pub/sub internals this module was written against.
TESTED_VERSIONS = ("4.2", "4.3")


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args, hosts=None, **kwargs):
        super().__init__(*args, hosts=hosts or redis_hosts.hosts(), **kwargs)


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
    """A clear error at start, not an AttributeError mid-traffic, if an internal this module
    relies on is gone; a warning on a release it was not tested with."""
    found = version("channels-redis")
    if not (
        hasattr(RedisPubSubChannelLayer, "_get_layer")
        and hasattr(RedisPubSubLoopLayer, "_get_shard")
        and "self.channels" in inspect.getsource(RedisPubSubLoopLayer)
    ):
        raise ImproperlyConfigured(
            f"channels-redis {found} lacks the pub/sub internals realtime/layer.py relies on"
        )
    if not found.startswith(TESTED_VERSIONS):
        logger.warning("channels-redis %s is untested with realtime/layer.py", found)
