"""Pushing events from synchronous code (views, signals) to websocket groups."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def broadcast(group, event):
    """Send ``event`` to every socket in ``group``, in whichever daphne process it is held."""
    async_to_sync(get_channel_layer().group_send)(group, event)


def broadcast_on_commit(group, event):
    """Broadcast once the current transaction commits (at once outside a transaction).

    A rolled-back transaction drops the callback, so clients never see a row that was
    never stored. ``robust``: if Redis is down, the write still succeeds and the failure
    is logged, rather than a committed write turning into a 500.
    """

    def broadcast_after_commit():
        # A plain function, not functools.partial: Django's robust on_commit names the
        # failed callback by its __qualname__, which a partial lacks (the error handler
        # itself would raise, turning "Redis is down" into a 500).
        broadcast(group, event)

    transaction.on_commit(broadcast_after_commit, robust=True)
