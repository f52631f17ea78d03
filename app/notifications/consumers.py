from realtime import close_codes
from realtime.consumers import JsonTextConsumer

from .events import user_group


class NotificationConsumer(JsonTextConsumer):
    """``/ws/notifications/``: a signed-in user's notifications, pushed as they are created.

    Anonymous clients are accepted and then closed with 4401, so a browser can tell
    "sign in" apart from a network failure (a refused handshake shows only as 1006).
    """

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.refuse(close_codes.UNAUTHORIZED, "sign in, or connect with ?token=<token>")
            return
        await self.join_group(user_group(user.id))
        await self.accept()

    notification = JsonTextConsumer.forward_event
