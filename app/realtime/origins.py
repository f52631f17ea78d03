"""Only the site's own pages may open sockets and streams: their Origin must be one of
PUBLIC_ORIGINS, scheme, host and port alike.

Browsers send the site's cookies with a websocket handshake whatever page opens it, so
without this check any page elsewhere could act as the signed-in user (cross-site
websocket hijacking); they also say which page it is, in the Origin header. Channels'
AllowedHostsOriginValidator compares host names only: a page on another port of the same
host, or served over plain http next to an https site, passed. The same check guards the
Server-Sent Events stream, so /ws/ and /sse/ follow one rule.
"""

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

from . import metrics
from .wire import encode


def origin_header(scope):
    """The Origin header of an ASGI scope, or None without one."""
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return value.decode("latin-1")
    return None


def is_public_origin(origin, public_origins):
    """``origin`` is one of ``public_origins`` (``scheme://host[:port]``; a host written
    ``*.example.com`` stands for the domain's subdomains, as in CSRF_TRUSTED_ORIGINS).
    Default ports count as written: ``https://example.com`` is ``https://example.com:443``."""
    patterns = [pattern.replace("://*.", "://.", 1) for pattern in public_origins]
    try:
        parsed = urlparse(origin)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    # Channels' matcher compares scheme, host (".example.com": it and its subdomains) and
    # port, each port defaulting to its scheme's.
    return OriginValidator(None, patterns).validate_origin(parsed)


class PublicOriginMiddleware:
    """ASGI middleware: websocket handshakes and HTTP requests from a page that is not the
    site's (an Origin not in PUBLIC_ORIGINS) are refused with 403.

    Without an Origin header, HTTP requests pass: browsers leave it out of same-origin GET
    requests such as EventSource's, and always send it on cross-origin ones. Browsers
    always send it on a websocket handshake, so a handshake without one comes from a
    script or an app, and passes only if ``without_origin(scope)`` says so (config.asgi
    lets such clients in with a token, never with a cookie alone).
    """

    def __init__(self, app, without_origin=lambda scope: False):
        self.app = app
        self.without_origin = without_origin

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and not self.allowed(scope):
            return await self.refuse(scope, receive, send)
        return await self.app(scope, receive, send)

    def allowed(self, scope):
        origin = origin_header(scope)
        if origin is None:
            return scope["type"] == "http" or self.without_origin(scope)
        return is_public_origin(origin, settings.PUBLIC_ORIGINS)

    async def refuse(self, scope, receive, send):
        if scope["type"] == "websocket":
            metrics.handshake("origin")
            return await WebsocketDenier()(scope, receive, send)
        body = encode({"error": "this origin may not use the site's streams"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
