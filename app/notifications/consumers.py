from realtime import close_codes
from realtime.consumers import StoredEventConsumer
from realtime.db import database_sync_to_async

from .events import EVENT_TYPE, user_group
from .services import latest_notification_id, user_stream


class NotificationConsumer(StoredEventConsumer):
    """``/ws/notifications/``: a signed-in user's notifications, pushed as they are created.

    With ``?since=<id>`` the socket first gets the notifications created after that id
    (a reconnecting page's resume; past 200 of them, a reset and the latest 20: see
    realtime.replay), then the live ones.

    Anonymous clients are accepted and then closed with 4401, so a browser can tell
    "sign in" apart from a network failure (a refused handshake shows only as 1006).
    """

    # Every socket of the user gets the same frame: written once per process (realtime.fanout).
    fast_path_events = frozenset({EVENT_TYPE})

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.refuse(
                close_codes.UNAUTHORIZED, "sign in, or connect with an API token or a ticket"
            )
            return
        since = await self.resume_point()
        if since is False:
            return
        # Join before reading the backlog, as ChatConsumer does: nothing falls in between.
        await self.join_group(user_group(user.id))
        await self.accept()
        if since is None:  # only new ones; after an outage, catch up from the newest now
            self.last_sent_id = await database_sync_to_async(latest_notification_id)(user.id)
        else:
            await self.replay(since)

    def stored_stream(self):
        return user_stream(self.scope["user"].id)

    async def notification(self, event):  # without the fast path
        await self.relay_event(event)
