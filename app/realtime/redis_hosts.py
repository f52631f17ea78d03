"""Where the channel layer's Redis is: the one description settings, /healthz and checks share.

Three shapes, all native to channels_redis (``CONFIG["hosts"]``) and redis-py:

- one Redis: ``[{"address": "redis://host:6379/0"}]`` (or a unix socket URL);
- several Redis servers, sharded: one entry each. Both layers pick a shard per channel or
  group by a consistent hash, so every process must list the same servers in the same order;
- Redis Sentinel: one ``{"sentinels": [(host, port), ...], "master_name": name}`` entry per
  Sentinel-managed primary (several names shard over several primaries). Connections ask
  the Sentinels where the primary is, so after a failover they reconnect to the promoted
  replica without a restart or a config change.

Every entry also carries the connection options (timeouts, retries) channels_redis
passes on to redis-py.

``hosts()`` builds it from the settings (REDIS_URL, REDIS_SENTINELS, ...); bad values raise
ImproperlyConfigured, which the realtime app turns into a refusal to start.
"""

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry  # the layer is asyncio: its connections await it
from redis.backoff import ExponentialBackoff
from redis.sentinel import Sentinel

from . import catch_up

# A Redis host that does not answer at all (gone from the network, not just restarting)
# fails a connection attempt after this long, not after the OS's minutes of SYN retries.
# Reads get no timeout: pub/sub and BRPOP block on purpose, with timeouts of their own.
CONNECT_TIMEOUT_SECONDS = 2
SENTINEL_PORT = 26379
# channels_redis builds its connection pools itself, and redis-py gives pool-made
# connections no retries (only clients it builds get a default). So after Redis went
# away, even briefly, each idle connection in a daphne process failed its next command
# once: a lost group_send, a refused socket. With retries a connection
# reconnects (asking the Sentinels for the current primary) and repeats the command:
# 0.2 + 0.4 + 0.8 + 1 + 1 s of backoff rides out a restart or a Sentinel failover with
# a short down-after-milliseconds; longer outages still fail, and the app says so (1013).
RETRY_BACKOFF_CAP_SECONDS, RETRY_BACKOFF_BASE_SECONDS, RETRIES = 1, 0.1, 5


def _connection_options():
    """Keyword arguments for every connection a ``hosts`` entry makes (a new Retry each
    time: redis-py copies it per connection, but settings should not share mutable state)."""
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        # Notices a pub/sub connection coming back, so open sockets are sent what they missed.
        "redis_connect_func": catch_up.on_redis_connect,
        "retry": Retry(
            ExponentialBackoff(cap=RETRY_BACKOFF_CAP_SECONDS, base=RETRY_BACKOFF_BASE_SECONDS),
            RETRIES,
        ),
    }


def _split(value):
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_sentinels(value):
    """``"host:port,host"`` → ``[("host", port), ("host", 26379)]``."""
    sentinels = []
    for item in _split(value):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", str(SENTINEL_PORT))
        if not host or not port.isdigit():
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    return sentinels


def layer_hosts(url, sentinels="", master_names="", password="", db=0):
    """channels_redis ``hosts`` from the environment's values.

    ``url``: one Redis URL or several, comma-separated (shards). Used unless ``sentinels``
    is set; then ``master_names`` (comma-separated) names the primaries and ``password``
    and ``db`` apply to them (the Sentinels themselves are expected unauthenticated,
    reachable only from the private network).
    """
    if not sentinels:
        urls = _split(url)
        if not urls:
            raise ImproperlyConfigured("REDIS_URL is empty and no REDIS_SENTINELS are set")
        return [{"address": url, **_connection_options()} for url in urls]
    names = _split(master_names)
    if not names:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS is set, so REDIS_SENTINEL_MASTER must name the primary"
        )
    addresses = parse_sentinels(sentinels)
    options = {"db": db}
    if password:
        options["password"] = password
    return [
        {
            "sentinels": addresses,
            "master_name": name,
            "sentinel_kwargs": {
                "socket_timeout": CONNECT_TIMEOUT_SECONDS,
                "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
            },
            **options,
            **_connection_options(),
        }
        for name in names
    ]


def hosts():
    """The settings' Redis servers as channels_redis ``hosts`` (made anew on each call: a
    handful of small dicts; callers that keep connections key them by ``key()``)."""
    return layer_hosts(
        settings.REDIS_URL,
        sentinels=settings.REDIS_SENTINELS,
        master_names=settings.REDIS_SENTINEL_MASTER,
        password=settings.REDIS_PASSWORD,
        db=settings.REDIS_DB,
    )


def key():
    """What ``hosts()`` depends on: equal keys, equal hosts."""
    return (settings.REDIS_URL, settings.REDIS_SENTINELS, settings.REDIS_SENTINEL_MASTER,
            settings.REDIS_PASSWORD, settings.REDIS_DB)  # fmt: skip


def describe(host):
    """A short, password-free label for logs and check messages."""
    if "sentinels" in host:
        sentinels = ",".join(f"{address}:{port}" for address, port in host["sentinels"])
        return f"sentinel master {host['master_name']!r} via {sentinels}"
    scheme, _, rest = host["address"].partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def client(host, timeout):
    """A synchronous redis-py client for one ``hosts`` entry (the primary, for Sentinel).

    Without retries: a health check should report what it finds, not wait it out.
    """
    if "sentinels" in host:
        options = {"db": host["db"], "password": host.get("password")}
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
        asking = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        sentinel = Sentinel(host["sentinels"], sentinel_kwargs=asking)
        return sentinel.master_for(host["master_name"], **options)
    return redis.Redis.from_url(
        host["address"], socket_timeout=timeout, socket_connect_timeout=timeout, retry=None
    )
