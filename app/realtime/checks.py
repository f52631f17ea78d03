"""System checks for the common channel-layer pitfalls (``manage.py check [--deploy]``).

- no channel layer: group_send has nowhere to go, and consumers get no channel name;
- an in-memory layer in production: gunicorn's pushes never reach daphne's sockets;
- Redis unreachable: a warning, not an error, since Redis may simply start later.
"""

from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string

from . import redis_hosts
from .health import check_redis

TAG = "channels"


def _backend_class():
    """The default layer's backend class, or None if it is missing or cannot be imported."""
    config = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default") or {}
    try:
        return import_string(config["BACKEND"])
    except (KeyError, ImportError):
        return None


@register(TAG)
def check_channel_layer(app_configs, **kwargs):
    hint = "Set CHANNEL_LAYERS['default'] to a Redis layer (see config/settings/base.py)."
    try:
        layer = get_channel_layer()
    except Exception as error:  # noqa: BLE001 - any failure to build the layer is the finding
        return [
            Error(f"The channel layer cannot be created: {error!r}.", hint=hint, id="realtime.E001")
        ]
    if layer is None:
        return [
            Error(
                "No default channel layer is configured (CHANNEL_LAYERS).",
                hint=hint,
                id="realtime.E001",
            )
        ]
    return []


@register(TAG, deploy=True)
def check_layer_crosses_processes(app_configs, **kwargs):
    backend = _backend_class()
    if backend is not None and issubclass(backend, InMemoryChannelLayer):
        return [
            Error(
                "InMemoryChannelLayer only reaches sockets in its own process: pushes from "
                "gunicorn and messages between daphne processes are silently lost.",
                hint="Use channels_redis (CHANNEL_LAYER=pubsub or core) in production.",
                id="realtime.E002",
            )
        ]
    return []


@register(TAG)
def check_redis_reachable(app_configs, **kwargs):
    backend = _backend_class()
    if backend is None or not issubclass(backend, (RedisChannelLayer, RedisPubSubChannelLayer)):
        return []
    try:
        check_redis()
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        where = "; ".join(redis_hosts.describe(host) for host in redis_hosts.hosts())
        return [
            Warning(
                f"Redis ({where}) is unreachable ({type(error).__name__}: "
                f"{str(error).rstrip('.')}). Until it answers, new websockets are closed with "
                "1013 (try again later) and no events are delivered.",
                hint="Start Redis, or point REDIS_URL (or REDIS_SENTINELS) at a running one.",
                id="realtime.W001",
            )
        ]
    return []
