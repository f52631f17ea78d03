from django.contrib import admin
from django.urls import include, path

from notifications.sse import notification_stream
from notifications.views import create_notification
from realtime.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/notifications/", create_notification, name="api-notifications"),
    # Served by daphne (nginx routes /sse/ there); gunicorn would tie up a worker per stream.
    path("sse/notifications/", notification_stream, name="sse-notifications"),
    path("admin/", admin.site.urls),
    path("", include("web.urls")),
]
