from django.db.models.signals import post_save
from django.dispatch import receiver

from realtime.broadcast import broadcast_on_commit

from .events import chat_message_event, room_group
from .models import ChatMessage


@receiver(post_save, sender=ChatMessage, dispatch_uid="chat.broadcast_new_message")
def broadcast_new_message(sender, instance, created, **kwargs):
    if created:
        broadcast_on_commit(room_group(instance.room), chat_message_event(instance))
