from django.apps import AppConfig


class WebConfig(AppConfig):
    """The browser page: sign-in, rooms, chat and the notification bell."""

    name = "web"
