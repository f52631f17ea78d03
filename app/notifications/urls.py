from django.urls import path

from .sse import notification_stream
from .views import create_notification

urlpatterns = [
    path("api/notifications/", create_notification, name="api-notifications"),
    # Served by daphne (nginx routes /sse/ there); gunicorn would tie up a worker per stream.
    path("sse/notifications/", notification_stream, name="sse-notifications"),
]
