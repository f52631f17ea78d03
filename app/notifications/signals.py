from django.db.models.signals import post_save
from django.dispatch import receiver

from realtime.broadcast import broadcast_on_commit

from .events import notification_event, user_group
from .models import Notification


@receiver(post_save, sender=Notification, dispatch_uid="notifications.push_new_notification")
def push_new_notification(sender, instance, created, **kwargs):
    """The article's pattern: push after commit, so no client hears of a row that rolled back."""
    if created:
        broadcast_on_commit(user_group(instance.user_id), notification_event(instance))
