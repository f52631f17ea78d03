"""Servers: HTTPS behind nginx. Refuses to start with unsafe values rather than run with them."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOG_LEVEL, env, logging_config
from .kit import origins_of

DEV_SECRET_KEY_MARKERS = ("dev-only", "insecure", "change-me")

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (unset it or set DEBUG=false).")

SECRET_KEY = env.str("SECRET_KEY", default="")
if len(SECRET_KEY) < 50 or any(marker in SECRET_KEY for marker in DEV_SECRET_KEY_MARKERS):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )

# No localhost default here: an empty list would only fail later, request by request.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the site's domain(s) in production.")
# The site as browsers see it: https on the default port, unless it is served elsewhere
# (a port-mapping proxy in front, another domain for the page).
PUBLIC_ORIGINS = env.list("PUBLIC_ORIGINS", default=origins_of(ALLOWED_HOSTS, "https"))
CSRF_TRUSTED_ORIGINS = PUBLIC_ORIGINS

# nginx terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
# Load balancers and the smoke test may probe the health check over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS is nginx's job (deploy/nginx/site.conf): it covers every response, static files and
# nginx's own errors included, from one place. Django's header would be hidden there anyway,
# so Django sends none, and the check asking for it (W004) is silenced.
SECURE_HSTS_SECONDS = 0
SILENCED_SYSTEM_CHECKS = ["security.W004"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# One JSON object per log line, for a log store to index (LOG_FORMAT=plain for text).
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
