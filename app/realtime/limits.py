"""Per-socket message rate and optional per-process socket caps.

Both keep their state in plain attributes and dicts: no task, no timer, nothing on the
per-event (fan-out) path. Incoming client frames pay one clock read and a little
arithmetic.
"""

from collections import Counter
from time import monotonic

from django.conf import settings


class MessageRate:
    """A token bucket: up to ``burst`` frames at once, ``rate`` frames a second sustained.

    Created on a socket's first frame, so sockets that only listen cost nothing.
    """

    __slots__ = ("tokens", "updated")

    def __init__(self, burst):
        self.tokens = burst
        self.updated = monotonic()

    def allow(self, rate, burst):
        now = monotonic()
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SocketCaps:
    """Open sockets per client address and per user, in this process (off by default).

    The counts are per daphne process: with N processes behind nginx a client can hold
    up to N × the cap. That is enough to stop one client exhausting a process's file
    descriptors, without a Redis round trip on every connect and disconnect.
    """

    def __init__(self):
        self.counts = Counter()

    def keys(self, scope):
        """[(key, limit)] that apply to this connection under the current settings."""
        keys = []
        client = scope.get("client")
        if settings.WEBSOCKET_MAX_PER_IP and client:
            keys.append((("ip", client[0]), settings.WEBSOCKET_MAX_PER_IP))
        user = scope.get("user")
        if settings.WEBSOCKET_MAX_PER_USER and user is not None and user.is_authenticated:
            keys.append((("user", user.pk), settings.WEBSOCKET_MAX_PER_USER))
        return keys

    def acquire(self, scope):
        """The keys now held for this socket, or None if a cap is reached (nothing held)."""
        keys = self.keys(scope)
        if any(self.counts[key] >= limit for key, limit in keys):
            return None
        held = tuple(key for key, _ in keys)
        self.counts.update(held)
        return held

    def release(self, held):
        for key in held:
            self.counts[key] -= 1
            if self.counts[key] <= 0:
                del self.counts[key]


socket_caps = SocketCaps()
