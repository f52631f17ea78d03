"""The channel layer's Redis, for the little state every process must share: rate-limit
counts (realtime.throttle) and websocket tickets (accounts.tickets); /healthz pings it too.

It uses the layer's own hosts (settings.REDIS_HOSTS: one server, shards, or Sentinel-
managed primaries), so a deployment runs no second store. Each key lives on one shard,
picked from the key alone, so every process reads and writes the same copy. The clients
are synchronous (gunicorn's views and daphne's database thread call them), with short
timeouts and no retries: an outage costs a request a failed attempt, not the layer's
seconds of backoff.
"""

import zlib
from functools import cache

from django.conf import settings

from . import redis_hosts

TIMEOUT_SECONDS = 1


def key(*parts):
    """A key of this project's: prefixed with its name, as the channel layer's channels are,
    so projects sharing a Redis server keep apart."""
    return ":".join([settings.PROJECT_NAME, *parts])


@cache
def clients():
    """One client per hosts entry, made once per process (for Sentinel: one that asks the
    Sentinels where the primary is, so it follows a failover)."""
    return [redis_hosts.client(host, TIMEOUT_SECONDS) for host in settings.REDIS_HOSTS]


def client_for(key):
    """The client of the shard that holds ``key``."""
    shards = clients()
    return shards[zlib.crc32(key.encode()) % len(shards)]
