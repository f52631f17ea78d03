"""Catching open sockets up when the channel layer's subscription to Redis comes back.

Redis pub/sub keeps no backlog: an event published while a daphne's subscription is down
(Redis restarting, a Sentinel failover, a dropped connection) never reaches that process,
and its open sockets would miss it without knowing. Chat messages and notifications are
rows in the database, so when redis-py re-establishes a subscription connection, every
such socket in the process falls behind (live events wait), then re-reads what was
stored after the last id it sent and goes live again, dropping copies
(``realtime.consumers.StoredEventConsumer``). Clients get what they missed on the socket
they already have, in order, each once.

A socket of the fast path whose connection backed up catches up the same way (``start``),
once its connection has room.

Its hook is installed on every layer connection by ``redis_hosts`` (the layer's hosts).
"""

import asyncio
import functools
import inspect
import logging
import weakref
from importlib.metadata import version

from django.core.exceptions import ImproperlyConfigured

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


def check_internals():
    """redis-py has no public "reconnected" signal (on_redis_connect reads a connection's
    registered callbacks instead): refuse to start on a release that moved them."""
    from redis.asyncio.connection import AbstractConnection

    if "_connect_callbacks" not in inspect.getsource(AbstractConnection.__init__):
        raise ImproperlyConfigured(
            f"redis {version('redis')} lacks the connection internals realtime/catch_up.py "
            "relies on"
        )


async def on_redis_connect(connection):
    """redis-py's connect hook (``redis_connect_func``) for every channel-layer connection.

    It stands in for the connection's own handshake, so it runs that first. redis-py's
    PubSub registers its re-subscription as a connect callback once its connection is
    first up, so a connection that has one is a subscription coming back: events
    published meanwhile were lost to this process.
    """
    await connection.on_connect()
    # redis-py has no public "reconnected" signal; its PubSub's connect callback runs only
    # when the link comes back (redis-py#1332), so a registered one marks a re-connection.
    if connection._connect_callbacks:
        tally.layer_reconnects += 1
        subscription_restored()


def subscription_restored():
    """Every stream falls behind now; they catch up once the subscription settled."""
    streams = [stream for stream in _streams if not (stream.closing or stream.disconnected)]
    for stream in streams:
        stream.fall_behind()
    if streams:
        logger.warning("channel layer subscription restored: catching up %d sockets", len(streams))
        asyncio.get_running_loop().call_later(SETTLE_SECONDS, _catch_up, streams)


def _catch_up(streams):
    for stream in streams:
        # Again: one that caught up early (its connection had room again) read before
        # the subscription settled.
        stream.fall_behind()
        start(stream)


def start(stream):
    """Catch ``stream`` up, in a task of its own; one at a time (a catch-up running
    already reads again before it ends: the stream is behind)."""
    if stream.catching_up is not None and not stream.catching_up.done():
        return
    task = stream.catching_up = asyncio.ensure_future(stream.catch_up())
    _tasks.add(task)
    task.add_done_callback(functools.partial(_finished, stream.scope.get("path")))


def _finished(path, task):
    """A catch-up ends; one that failed has closed its socket already (the client
    resumes), so this only logs what escaped that."""
    _tasks.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.warning("catch-up failed path=%s", path, exc_info=error)
