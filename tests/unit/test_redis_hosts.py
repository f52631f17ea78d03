"""The channel layer's Redis shapes (realtime.redis_hosts) and what settings make of them."""

import json
import os
import subprocess
import sys

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from e2e.localstack import MANAGE

from realtime import health, redis_hosts, redis_store


def addresses(hosts):
    return [host["address"] for host in hosts]


def test_one_url_is_one_host():
    assert addresses(redis_hosts.layer_hosts("redis://10.0.0.5:6379/0")) == [
        "redis://10.0.0.5:6379/0"
    ]


def test_comma_separated_urls_are_shards_in_order():
    assert addresses(redis_hosts.layer_hosts(" redis://a:6379/0 , redis://b:6379/0,")) == [
        "redis://a:6379/0",
        "redis://b:6379/0",
    ]


def test_layer_connections_retry_but_each_gets_its_own_retry_object():
    """channels_redis's pool-made connections would otherwise get no retries at all."""
    first, second = redis_hosts.layer_hosts("redis://a,redis://b")
    assert first["retry"].get_retries() == redis_hosts.RETRIES
    assert first["retry"] is not second["retry"]


def test_sentinels_make_one_entry_per_master_name():
    hosts = redis_hosts.layer_hosts(
        "ignored", sentinels="10.0.0.1:26379, sentinel-b, [fd00::3]:26380", master_names="chat"
    )
    assert len(hosts) == 1
    entry = hosts[0]
    assert entry["master_name"] == "chat"
    assert entry["sentinels"] == [("10.0.0.1", 26379), ("sentinel-b", 26379), ("fd00::3", 26380)]
    assert entry["db"] == 0 and "password" not in entry
    assert entry["sentinel_kwargs"]["socket_timeout"] == redis_hosts.CONNECT_TIMEOUT_SECONDS


def test_several_master_names_shard_over_several_primaries():
    hosts = redis_hosts.layer_hosts(
        "", sentinels="s1:26379", master_names="one,two", password="pw", db=3
    )
    assert [entry["master_name"] for entry in hosts] == ["one", "two"]
    assert all(entry["password"] == "pw" and entry["db"] == 3 for entry in hosts)


@pytest.mark.parametrize(
    ("url", "sentinels", "names"),
    [("", "", ""), ("redis://a", "s1:26379", ""), ("", "s1:notaport", "m"), ("", ":26379", "m")],
    ids=["nothing", "sentinels without a master name", "bad port", "no host"],
)
def test_incomplete_values_are_refused(url, sentinels, names):
    with pytest.raises(ImproperlyConfigured):
        redis_hosts.layer_hosts(url, sentinels=sentinels, master_names=names)


def test_descriptions_hide_passwords():
    (url,) = redis_hosts.layer_hosts("redis://:secret@10.0.0.5:6379/0")
    assert redis_hosts.describe(url) == "redis://10.0.0.5:6379/0"
    entry = redis_hosts.layer_hosts("", sentinels="s1:1,s2:2", master_names="m", password="x")[0]
    assert redis_hosts.describe(entry) == "sentinel master 'm' via s1:1,s2:2"


def settings_from(**variables):
    """CHANNEL_LAYERS and REDIS_HOSTS as the settings build them from ``variables``."""
    code = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps([s.CHANNEL_LAYERS['default'], s.REDIS_HOSTS], default=repr))"
    )
    result = subprocess.run(
        [sys.executable, MANAGE, "shell", "-c", code],
        env={**os.environ, "DJANGO_ENV_FILE": "", **variables},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_build_the_layer_and_the_checks_from_one_description():
    layer, hosts = settings_from(
        REDIS_SENTINELS="10.1.0.1:26379,10.1.0.2:26379",
        REDIS_SENTINEL_MASTER="chat",
        CHANNEL_LAYER="core",
        CHANNEL_LAYER_ENCRYPTION_KEYS="new-key,old-key",
    )
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert layer["CONFIG"]["hosts"] == hosts
    assert hosts[0]["master_name"] == "chat"
    assert hosts[0]["sentinels"] == [["10.1.0.1", 26379], ["10.1.0.2", 26379]]
    assert layer["CONFIG"]["symmetric_encryption_keys"] == ["new-key", "old-key"]


def test_without_keys_the_layer_is_not_encrypted():
    layer, _ = settings_from(REDIS_URL="redis://a:6379/0,redis://b:6379/0")
    assert "symmetric_encryption_keys" not in layer["CONFIG"]
    assert addresses(layer["CONFIG"]["hosts"]) == ["redis://a:6379/0", "redis://b:6379/0"]


async def test_encrypted_layer_messages_cross_redis_unreadable(redis_server):
    """With keys, what travels through Redis is ciphertext; a process with the key reads it."""
    layer = RedisPubSubChannelLayer(hosts=[redis_server.url], symmetric_encryption_keys=["k1"])
    wire = layer.serialize({"type": "chat.message", "text": "top secret"})
    assert b"top secret" not in wire
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    try:
        await layer.group_send("room", {"type": "chat.message", "text": "top secret"})
        assert (await layer.receive(channel))["text"] == "top secret"
    finally:
        await layer.flush()


@pytest.fixture
def unreachable_sentinels(settings):
    settings.REDIS_HOSTS = redis_hosts.layer_hosts(
        "", sentinels="127.0.0.1:1,127.0.0.1:2", master_names="chat"
    )
    redis_store.clients.cache_clear()
    yield
    redis_store.clients.cache_clear()


def test_health_and_checks_follow_a_sentinel_setup(unreachable_sentinels):
    assert health.run_checks()["redis"] == "unavailable: MasterNotFoundError"
    messages = checks.run_checks(tags=["channels"])
    assert [m.id for m in messages] == ["realtime.W001"]
    assert "sentinel master 'chat' via 127.0.0.1:1,127.0.0.1:2" in messages[0].msg
