"""Settings shared by every environment, read from the environment variables.

Every variable read here is documented in ``.env.example`` (a test keeps the two in step).
Values in the real environment win over ``.env``, so a process manager or a test can
override any of them.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.environment import Env, load_environment

APP_DIR = Path(__file__).resolve().parents[2]
REPO_DIR = APP_DIR.parent

env = Env()  # an empty variable means its default
# The entry points have read the env file already; settings imported some other way (a
# script, a test) read it here. DJANGO_ENV_FILE="" disables it (the tests do this, so a
# developer's .env never leaks into them).
load_environment()


def _path_from_env(name, default):
    """A path setting; empty means ``default``, relative paths start at the repository root."""
    path = Path(env.str(name, default="") or default)
    return path if path.is_absolute() else REPO_DIR / path


# The project's name (deploy/render.py names the server's units and paths after it). Here:
# the prefix of everything it keeps in Redis, so several projects can share one Redis.
PROJECT_NAME = env.str("PROJECT_NAME", default="realtime")

# Runtime state (SQLite file, static files, sockets, logs) lives under one directory.
DATA_DIR = _path_from_env("DATA_DIR", "var")
RUN_DIR = DATA_DIR / "run"

# SECRET_KEY and DEBUG are set by each environment's module (dev has safe defaults,
# production insists on real values).
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])


def origins_of(hosts, scheme, port=None):
    """The origins (``scheme://host[:port]``) a browser shows for ``hosts`` (ALLOWED_HOSTS
    entries): each environment derives PUBLIC_ORIGINS from them unless it is set."""
    suffix = "" if port in (None, {"http": 80, "https": 443}[scheme]) else f":{port}"
    return [
        f"{scheme}://{'*' + host if host.startswith('.') else host}{suffix}"
        for host in hosts
        if host != "*"
    ]


INSTALLED_APPS = [
    "daphne",  # first, so `runserver` is daphne's and the Twisted reactor is installed early
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "accounts",
    "realtime",
    "chat",
    "notifications",
    "web",
]

MIDDLEWARE = [
    # First: its time covers every other middleware; it also holds nginx's request id for
    # the logs (realtime.metrics, realtime.request_id).
    "realtime.http_observability.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "web.middleware.ContentSecurityPolicyMiddleware",
]

# The page at / (web): Django's own sign-in views.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "login"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_env():
    """DATABASE_URL, or a SQLite file under DATA_DIR when it is empty.

    SQLite is shared by gunicorn and daphne processes, so it runs in WAL mode with
    IMMEDIATE transactions and a busy timeout: concurrent writers wait instead of
    failing with "database is locked".
    """
    url = env.str("DATABASE_URL", default="")
    if not url:
        url = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
    database = env.db_url_config(url)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    database["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # A kept connection is checked before its first use by each request: after a database
    # restart, the first request on a dead connection would otherwise fail with a 500.
    database["CONN_HEALTH_CHECKS"] = True
    return database


DATABASES = {"default": _database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# nginx serves /static/ from its `root`; STATIC_ROOT must be `<that root>/static`.
STATIC_URL = "/static/"
STATIC_ROOT = _path_from_env("STATIC_ROOT", DATA_DIR / "public" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Content-hashed names (ES module imports included), so nginx can let browsers cache
    # them for ever.
    "staticfiles": {"BACKEND": "web.storage.StaticFilesStorage"},
}

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
    # membership lives in the process, so it never expires (see README, "Pitfalls").
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

# Chat: anonymous sockets are refused (4401) unless this is off; then they chat as "anon".
CHAT_REQUIRE_LOGIN = env.bool("CHAT_REQUIRE_LOGIN", default=True)

# Abuse limits every process shares, counted in the layer's Redis (realtime.throttle); 0
# turns one off. These defaults are production's; the local stack relaxes the posting ones
# (config/settings/local.py) for the tests and benchmarks it serves from one address.
# Posts (chat messages and POST /api/notifications/, one budget) per user, or per address
# when signed out, across every socket and process: POST_RATE_BURST at once, then
# POST_RATE_LIMIT a second; over it, an error frame or HTTP 429.
POST_RATE_LIMIT = env.float("POST_RATE_LIMIT", default=1)
POST_RATE_BURST = env.int("POST_RATE_BURST", default=10)
# Chat rooms a user (or address) may create, by posting a room's first message, per hour.
CHAT_ROOMS_PER_HOUR = env.int("CHAT_ROOMS_PER_HOUR", default=20)
# Failed sign-ins (/login/, /admin/login/) per user name and per address within
# LOGIN_FAILURE_PERIOD seconds; past either, the page answers 429 without checking the
# password, and allows one more try every PERIOD / LIMIT (accounts.sign_in).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=20)
LOGIN_FAILURE_PERIOD = env.int("LOGIN_FAILURE_PERIOD", default=900)

# `manage.py demo_data` (users with a published password) runs only where this is on:
# the local settings, never production.
DEMO_USERS_ALLOWED = False
CHAT_HISTORY_LENGTH = 50
CHAT_MESSAGE_MAX_LENGTH = 4000

LOG_FORMATS = ("plain", "json")


def logging_config(log_format, level):
    """Django's LOGGING, and gunicorn's own loggers' (deploy/gunicorn.conf.py passes it on as
    logconfig_dict): one format for every line of every process. ``json``: one object per
    line (realtime.logs); ``plain``: a line of text."""
    if log_format not in LOG_FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {log_format!r}.")
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "realtime.logs.JsonFormatter"},
    }
    # Every line logged while a request is handled carries nginx's id for it.
    filters = ["request_id"]

    def to_stderr(*more_filters):
        return {
            "class": "logging.StreamHandler",
            "formatter": log_format,
            "filters": [*filters, *more_filters],
        }

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {log_format: formatters[log_format]},
        "filters": {
            "client_error": {"()": "config.log_filters.ClientErrorWithoutTraceback"},
            "request_id": {"()": "realtime.request_id.RequestIdFilter"},
        },
        "handlers": {
            "stderr": to_stderr(),
            "stderr_client_errors": to_stderr("client_error"),
        },
        "loggers": {
            # An unknown Host header: one warning line (nginx answers most of them itself).
            "django.security.DisallowedHost": {
                "handlers": ["stderr_client_errors"],
                "propagate": False,
            },
            # gunicorn's own (read by gunicorn.conf.py); nothing else logs to them.
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }


# Log lines as text (plain) or one JSON object each (json: what a log store indexes; on by
# default in production), at LOG_LEVEL and above.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
