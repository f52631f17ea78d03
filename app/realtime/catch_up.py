"""Catching open sockets up when the channel layer's subscription to Redis comes back.

Redis pub/sub keeps no backlog: an event published while a daphne's subscription is down
(Redis restarting, a Sentinel failover, a dropped connection) never reaches that process,
and its open sockets would miss it without knowing. Chat messages and notifications are
rows in the database, so when redis-py re-establishes a subscription connection, every
such socket in the process holds its live events, re-reads what was stored after the last
id it sent, sends that, then sends what it held, dropping copies
(``realtime.consumers.StoredEventConsumer``). Clients get what they missed on the socket
they already have, in order, each once.

Its hook is installed on every layer connection by ``redis_hosts`` (the layer's hosts).
"""

import asyncio
import functools
import logging
import weakref

from .metrics import tally

logger = logging.getLogger(__name__)

# Between the re-subscription and the database read: the SUBSCRIBE commands redis-py sends
# right after reconnecting must reach Redis first, or an event published in between would
# be in neither the read nor the live stream. Live events wait this long after an outage.
SETTLE_SECONDS = 0.25

_streams = weakref.WeakSet()  # the process's sockets that can be caught up
_tasks = set()  # running catch-ups (the event loop keeps only weak references to tasks)


def follow(stream):
    """Catch ``stream`` up after every re-subscription until it is forgotten."""
    _streams.add(stream)


def forget(stream):
    _streams.discard(stream)


async def on_redis_connect(connection):
    """redis-py's connect hook (``redis_connect_func``) for every channel-layer connection.

    It stands in for the connection's own handshake, so it runs that first. redis-py's
    PubSub registers its re-subscription as a connect callback once its connection is
    first up, so a connection that has one is a subscription coming back: events
    published meanwhile were lost to this process.
    """
    await connection.on_connect()
    if connection._connect_callbacks:  # redis-py has no public "reconnected" signal
        tally.layer_reconnects += 1
        subscription_restored()


def subscription_restored():
    """Hold every stream's live events now; catch them up once the subscription settled."""
    streams = [stream for stream in _streams if stream.hold_live_events()]
    if streams:
        logger.warning("channel layer subscription restored: catching up %d sockets", len(streams))
        asyncio.get_running_loop().call_later(SETTLE_SECONDS, _catch_up, streams)


def _catch_up(streams):
    for stream in streams:
        task = asyncio.ensure_future(stream.catch_up())
        _tasks.add(task)
        task.add_done_callback(functools.partial(_finished, stream.scope.get("path")))


def _finished(path, task):
    """A catch-up that failed leaves the socket open: the client's next resume fills in."""
    _tasks.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.warning("catch-up failed path=%s", path, exc_info=error)
