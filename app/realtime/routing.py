"""Every websocket route of the project (config.asgi wraps them in the auth stack)."""

from django.urls import path, re_path

from chat.routing import websocket_urlpatterns as chat_urlpatterns
from notifications.routing import websocket_urlpatterns as notification_urlpatterns

from .consumers import EchoConsumer, NotFoundConsumer

websocket_urlpatterns = [
    path("ws/echo/", EchoConsumer.as_asgi()),
    *chat_urlpatterns,
    *notification_urlpatterns,
    re_path(r"", NotFoundConsumer.as_asgi()),
]
