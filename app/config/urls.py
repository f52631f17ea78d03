from django.contrib import admin
from django.urls import path

from notifications.views import create_notification
from realtime.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/notifications/", create_notification, name="api-notifications"),
    path("admin/", admin.site.urls),
]
