"""What the chat consumer does with the database, as plain synchronous functions."""

from django.conf import settings

from realtime.replay import StoredStream
from realtime.streams import in_order
from realtime.text import InvalidText, validate_text
from realtime.throttle import Rate, posting_wait, too_many_posts, wait_seconds

from .events import message_payload, room_group
from .models import ChatMessage

# The most messages one resume replays (?since=, a catch-up); a client further behind
# starts over with the latest ones (realtime.replay).
RESUME_LIMIT = 1000


def validate_chat_message(content):
    """Return the text to post from a client frame ``{"message": "..."}``; InvalidText
    says what is wrong with it."""
    if not isinstance(content, dict):
        raise InvalidText('expected a JSON object like {"message": "..."}')
    return validate_text(content.get("message"), "message", settings.CHAT_MESSAGE_MAX_LENGTH)


def post_within_limits(room, user, text, poster):
    """Store a message unless a limit refuses it: the refusal, or None. ``poster`` is who
    the limits count (realtime.throttle.client_of).

    Refused over the posting rate, or over CHAT_ROOMS_PER_HOUR if this message would create
    the room (a room exists once it has a message). The new-room check and the insert hold
    the room's lock together: concurrent first posts (one user's sockets, on several
    daphnes or database threads) would otherwise each see an empty room and each count as
    a new one.
    """
    if wait := posting_wait(poster):
        return too_many_posts(wait)
    with in_order(room_group(room)):
        if refusal := new_room_refusal(room, poster):
            return refusal
        store_message(room, user, text)
    return None


def new_room_refusal(room, poster):
    """Why ``poster`` may not create ``room`` now (None: it exists, or they may)."""
    if ChatMessage.objects.filter(room=room).exists():
        return None
    rooms = Rate.per_hour(settings.CHAT_ROOMS_PER_HOUR)
    if wait := wait_seconds("room", poster, rooms):
        return (
            f"too many new rooms: at most {settings.CHAT_ROOMS_PER_HOUR} an hour; "
            f"post in an existing room, or try again in {wait / 60:.0f} min"
        )
    return None


def display_name(user):
    return user.get_username() if user.is_authenticated else "anon"


def post_message(room, user, text):
    """Store a message; chat.signals broadcasts it to the room once committed, in the
    order of its id (realtime.streams)."""
    with in_order(room_group(room)):
        return store_message(room, user, text)


def store_message(room, user, text):
    """The insert of post_message, for callers that hold the room's lock already."""
    return ChatMessage.objects.create(
        room=room,
        user=user if user.is_authenticated else None,
        username=display_name(user),
        message=text,
    )


def room_stream(room):
    """The room's messages as a client follows them: its last CHAT_HISTORY_LENGTH on a
    first visit, and up to RESUME_LIMIT of them replayed on a resume."""
    return StoredStream(
        rows=ChatMessage.objects.filter(room=room),
        payload=message_payload,
        limit=RESUME_LIMIT,
        latest=settings.CHAT_HISTORY_LENGTH,
    )
