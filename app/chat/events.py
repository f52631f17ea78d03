"""The one definition of a chat message event: what group_send carries and what clients get."""

import re
from hashlib import sha256

from realtime.consumers import encode

ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
EVENT_TYPE = "chat.message"  # handled by ChatConsumer.chat_message


# Rooms whose name starts with this work like any other but are left out of the page's
# room list: the smoke test chats in one, so checking a deployment leaves no room behind
# that users see.
UNLISTED_PREFIX = "_"


def is_valid_room_name(room):
    return ROOM_NAME.fullmatch(room) is not None


def room_group(room):
    """The channel-layer group of a room: one group per room, never shared.

    Group names must stay under 100 characters, so names too long for ``chat_<room>``
    become ``chat.<start of the room>.<SHA-256 of the room>``. Room names cannot contain
    ".", so a hashed group can never be spelled by another room's ``chat_<room>``, and the
    full digest keeps two long rooms apart.
    """
    group = f"chat_{room}"
    if len(group) < 100:
        return group
    return f"chat.{room[:25]}.{sha256(room.encode()).hexdigest()}"


def message_payload(message):
    """The JSON object every member of the room receives."""
    return {
        "type": EVENT_TYPE,
        "room": message.room,
        "id": message.id,
        "username": message.username,
        "message": message.message,
        "created": message.created.isoformat(),
    }


def chat_message_event(message):
    """The group event: the client JSON encoded once here, not once per member."""
    return {"type": EVENT_TYPE, "id": message.id, "text": encode(message_payload(message))}
