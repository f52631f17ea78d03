from django.contrib import admin
from django.urls import include, path

from accounts.sign_in import throttle_sign_in
from accounts.views import create_ticket
from notifications.sse import notification_stream
from notifications.views import create_notification
from realtime.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/notifications/", create_notification, name="api-notifications"),
    path("api/ws-ticket/", create_ticket, name="api-ws-ticket"),
    # Served by daphne (nginx routes /sse/ there); gunicorn would tie up a worker per stream.
    path("sse/notifications/", notification_stream, name="sse-notifications"),
    # The admin's own sign-in page, throttled like the site's (before admin.site.urls).
    path("admin/login/", throttle_sign_in(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include("web.urls")),
]
