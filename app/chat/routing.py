from django.urls import re_path

from .consumers import ChatConsumer

websocket_urlpatterns = [
    # Any name reaches the consumer, which refuses invalid ones with a clear reason.
    re_path(r"^ws/chat/(?P<room>[^/]*)/$", ChatConsumer.as_asgi()),
]
