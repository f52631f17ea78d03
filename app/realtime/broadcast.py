"""Pushing events from synchronous code (views, signals) to websocket groups."""

import asyncio
import logging
import os
import threading
from time import perf_counter

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from . import metrics, request_id

logger = logging.getLogger(__name__)

# Longer than the channel layer's own retries (realtime.redis_hosts): it fails first.
SEND_TIMEOUT = 10


class LayerLoop:
    """One event loop per process, in a daemon thread, for the channel layer's sends.

    async_to_sync starts a new event loop for every call made outside an async server, and
    the layer opens a Redis connection per loop: a new connection for every push from a
    gunicorn worker. One loop keeps one connection. A forked child starts its own.
    """

    def __init__(self):
        self.loop = None
        self.pid = None
        self.lock = threading.Lock()

    def run(self, coroutine):
        with self.lock:
            if self.pid != os.getpid():
                self.loop = asyncio.new_event_loop()
                self.pid = os.getpid()
                threading.Thread(
                    target=self.loop.run_forever, name="channel-layer", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(SEND_TIMEOUT)


# Set by gunicorn's workers (deploy/gunicorn.conf.py). daphne's threads keep
# async_to_sync, which sends on daphne's own loop and its connection.
layer_loop = None


def use_a_layer_loop():
    global layer_loop
    layer_loop = LayerLoop()


def broadcast(group, event):
    """Send ``event`` to every socket in ``group``, in whichever daphne process it is held."""
    if layer_loop is None:
        async_to_sync(get_channel_layer().group_send)(group, event)
    else:
        layer_loop.run(get_channel_layer().group_send(group, event))


def broadcast_on_commit(group, event):
    """Broadcast once the current transaction commits (at once outside a transaction).

    A rolled-back transaction drops the callback, so clients never see a row that was
    never stored. ``robust``: if Redis is down, the write still succeeds and the failure
    is logged, rather than a committed write turning into a 500.

    The event carries the id of the HTTP request that pushes it, if any (nginx's, see
    realtime.request_id), so each socket's delivery can be logged with it; the push itself
    is logged and measured (realtime.metrics: from the commit to Redis having it).
    """
    if (pushed_by := request_id.current.get()) is not None:
        event = {**event, "request_id": pushed_by}

    def broadcast_after_commit():
        # A plain function, not functools.partial: Django's robust on_commit names the
        # failed callback by its __qualname__, which a partial lacks (the error handler
        # itself would raise, turning "Redis is down" into a 500).
        push(group, event)

    transaction.on_commit(broadcast_after_commit, robust=True)


def push(group, event):
    """``broadcast``, counted, timed and logged."""
    kind, started = metrics.group_kind(group), perf_counter()
    try:
        broadcast(group, event)
    except Exception:
        metrics.pushes.labels(kind, "failed").inc()
        raise
    seconds = perf_counter() - started
    metrics.pushes.labels(kind, "ok").inc()
    metrics.push_seconds.labels(kind).observe(seconds)
    logger.info(
        "pushed type=%s id=%s group=%s request_id=%s duration=%.1fms",
        event.get("type"),
        event.get("id"),
        group,
        event.get("request_id", "-"),
        seconds * 1000,
        extra={
            "event_type": event.get("type"),
            "event_id": event.get("id"),
            "group": group,
            "request_id": event.get("request_id"),
            "duration": round(seconds, 4),
        },
    )
