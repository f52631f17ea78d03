from django.contrib import admin
from django.urls import include, path

from accounts.sign_in import throttle_sign_in
from accounts.views import create_ticket
from realtime.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/ws-ticket/", create_ticket, name="api-ws-ticket"),
    # The admin's own sign-in page, throttled like the site's (before admin.site.urls).
    path("admin/login/", throttle_sign_in(admin.site.login)),
    path("admin/", admin.site.urls),
    # demo: begin
    path("", include("notifications.urls")),
    path("", include("web.urls")),
    # demo: end
]
