"""Rate limits every process shares: counted in the layer's Redis, so a client gains
nothing by opening more sockets, reconnecting, or landing on another daphne or gunicorn
worker.

A limit is a bucket per client (a user, an address, a user name): ``burst`` at once,
refilled at ``per_second``. It is kept as one timestamp per key (GCRA, the generic cell
rate algorithm), updated by one Lua script on Redis's own clock: atomic across processes
and hosts, one round trip per check, and the key expires once the bucket is full again.

When Redis cannot be reached, limits are not applied for a moment (and a warning is
logged): posting and signing in keep working through an outage, as stored chat messages
and notifications do.
"""

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from .redis_store import client_for, key

logger = logging.getLogger(__name__)

# After a failed check, the next ones skip Redis this long: an outage costs each request
# nothing instead of a connection attempt.
PAUSE_AFTER_FAILURE_SECONDS = 1.0

# KEYS[1]: the bucket. ARGV: interval between tokens (µs), burst, take (1) or only look (0).
# Returns the microseconds to wait before one more would be allowed (0: allowed now).
GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local arrival = tonumber(redis.call('GET', KEYS[1]) or now)
if arrival < now then arrival = now end
local next_arrival = arrival + interval
local wait = next_arrival - now - burst * interval
if wait > 0 then return wait end
if ARGV[3] == '1' then
    local expire_ms = string.format('%d', math.ceil((next_arrival - now) / 1000))
    redis.call('SET', KEYS[1], string.format('%d', next_arrival), 'PX', expire_ms)
end
return 0
"""


@dataclass(frozen=True)
class Rate:
    """``burst`` at once, then ``per_second`` sustained; 0 for either turns it off."""

    per_second: float
    burst: int

    @classmethod
    def per_hour(cls, count):
        return cls(count / 3600, count)

    @classmethod
    def per_period(cls, count, seconds):
        return cls(count / seconds if seconds else 0, count)

    @property
    def enabled(self):
        return self.per_second > 0 and self.burst > 0


_paused_until = 0.0


def wait_seconds(bucket, client, rate, take=True):
    """Seconds before ``client`` may do one more ``bucket`` thing at ``rate`` (0: now).

    With ``take``, an allowed one is counted; without, it is only looked at (sign-in
    throttling looks first and counts only failures).
    """
    global _paused_until
    if not rate.enabled or time.monotonic() < _paused_until:
        return 0.0
    digest = hashlib.sha256(str(client).encode()).hexdigest()[:32]
    bucket_key = key("rate", bucket, digest)
    interval = round(1_000_000 / rate.per_second)
    try:
        waited = client_for(bucket_key).eval(GCRA, 1, bucket_key, interval, rate.burst, int(take))
    except RedisError as error:
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        logger.warning("rate limits not applied: Redis unavailable (%s)", type(error).__name__)
        return 0.0
    return waited / 1_000_000


def posting_wait(client):
    """Seconds before ``client`` may post again (0: now, and counted). Chat messages and
    notifications draw on one budget: POST_RATE_BURST at once, POST_RATE_LIMIT a second."""
    return wait_seconds("post", client, Rate(settings.POST_RATE_LIMIT, settings.POST_RATE_BURST))


def too_many_posts(wait):
    return (
        f"too many messages: at most {settings.POST_RATE_BURST} at once, then "
        f"{settings.POST_RATE_LIMIT:g} a second; try again in {wait:.1f} s"
    )


def client_of(user, address):
    """Who a limit counts: the signed-in user, else the client's address."""
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"address:{address}"


def request_address(request):
    """The client's address of a request through nginx, which overwrites X-Forwarded-For
    with it (deploy/nginx/snippets/app-locations.conf); REMOTE_ADDR otherwise."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.rpartition(",")[2].strip() or request.META.get("REMOTE_ADDR", "")
