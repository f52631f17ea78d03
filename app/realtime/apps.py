from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time plumbing (consumers, routing, channel layer)"

    def ready(self):
        from . import (
            checks,  # noqa: F401 - registers the channel-layer system checks
            layer,
        )

        layer.check_internals()
