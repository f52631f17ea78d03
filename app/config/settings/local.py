"""The local stack (`make up`) and the test suite: everything on 127.0.0.1, no TLS."""

from .base import *  # noqa: F403
from .base import ALLOWED_HOSTS, env
from .kit import origins_of

# Off by default even locally: the stack runs gunicorn behind nginx as on a server.
# DEBUG=true brings Django's debug pages (and unhashed static names, which nginx caches).
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key")

# The local nginx listens on PUBLIC_PORT, plain HTTP: the page's origin is
# http://<each allowed host>:PUBLIC_PORT. nginx passes the Host without the port, so
# Django's same-origin check for form posts needs these origins spelled out.
PUBLIC_PORT = env.int("PUBLIC_PORT", default=8080)
PUBLIC_ORIGINS = env.list("PUBLIC_ORIGINS", default=origins_of(ALLOWED_HOSTS, "http", PUBLIC_PORT))
CSRF_TRUSTED_ORIGINS = PUBLIC_ORIGINS

# demo: begin
# The demo page lets alice notify bob (POST /api/notifications/ with "to"); production
# settings refuse it unless a site turns it on.
NOTIFICATIONS_TO_OTHERS = env.bool("NOTIFICATIONS_TO_OTHERS", default=True)
# demo: end

# The local stack serves its tests and `make bench` from 127.0.0.1: thousands of sockets,
# many rooms and posts from one address, anonymous chat. Production keeps base.py's
# stricter defaults; any of these can still be set in .env.
# demo: begin
CHAT_REQUIRE_LOGIN = env.bool("CHAT_REQUIRE_LOGIN", default=False)
# demo: end
WEBSOCKET_MAX_PER_IP = env.int("WEBSOCKET_MAX_PER_IP", default=0)
WEBSOCKET_MAX_PER_USER = env.int("WEBSOCKET_MAX_PER_USER", default=0)
POST_RATE_LIMIT = env.float("POST_RATE_LIMIT", default=10)
POST_RATE_BURST = env.int("POST_RATE_BURST", default=30)
# demo: begin
CHAT_ROOMS_PER_HOUR = env.int("CHAT_ROOMS_PER_HOUR", default=1000)
DEMO_USERS_ALLOWED = True
# demo: end
