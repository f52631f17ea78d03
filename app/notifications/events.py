"""The one definition of a notification event: what group_send carries and what clients get."""

from realtime.wire import encode

EVENT_TYPE = "notification"  # handled by NotificationConsumer.notification


def user_group(user_id):
    """Every socket of one user, across all daphne processes."""
    return f"user_{user_id}"


def notification_payload(notification):
    return {
        "type": EVENT_TYPE,
        "id": notification.id,
        "text": notification.text,
        "created": notification.created.isoformat(),
    }


def notification_event(notification):
    """The group event: the client JSON encoded once here, not once per socket."""
    return {
        "type": EVENT_TYPE,
        "id": notification.id,
        "text": encode(notification_payload(notification)),
    }
