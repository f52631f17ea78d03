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

And the pub/sub layer hands each group message first to realtime.fanout (the fast path),
which writes it once per process to the members that take it that way and queues it for
the others, as the layer would: its shard connections are this module's ``FanOutShard``.

Those shard connections also subscribe and unsubscribe in batches. channels_redis sends
one SUBSCRIBE or UNSUBSCRIBE per call, each under the shard's one lock: every socket
subscribes its own channel and its groups when it opens (a no-op for a group the process
follows already still waits for the lock) and unsubscribes when it closes. When thousands
of sockets open at once (a wave of clients reconnecting to the daphne that stayed up, a
soak's waves) the lock's queue held thousands of handshakes, each turn costing several
event-loop iterations of a busy loop: about one subscription a second, handshakes cut at
daphne's connect timeout, and a wave of 5,000 members of which a few hundred got in
(tests/load/soak.py). Batched, whatever queued up while one command was being written goes
out as the next: one SUBSCRIBE, or UNSUBSCRIBE, for many channels, in the order called.

This reaches into the layer's internals (its per-event-loop layer, ``channels``,
``groups``, ``_get_shard``, its shard connections and how it receives on them);
``check_internals`` refuses to start on a channels_redis that lacks them.
"""

import asyncio
import inspect
import logging
from importlib.metadata import version

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close
from django.core.exceptions import ImproperlyConfigured

from . import fanout, redis_hosts
from .metrics import tally

logger = logging.getLogger(__name__)

# The channels_redis releases whose pub/sub internals this module was written against.
TESTED_VERSIONS = ("4.2", "4.3")


class PubSubChannelLayer(RedisPubSubChannelLayer):
    fans_out = True  # group messages go through realtime.fanout

    def __init__(self, *args, hosts=None, **kwargs):
        super().__init__(*args, hosts=hosts or redis_hosts.hosts(), **kwargs)

    def _get_layer(self):
        # channels_redis' own, with a loop layer whose shards hand group messages over.
        loop = asyncio.get_running_loop()
        if loop not in self._layers:
            self._layers[loop] = FanOutLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return self._layers[loop]


class FanOutLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [FanOutShard(shard.host, self) for shard in self._shards]


class FanOutShard(RedisSingleShardConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._queued = []  # [(command, channel, future)], in the order they were asked for
        self._sender = None  # the task sending them

    async def subscribe(self, channel):
        await self._enqueue("SUBSCRIBE", channel)

    async def unsubscribe(self, channel):
        await self._enqueue("UNSUBSCRIBE", channel)

    async def _enqueue(self, command, channel):
        done = asyncio.get_running_loop().create_future()
        self._queued.append((command, channel, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._write_queued())
        # A caller cancelled meanwhile (its socket gone) still gets its command sent: an
        # unsubscribe skipped would leave the channel subscribed for the process's life.
        await asyncio.shield(done)

    async def _write_queued(self):
        """Send what is queued, batch after batch, under the lock publish and flush take."""
        async with self._lock:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    for command, channels in subscription_commands(batch, self._subscribed_to):
                        self._ensure_redis()
                        self._ensure_receiver()
                        if command == "SUBSCRIBE":
                            await self._pubsub.subscribe(*channels)
                            self._subscribed_to.update(channels)
                        else:
                            await self._pubsub.unsubscribe(*channels)
                            self._subscribed_to.difference_update(channels)
                except Exception as error:  # noqa: BLE001 - each caller gets it, as unbatched
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                    continue
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def _receive_message(self, message):
        if message is not None:
            name = message["channel"]
            name = name.decode() if isinstance(name, bytes) else name
            if "__group__" in name:  # a group event: counted once, before its members get it
                tally.layer_events += 1
            members = self.channel_layer.groups.get(name) if fanout.in_use() else None
            if members:
                layer = self.channel_layer
                fanout.deliver(members, message["data"], layer.channel_layer.deserialize,
                               layer.channels)  # fmt: skip
                return
        super()._receive_message(message)


def subscription_commands(batch, subscribed):
    """``batch`` ([(command, channel, future)], in call order) as the fewest commands with
    the same effect as sending each in turn: [(command, [channels])]. As channels_redis
    does one by one, a subscribe to a channel already subscribed (or an unsubscribe from one
    not subscribed) sends nothing; consecutive ones of a kind share a command."""
    state = {}  # channel → subscribed after the batch so far, where that changed
    commands = []
    for command, channel, _ in batch:
        now = state.get(channel, channel in subscribed)
        if now == (command == "SUBSCRIBE"):
            continue
        state[channel] = not now
        if commands and commands[-1][0] == command:
            commands[-1][1].append(channel)
        else:
            commands.append((command, [channel]))
    return commands


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


def pending_events(layer, channel):
    """How many messages wait in ``channel``'s queue (0 on a layer that keeps none here)."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return 0
    queue = layer._get_layer().channels.get(channel)
    return 0 if queue is None else queue.qsize()


def check_internals():
    """A clear error at start, not an AttributeError mid-traffic, if an internal this module
    relies on is gone; a warning on a release it was not tested with."""
    found = version("channels-redis")
    loop_layer = inspect.getsource(RedisPubSubLoopLayer)
    shard = inspect.getsource(RedisSingleShardConnection)
    if not (
        hasattr(RedisPubSubChannelLayer, "_get_layer")
        and "self._layers" in inspect.getsource(RedisPubSubChannelLayer)
        and hasattr(RedisPubSubLoopLayer, "_get_shard")
        and all(name in loop_layer for name in ("self.channels", "self.groups", "self._shards"))
        and "def _receive_message(self, message)" in shard
        and all(
            name in shard
            for name in ("self.host", "self._lock", "self._subscribed_to", "self._pubsub")
        )
        and all(
            hasattr(RedisSingleShardConnection, name)
            for name in ("_ensure_redis", "_ensure_receiver", "subscribe", "unsubscribe")
        )
    ):
        raise ImproperlyConfigured(
            f"channels-redis {found} lacks the pub/sub internals realtime/layer.py relies on"
        )
    if not found.startswith(TESTED_VERSIONS):
        logger.warning("channels-redis %s is untested with realtime/layer.py", found)
