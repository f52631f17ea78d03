"""The request id nginx gives every request (``$request_id``, sent as ``X-Request-ID`` by the
shared routing snippet), followed through the stack.

realtime.http_observability holds it for the length of the request, the log filter puts it on every
line logged meanwhile, realtime.broadcast puts it in the group events the request pushes,
and the consumers that deliver such an event log it with the socket that got it.
"""

import re
from contextvars import ContextVar

HEADER = "X-Request-ID"
# nginx's are 32 hex digits; whatever reaches gunicorn or daphne directly is not trusted
# further than this shape (it lands in logs).
VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")

current = ContextVar("request_id", default=None)


def valid(value):
    """``value`` if it has the shape of a request id, else None."""
    return value if value and VALID.fullmatch(value) else None


def of_request(request):
    """The request id of a Django request, or None."""
    return valid(request.headers.get(HEADER))


def of_scope(scope):
    """The request id of an ASGI scope (a websocket handshake), or None."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return valid(value.decode("latin-1"))
    return None


class RequestIdFilter:
    """Adds ``request_id`` to every log record made while a request is handled."""

    def filter(self, record):
        if getattr(record, "request_id", None) is None:
            record.request_id = current.get()
        return True
