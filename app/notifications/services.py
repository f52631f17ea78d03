"""Reading a user's notifications, as plain synchronous functions."""

from .events import notification_payload
from .models import Notification

RESUME_LIMIT = 200


def recent_notifications(user_id, count=20):
    """The user's last ``count`` notifications as client payloads, oldest first."""
    latest = Notification.objects.filter(user_id=user_id).order_by("-id")[:count]
    return [notification_payload(notification) for notification in reversed(latest)]


def notifications_after(user_id, after_id):
    """Up to RESUME_LIMIT payloads created after ``after_id``, oldest first: what a
    reconnecting client missed (a bell needs the latest few, not an unbounded replay)."""
    page = Notification.objects.filter(user_id=user_id, id__gt=after_id).order_by("id")
    return [notification_payload(notification) for notification in page[:RESUME_LIMIT]]


def latest_notification_id(user_id):
    """The id a new stream resumes after, so nothing created while it reconnects is lost."""
    latest = Notification.objects.filter(user_id=user_id).order_by("-id").first()
    return latest.id if latest else 0
