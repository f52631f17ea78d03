"""ASGI entry point: daphne serves the websocket routes (/ws/) and, through the "http"
route, the Server-Sent Events stream (/sse/notifications/, an async Django view).

Every websocket route passes, outermost first, through:
- AllowedHostsOriginValidator: the Origin header must match ALLOWED_HOSTS (cross-site
  websocket hijacking is otherwise open, since browsers send cookies on the upgrade);
- AuthMiddlewareStack: the Django session cookie sets scope["user"];
- TokenAuthMiddleware: `?token=` overrides it for clients without cookies.
"""

from django.core.asgi import get_asgi_application

from config.environment import load_environment

load_environment()
# Django must be set up before anything imports models (consumers, middleware).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from accounts.middleware import TokenAuthMiddleware  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
