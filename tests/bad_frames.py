"""Bad frames a client can send a chat socket, each with the error it must get back.

Shared by the unit tests (through the ASGI application) and the end-to-end tests (through
nginx and a real daphne), so both levels try exactly the same input.
"""

import json

BAD_FRAMES = {
    "not JSON": ("{not json", "invalid JSON"),
    "JSON list": ('["a", "list"]', "JSON object"),
    "JSON string": ('"just text"', "JSON object"),
    "JSON null": ("null", "JSON object"),
    "missing field": ('{"text": "wrong field"}', '"message" must be a string'),
    "field is a number": ('{"message": 5}', '"message" must be a string'),
    "field is null": ('{"message": null}', '"message" must be a string'),
    "field is an object": ('{"message": {"a": 1}}', '"message" must be a string'),
    "empty message": ('{"message": ""}', "empty"),
    "blank message": ('{"message": " \\n\\t"}', "empty"),
    "message over 4,000 characters": (json.dumps({"message": "x" * 4001}), "longer than 4000"),
    "NaN": ('{"message": NaN}', "NaN is not valid JSON"),
    "deeply nested": ("[" * 5000 + "]" * 5000, "nested too deeply"),
    "lone surrogate escape": ('{"message": "\\ud800"}', "lone UTF-16 surrogate"),
    # PostgreSQL refuses NUL in text (a 500, a 1011), and no client means to send these.
    "NUL character": ('{"message": "a\\u0000b"}', "control character U+0000"),
    "control character": ('{"message": "ring \\u0007"}', "control character U+0007"),
    "frame over the app limit": (json.dumps({"message": "x" * 50_000}), "message too large"),
    "binary frame": (b'{"message": "as bytes"}', "binary frames are not supported"),
}
