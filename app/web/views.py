from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.shortcuts import render

from chat.events import UNLISTED_PREFIX, is_valid_room_name
from chat.models import ChatMessage
from notifications.services import recent_notifications

DEFAULT_ROOM = "lobby"


def active_rooms(count=20):
    """The listed rooms with the latest messages, newest first (a room exists once someone
    posts)."""
    rooms = (
        ChatMessage.objects.exclude(room__startswith=UNLISTED_PREFIX)
        .values("room")
        .annotate(latest=Max("id"))
        .order_by("-latest")
    )
    return [row["room"] for row in rooms[:count]]


@login_required
def index(request):
    """The page; everything live on it is done by static/web/js/main.js."""
    room = request.GET.get("room", "")
    notifications = recent_notifications(request.user.pk)
    return render(
        request,
        "web/index.html",
        {
            "room": room if is_valid_room_name(room) else DEFAULT_ROOM,
            "rooms": active_rooms(),
            "notifications": notifications,
            "last_notification_id": notifications[-1]["id"] if notifications else 0,
            "other_users": get_user_model()
            .objects.filter(is_active=True)
            .exclude(pk=request.user.pk)
            .order_by("username")
            .values_list("username", flat=True)[:50],
        },
    )
