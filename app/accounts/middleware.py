"""Token authentication for websockets; HTTP uses ``accounts.decorators``."""

from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from realtime.db import database_sync_to_async
from realtime.scope import ticket_offered

from .tickets import redeem_ticket
from .tokens import authenticate_token


def bearer_token(scope):
    """The token of an ``Authorization: Bearer <token>`` handshake header, or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, raw = value.decode("latin-1").partition(" ")
            return raw.strip() if scheme.lower() == "bearer" else None
    return None


def token_presented(scope):
    """Whether a handshake brings a token or a ticket (a client without cookies)."""
    return bearer_token(scope) is not None or ticket_offered(scope) is not None


def _token_of(scope):
    """The ApiToken a handshake authenticates with, None for a bad one (synchronous)."""
    raw = bearer_token(scope)
    if raw is not None:
        return authenticate_token(raw)
    return redeem_ticket(ticket_offered(scope))


class TokenAuthMiddleware(BaseMiddleware):
    """Sets scope["user"] (and scope["api_token"]) from a token on websocket connections.

    The token comes from an ``Authorization: Bearer`` header (scripts, apps), or stands
    behind a ticket offered as a subprotocol (clients that cannot set headers; see
    accounts.tickets). Never from the URL: nginx refuses ``?token=`` (its error log would
    record it). Sits inside AuthMiddlewareStack, so a token, when given, overrides the
    session user; a bad token or ticket means an anonymous user, never a fallback to the
    cookie.
    """

    async def __call__(self, scope, receive, send):
        if token_presented(scope):
            token = await database_sync_to_async(_token_of)(scope)
            scope = dict(scope, user=token.user if token else AnonymousUser(), api_token=token)
        return await super().__call__(scope, receive, send)
