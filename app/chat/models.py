from django.conf import settings
from django.db import models
from django.utils import timezone


class ChatMessage(models.Model):
    """One message in a room. Rooms are just names: a room exists once someone posts."""

    room = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept as posted, so history still reads right after a user is renamed or deleted.
    username = models.CharField(max_length=150)
    message = models.TextField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        # History and resume both read one room in id order.
        indexes = [models.Index(fields=["room", "id"], name="chat_room_id")]

    def __str__(self):
        return f"#{self.id} {self.room} {self.username}: {self.message[:40]}"
