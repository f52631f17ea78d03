"""Every websocket route of the project, assembled here as config/urls.py assembles its
URLs, each app's routes named by their module (config.asgi wraps them all in the origin
check and the auth stack). The kit's own routes frame the apps': the echo endpoint first,
a clear close code for any other path last."""

from django.urls import path, re_path
from django.utils.module_loading import import_string

from realtime.consumers import EchoConsumer, NotFoundConsumer

websocket_urlpatterns = [
    path("ws/echo/", EchoConsumer.as_asgi()),
    # demo: begin
    *import_string("chat.routing.websocket_urlpatterns"),
    *import_string("notifications.routing.websocket_urlpatterns"),
    # demo: end
    re_path(r"", NotFoundConsumer.as_asgi()),
]
