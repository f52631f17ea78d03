"""The real-time kit's settings: what realtime/, accounts/ and the launchers in deploy/ read,
from the environment (.env.example documents each variable; an empty one means its
default). Self-contained, so that a project adopting the kit copies this file into its
settings and imports it (docs/adopt.md); this template's base.py imports it the same way.

The defaults are production's; config/settings/local.py relaxes a few for the local stack.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured


class Env(environ.Env):
    """django-environ's reader, except that a variable set to nothing means "the default".

    ``.env.example`` lists every variable, many of them empty ("CSRF_TRUSTED_ORIGINS="),
    and a compose file passes ``VAR: ${VAR:-}``: django-environ would read those as an
    empty string or an empty list, silently replacing the default. A variable without a
    default is still required, empty or not.
    """

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        if default is not self.NOTSET and self.ENVIRON.get(f"{self.prefix}{var}") == "":
            return (
                self.parse_value(default, cast)
                if parse_default and default is not None
                else default
            )
        return super().get_value(var, cast, default, parse_default)


env = Env()


def repository_root():
    """The directory holding the kit's launchers (deploy/project.py): the root that relative
    paths in the environment (DATA_DIR, STATIC_ROOT) start from, wherever this file sits."""
    here = Path(__file__).resolve()
    return next((d for d in here.parents if (d / "deploy" / "project.py").is_file()), Path.cwd())


REPO_DIR = repository_root()


def path_from_env(name, default):
    """A path setting; empty means ``default``, relative paths start at the repository root."""
    path = Path(env.str(name, default="") or default)
    return path if path.is_absolute() else REPO_DIR / path


# The project's name (deploy/render.py names the server's units and paths after it). Here:
# the prefix of everything it keeps in Redis, so several projects can share one Redis.
PROJECT_NAME = env.str("PROJECT_NAME", default="realtime")

# Runtime state (SQLite file, static files, sockets, logs) lives under one directory.
DATA_DIR = path_from_env("DATA_DIR", "var")
RUN_DIR = DATA_DIR / "run"

# nginx serves /static/ from its `root`; STATIC_ROOT must be `<that root>/static`.
STATIC_URL = "/static/"
STATIC_ROOT = path_from_env("STATIC_ROOT", DATA_DIR / "public" / "static")

# The channel layer: Redis joins gunicorn (which pushes) and daphne (which holds sockets),
# and, with several app hosts, the hosts to each other. These are the environment's values;
# realtime.redis_hosts turns them into the one description of the Redis servers that the
# layer, /healthz, the checks and the shared state (limits, tickets) all use. Empty
# REDIS_URL and no Sentinels: the local stack's own redis-server on a unix socket in
# RUN_DIR. Shapes, and when to use which: docs/scaling.md.
REDIS_URL = env.str("REDIS_URL", default="") or f"unix://{RUN_DIR / 'redis.sock'}"
REDIS_SENTINELS = env.str("REDIS_SENTINELS", default="")
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="")
REDIS_PASSWORD = env.str("REDIS_PASSWORD", default="")
REDIS_DB = env.int("REDIS_DB", default=0)
CHANNEL_LAYER_BACKENDS = {
    # One PUBLISH per group message, fanned out inside each daphne process; group
    # membership lives in the process, so it never expires (docs/design.md, "Pitfalls").
    # Nothing is stored in Redis: a failover loses only what is in flight, and the
    # client's resume (?since=) refills that from the database.
    "pubsub": "realtime.layer.PubSubChannelLayer",
    # Lists per channel in Redis, with capacity and group expiry; group membership lives
    # in Redis, so a replica promoted after an asynchronous-replication loss may miss some.
    "core": "realtime.layer.CoreChannelLayer",
}
# Pub/sub channels are global to a Redis server (not per database number): without the
# prefix, two projects sharing a Redis would receive each other's group messages.
CHANNEL_LAYER_CONFIG = {"prefix": PROJECT_NAME}
# Layer messages cross the network between hosts: with keys set they are encrypted
# (Fernet). Comma-separated; the first encrypts, all decrypt, so keys rotate without
# downtime. Every process must share them.
if CHANNEL_LAYER_ENCRYPTION_KEYS := env.list("CHANNEL_LAYER_ENCRYPTION_KEYS", default=[]):
    CHANNEL_LAYER_CONFIG["symmetric_encryption_keys"] = CHANNEL_LAYER_ENCRYPTION_KEYS
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKENDS[env.str("CHANNEL_LAYER", default="pubsub")],
        "CONFIG": CHANNEL_LAYER_CONFIG,
    }
}

# Websockets (realtime.consumers, realtime.reauth, realtime.limits).
# Signed-in sockets are re-checked this often and closed with 4401 once their session or
# token has ended (logout, expiry, password change, revocation).
WEBSOCKET_REAUTH_INTERVAL = env.float("WEBSOCKET_REAUTH_INTERVAL", default=30)
if not 0 < WEBSOCKET_REAUTH_INTERVAL <= 3600:
    raise ImproperlyConfigured("WEBSOCKET_REAUTH_INTERVAL must be between 0 and 3600 seconds.")
# Frames a socket may send: WEBSOCKET_RATE_LIMIT a second sustained, WEBSOCKET_RATE_BURST
# at once; a flood gets an error and close code 1008. 0 turns the limit off.
WEBSOCKET_RATE_LIMIT = env.float("WEBSOCKET_RATE_LIMIT", default=10)
WEBSOCKET_RATE_BURST = env.int("WEBSOCKET_RATE_BURST", default=30)
# Open sockets per client address and per user, in each daphne process (0: no cap); over
# the cap, close code 4429. (The local stack turns them off: benchmarks open thousands of
# sockets from one address.)
WEBSOCKET_MAX_PER_IP = env.int("WEBSOCKET_MAX_PER_IP", default=200)
WEBSOCKET_MAX_PER_USER = env.int("WEBSOCKET_MAX_PER_USER", default=20)
# Longer text frames get an error frame, unparsed. Fits a 4,000-character chat message
# even JSON-escaped (\uXXXX pairs), and stays under daphne's hard limit in
# deploy/run_daphne.py (MAX_MESSAGE_BYTES), above which daphne closes with 1009.
WEBSOCKET_MAX_MESSAGE_LENGTH = 48 * 1024

# The site's origins as browsers show them: checked against the Origin of every websocket
# and SSE request (realtime.origins), trusted for form posts. Each environment's settings
# derive them from ALLOWED_HOSTS when the variable is empty (see origins_of).
PUBLIC_ORIGINS = env.list("PUBLIC_ORIGINS", default=[])


def origins_of(hosts, scheme, port=None):
    """The origins (``scheme://host[:port]``) a browser shows for ``hosts`` (ALLOWED_HOSTS
    entries)."""
    suffix = "" if port in (None, {"http": 80, "https": 443}[scheme]) else f":{port}"
    return [
        f"{scheme}://{'*' + host if host.startswith('.') else host}{suffix}"
        for host in hosts
        if host != "*"
    ]


# Abuse limits every process shares, counted in the layer's Redis (realtime.throttle); 0
# turns one off. These defaults are production's; the local stack relaxes the posting ones
# (config/settings/local.py) for the tests and benchmarks it serves from one address.
# Posts (chat messages and POST /api/notifications/, one budget) per user, or per address
# when signed out, across every socket and process: POST_RATE_BURST at once, then
# POST_RATE_LIMIT a second; over it, an error frame or HTTP 429.
POST_RATE_LIMIT = env.float("POST_RATE_LIMIT", default=1)
POST_RATE_BURST = env.int("POST_RATE_BURST", default=10)
# Failed sign-ins (/login/, /admin/login/) per user name and per address within
# LOGIN_FAILURE_PERIOD seconds; past either, the page answers 429 without checking the
# password, and allows one more try every PERIOD / LIMIT (accounts.sign_in).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=20)
LOGIN_FAILURE_PERIOD = env.int("LOGIN_FAILURE_PERIOD", default=900)
