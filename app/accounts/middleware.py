"""Token authentication for websockets (``?token=``); HTTP uses ``accounts.decorators``."""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from realtime.scope import query_param

from .tokens import authenticate_token


class TokenAuthMiddleware(BaseMiddleware):
    """Sets scope["user"] from ``?token=<token>`` on websocket connections.

    Sits inside AuthMiddlewareStack, so a token, when given, overrides the session user;
    a bad token means an anonymous user, never a fallback to the cookie.
    """

    async def __call__(self, scope, receive, send):
        raw = query_param(scope, "token")
        if raw is not None:
            token = await database_sync_to_async(authenticate_token)(raw)
            scope = dict(scope, user=token.user if token else AnonymousUser(), api_token=token)
        return await super().__call__(scope, receive, send)
