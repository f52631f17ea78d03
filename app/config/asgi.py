"""ASGI entry point: daphne serves the websocket routes (/ws/) and, through the "http"
route, the Server-Sent Events stream (/sse/notifications/, an async Django view).

Both pass first through PublicOriginMiddleware: a page whose Origin is not one of
PUBLIC_ORIGINS gets 403 (browsers send cookies with a websocket upgrade from any site:
cross-site websocket hijacking). A websocket handshake without Origin is not a browser's
and passes only with a token. Then every websocket route passes, outermost first, through:
- AuthMiddlewareStack: the Django session cookie sets scope["user"];
- TokenAuthMiddleware: an ``Authorization: Bearer`` token overrides it for clients without
  cookies.
"""

from django.core.asgi import get_asgi_application

from config.environment import load_environment

load_environment()
# Django must be set up before anything imports models (consumers, middleware).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.middleware import TokenAuthMiddleware, token_presented  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from realtime.metrics import expect_endpoints  # noqa: E402
from realtime.origins import PublicOriginMiddleware  # noqa: E402

expect_endpoints(websocket_urlpatterns)

application = ProtocolTypeRouter(
    {
        "http": PublicOriginMiddleware(django_asgi_app),
        "websocket": PublicOriginMiddleware(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))),
            without_origin=token_presented,
        ),
    }
)
