"""Reading a user's notifications, as plain synchronous functions."""

from realtime.replay import StoredStream, latest

from .events import notification_payload
from .models import Notification

# A bell needs the latest few, not an unbounded replay: a client more than this many
# behind starts over with the RECENT latest ones (realtime.replay).
RESUME_LIMIT = 200
RECENT = 20


def user_stream(user_id):
    """A user's notifications as their sockets and streams follow them."""
    return StoredStream(
        rows=Notification.objects.filter(user_id=user_id),
        payload=notification_payload,
        limit=RESUME_LIMIT,
        latest=RECENT,
    )


def recent_notifications(user_id):
    """The user's last RECENT notifications as client payloads, oldest first (the page)."""
    return latest(user_stream(user_id))


def latest_notification_id(user_id):
    """The id a new stream resumes after, so nothing created while it reconnects is lost."""
    latest = Notification.objects.filter(user_id=user_id).order_by("-id").first()
    return latest.id if latest else 0
