"""Defences against what a black-box probe of the stack tried, each proven through nginx
against the real gunicorn, daphne and Redis. (Control characters are among bad_frames.py,
run by test_bad_input_through_nginx.py; production's limits in test_production_limits.py.)
"""

import json
import uuid
from hashlib import sha256

from e2e.conftest import receive_json, receive_until_quiet

# -- room groups ----------------------------------------------------------------------------


async def test_a_long_room_name_never_shares_a_group_with_another_room(stack):
    """Group names stay under 100 characters, so long room names are hashed; the 73-
    character room spelled like a long room's old shortened group used to get its messages."""
    long_room = f"long-{uuid.uuid4().hex}".ljust(100, "x")
    lookalike = f"{long_room[:40]}_{sha256(long_room.encode()).hexdigest()[:32]}"
    async with (
        stack.websocket(f"/ws/chat/{long_room}/") as long_member,
        stack.websocket(f"/ws/chat/{lookalike}/") as lookalike_member,
    ):
        for ws, room in ((long_member, long_room), (lookalike_member, lookalike)):
            await ws.send(json.dumps({"message": f"only in {room}"}))
            assert (await receive_json(ws))["room"] == room
        assert await receive_until_quiet(long_member, quiet=0.5) == []
        assert await receive_until_quiet(lookalike_member, quiet=0.5) == []
