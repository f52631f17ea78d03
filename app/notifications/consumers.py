from channels.db import database_sync_to_async

from realtime import close_codes
from realtime.consumers import JsonTextConsumer

from .events import user_group
from .services import notifications_after


class NotificationConsumer(JsonTextConsumer):
    """``/ws/notifications/``: a signed-in user's notifications, pushed as they are created.

    With ``?since=<id>`` the socket first gets the notifications created after that id
    (a reconnecting page's resume), then the live ones.

    Anonymous clients are accepted and then closed with 4401, so a browser can tell
    "sign in" apart from a network failure (a refused handshake shows only as 1006).
    """

    backlog_ids = frozenset()

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.refuse(close_codes.UNAUTHORIZED, "sign in, or connect with ?token=<token>")
            return
        since = await self.resume_point()
        if since is False:
            return
        # Join before reading the backlog, as ChatConsumer does: nothing falls in between.
        await self.join_group(user_group(user.id))
        await self.accept()
        if since is not None:
            backlog = await database_sync_to_async(notifications_after)(user.id, since)
            for payload in backlog:
                await self.send_json(payload)
            self.backlog_ids = frozenset(payload["id"] for payload in backlog)

    async def notification(self, event):
        if event["id"] not in self.backlog_ids:
            await self.forward_event(event)
