from django.conf import settings

from realtime import close_codes
from realtime.consumers import StoredEventConsumer
from realtime.db import database_sync_to_async
from realtime.scope import client_address
from realtime.text import InvalidText
from realtime.throttle import client_of

from .events import EVENT_TYPE, is_valid_room_name, room_group
from .services import post_within_limits, room_stream, validate_chat_message


class ChatConsumer(StoredEventConsumer):
    """``/ws/chat/<room>/``: post ``{"message": "..."}``, receive every message of the room.

    On connect the client first gets the room's last 50 messages, or with
    ``?since=<id>`` every message after that id (a reconnecting client's resume; past
    1,000 of them, a reset and the last 50: see realtime.replay).
    """

    # Every member gets the same frame: written once per process (realtime.fanout).
    fast_path_events = frozenset({EVENT_TYPE})

    async def connect(self):
        room = self.scope["url_route"]["kwargs"]["room"]
        if not is_valid_room_name(room):
            await self.refuse(
                close_codes.BAD_REQUEST, "invalid room name: 1 to 100 letters, digits, '_' or '-'"
            )
            return
        if settings.CHAT_REQUIRE_LOGIN and not self.scope["user"].is_authenticated:
            await self.refuse(close_codes.UNAUTHORIZED, "sign in to chat")
            return
        since = await self.resume_point()
        if since is False:
            return
        self.room = room
        # Join before reading the backlog: a message committed in between is then in
        # both the backlog and the live stream (sent once, see chat_message), never in neither.
        await self.join_group(room_group(room))
        await self.accept()
        await self.replay(since)

    def stored_stream(self):
        return room_stream(self.room)

    async def receive_json(self, content):
        try:
            text = validate_chat_message(content)
        except InvalidText as error:
            await self.send_error(str(error))
            return
        refusal = await database_sync_to_async(self.post)(text)
        if refusal is not None:
            await self.send_error(refusal)

    def post(self, text):
        """Store a message, or say which limit refuses it (synchronous: database thread)."""
        user = self.scope["user"]
        poster = client_of(user, client_address(self.scope))
        return post_within_limits(self.room, user, text, poster)

    async def chat_message(self, event):  # without the fast path
        await self.relay_event(event)
