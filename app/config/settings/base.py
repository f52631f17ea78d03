"""Settings shared by every environment, read from the environment variables.

Every variable read here is documented in ``.env.example`` (a test keeps the two in step).
Values in the real environment win over ``.env``, so a process manager or a test can
override any of them.
"""

from django.core.exceptions import ImproperlyConfigured

from config.environment import load_environment

# The entry points have read the env file already; settings imported some other way (a
# script, a test) read it here. DJANGO_ENV_FILE="" disables it (the tests do this, so a
# developer's .env never leaks into them).
load_environment()

# The real-time kit's settings (the channel layer, websocket limits, the data directory...),
# in a module of their own that a project adopting the kit copies (docs/adopt.md).
from .kit import *  # noqa: E402, F403
from .kit import DATA_DIR, env  # noqa: E402

# SECRET_KEY and DEBUG are set by each environment's module (dev has safe defaults,
# production insists on real values).
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])


INSTALLED_APPS = [
    "daphne",  # first, so `runserver` is daphne's and the Twisted reactor is installed early
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "users",
    "accounts",
    "realtime",
    # demo: begin
    "chat",
    "notifications",
    "web",
    # demo: end
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
    # demo: begin
    "web.middleware.ContentSecurityPolicyMiddleware",
    # demo: end
]

# A custom user model from day one (users.User): changing it later is painful.
AUTH_USER_MODEL = "users.User"

# demo: begin
# The page at / (web): Django's own sign-in views.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "login"
# demo: end

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

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Content-hashed names (ES module imports included), so nginx can let browsers cache
    # them for ever.
    "staticfiles": {"BACKEND": "config.storage.StaticFilesStorage"},
}

# demo: begin
# Chat: anonymous sockets are refused (4401) unless this is off; then they chat as "anon".
CHAT_REQUIRE_LOGIN = env.bool("CHAT_REQUIRE_LOGIN", default=True)
# POST /api/notifications/ with "to": off unless a site wants users to notify each other
# (it lets any signed-in user message anyone, and learn which user names exist). The
# local settings turn it on for the demo page.
NOTIFICATIONS_TO_OTHERS = env.bool("NOTIFICATIONS_TO_OTHERS", default=False)
# demo: end

# demo: begin
# Chat rooms a user (or address) may create, by posting a room's first message, per hour.
CHAT_ROOMS_PER_HOUR = env.int("CHAT_ROOMS_PER_HOUR", default=20)
# demo: end
# demo: begin
# `manage.py demo_data` (users with a published password) runs only where this is on:
# the local settings, never production.
DEMO_USERS_ALLOWED = False
CHAT_HISTORY_LENGTH = 50
CHAT_MESSAGE_MAX_LENGTH = 4000
# demo: end

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
