"""The wire format: JSON text frames, encoded and decoded one way everywhere (consumers,
group events built once by their sender, the SSE stream, the HTTP API)."""

import json


def encode(content):
    """JSON as sent on the wire: compact, UTF-8 kept as is."""
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def decode(text):
    """A client's JSON (str or UTF-8 bytes); ValueError for anything but strict JSON.

    Python's json accepts NaN and Infinity (which other parsers do not read back),
    raises RecursionError, not ValueError, on a few kilobytes of nested brackets, and
    turns a lone "\\ud800" escape into a string no database or UTF-8 encoder accepts.
    """
    if isinstance(text, bytes):
        text = text.decode()
    try:
        content = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if "\\ud" in text or "\\uD" in text:  # rare: only then look for a lone surrogate
        try:
            encode(content).encode()
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone UTF-16 surrogate") from None
    return content
