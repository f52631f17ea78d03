"""Token authentication for websockets; HTTP uses ``accounts.decorators``."""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from realtime.scope import query_param

from .tokens import authenticate_token


def bearer_token(scope):
    """The token of an ``Authorization: Bearer <token>`` handshake header, or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, raw = value.decode("latin-1").partition(" ")
            return raw.strip() if scheme.lower() == "bearer" else None
    return None


def token_presented(scope):
    """Whether a handshake brings a token (a client that authenticates without cookies)."""
    return bearer_token(scope) is not None


class TokenAuthMiddleware(BaseMiddleware):
    """Sets scope["user"] (and scope["api_token"]) from a token on websocket connections.

    The token comes from an ``Authorization: Bearer`` header (clients that can set
    headers: scripts, apps), else from ``?token=`` (browsers cannot set headers on a
    websocket). Sits inside AuthMiddlewareStack, so a token, when given, overrides the
    session user; a bad token means an anonymous user, never a fallback to the cookie.
    """

    async def __call__(self, scope, receive, send):
        raw = bearer_token(scope) or query_param(scope, "token")
        if raw is not None:
            token = await database_sync_to_async(authenticate_token)(raw)
            scope = dict(scope, user=token.user if token else AnonymousUser(), api_token=token)
        return await super().__call__(scope, receive, send)
