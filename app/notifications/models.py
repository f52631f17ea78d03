from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    """A message for one user; saving one pushes it to that user's open sockets."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    text = models.TextField()
    created = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"#{self.id} to {self.user}: {self.text[:40]}"
