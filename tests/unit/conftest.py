import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from accounts.tokens import issue_token
from config.asgi import application
from realtime import redis_hosts, redis_store, throttle

ORIGIN = (b"origin", b"http://127.0.0.1:8080")
TIMEOUT = 5


def bearer(token):
    """The handshake header of a client signing in with an API token."""
    return (b"authorization", f"Bearer {token}".encode())


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    """Pages render without collectstatic (the hashed-name manifest exists only after it)."""
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = {**settings.STORAGES, "staticfiles": plain}


@pytest.fixture(autouse=True)
def full_rate_limit_buckets(redis_server, monkeypatch):
    """Every test starts with the shared limits untouched: their counts live in the
    session's Redis, and one test's posts must not use up the next one's budget (nor its
    simulated Redis outage pause the next one's limits)."""
    for client in redis_store.clients():
        if keys := list(client.scan_iter(redis_store.key("rate", "*"))):
            client.delete(*keys)
    monkeypatch.setattr(throttle, "_paused_until", 0.0)


@pytest.fixture
def unreachable_redis(settings):
    """REDIS_HOSTS (the shared-state clients, /healthz, the checks; not the running layer)
    pointing at a Redis that is not there."""
    settings.REDIS_HOSTS = redis_hosts.layer_hosts("unix:///nonexistent/redis.sock")
    redis_store.clients.cache_clear()
    yield
    redis_store.clients.cache_clear()


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def token(user):
    """A raw API token for ``user``."""
    return issue_token(user)[1]


@pytest.fixture
async def connect():
    """Open websockets on the full ASGI application (origin check, auth, routing).

    ``await connect("/ws/echo/")`` returns ``(communicator, accepted, close_code)`` (for an
    accepted socket, the third is the subprotocol the server chose, if any);
    every communicator is disconnected when the test ends. ``client`` sets the peer
    address daphne would put in the scope.
    """
    opened = []

    async def _connect(path, headers=(ORIGIN,), client=None, subprotocols=None):
        communicator = WebsocketCommunicator(
            application, path, headers=list(headers), subprotocols=subprotocols
        )
        if client is not None:
            communicator.scope["client"] = [client, 40000]
        opened.append(communicator)
        accepted, close_code = await communicator.connect(timeout=TIMEOUT)
        return communicator, accepted, close_code

    yield _connect
    for communicator in opened:
        await communicator.disconnect(timeout=TIMEOUT)


async def receive(communicator):
    return await communicator.receive_json_from(timeout=TIMEOUT)


async def closed_with(communicator):
    """The close code a consumer sent after accepting (skipping any frames before it)."""
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return output.get("code")
