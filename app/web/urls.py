from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.sign_in import throttle_sign_in

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path(
        "login/",
        throttle_sign_in(
            auth_views.LoginView.as_view(
                template_name="web/login.html", redirect_authenticated_user=True
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
