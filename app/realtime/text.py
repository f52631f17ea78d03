"""Text fields from clients, checked the same way wherever they are stored."""

import re

# C0 and C1 control characters and DEL, except tab, line feed and carriage return. No
# client means to send them; terminals and log viewers act on them; and PostgreSQL refuses
# NUL in text, which would turn the write into a server error.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class InvalidText(ValueError):
    """A client's text that cannot be stored; str() is the reason sent back."""


def validate_text(value, field, max_length):
    """Return ``value`` if it is a string with something in it, at most ``max_length``
    characters, without control characters; raise InvalidText saying which it is not."""
    if not isinstance(value, str):
        raise InvalidText(f'"{field}" must be a string')
    if not value.strip():
        raise InvalidText(f'"{field}" is empty')
    if len(value) > max_length:
        raise InvalidText(f'"{field}" is longer than {max_length} characters')
    if control := CONTROL_CHARACTER.search(value):
        raise InvalidText(f'"{field}" contains a control character U+{ord(control[0]):04X}')
    return value
