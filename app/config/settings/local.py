"""The local stack (`make up`) and the test suite: everything on 127.0.0.1, no TLS."""

from .base import *  # noqa: F403
from .base import env

# Off by default even locally: the stack runs gunicorn behind nginx as on a server.
# DEBUG=true brings Django's debug pages (and unhashed static names, which nginx caches).
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key")

# The local nginx listens on 127.0.0.1:PUBLIC_PORT; trust that origin for CSRF.
PUBLIC_PORT = env.int("PUBLIC_PORT", default=8080)
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=[f"http://127.0.0.1:{PUBLIC_PORT}", f"http://localhost:{PUBLIC_PORT}"],
)

# The demo page lets alice notify bob (POST /api/notifications/ with "to"); production
# settings refuse it unless a site turns it on.
NOTIFICATIONS_TO_OTHERS = env.bool("NOTIFICATIONS_TO_OTHERS", default=True)

DEMO_USERS_ALLOWED = True
