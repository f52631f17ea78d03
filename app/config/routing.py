"""Every websocket route of the project, assembled here as config/urls.py assembles its
URLs (config.asgi wraps them in the origin check and the auth stack). The kit's own routes
(the echo endpoint, and a clear close code for any other path) frame the apps' routes."""

from django.urls import path, re_path

from chat.routing import websocket_urlpatterns as chat_urlpatterns
from notifications.routing import websocket_urlpatterns as notification_urlpatterns
from realtime.consumers import EchoConsumer, NotFoundConsumer

websocket_urlpatterns = [
    path("ws/echo/", EchoConsumer.as_asgi()),
    *chat_urlpatterns,
    *notification_urlpatterns,
    re_path(r"", NotFoundConsumer.as_asgi()),
]
