from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time plumbing (consumers, routing, channel layer)"

    def ready(self):
        from . import (
            catch_up,
            checks,  # noqa: F401 - registers the channel-layer system checks
            layer,
            redis_hosts,
        )

        layer.check_internals()
        catch_up.check_internals()
        redis_hosts.hosts()  # bad REDIS_* values refuse to start (ImproperlyConfigured)
