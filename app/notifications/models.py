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

    class Meta:
        # A user's newest id and the resume after an id both read one user in id order;
        # with the foreign key's index alone, PostgreSQL walks the whole table backwards
        # for the newest notification of a user who has none.
        indexes = [models.Index(fields=["user", "id"], name="notification_user_id")]

    def __str__(self):
        return f"#{self.id} to {self.user}: {self.text[:40]}"
