"""What each process tells Prometheus: every metric of both tiers, defined here once.

Two kinds, for two costs:

- The fan-out path (a frame to each of thousands of members) counts into ``tally``: plain
  integer attributes, one addition per event, no lock, no label lookup, no allocation.
  ``TallyCollector`` turns them into counters when Prometheus scrapes. They are only ever
  touched on daphne's event loop, so the additions cannot race. A sender that writes one
  frame to many sockets adds the count once (``tally.frames_sent += n``).
- Everything rarer (a handshake, a close, an HTTP request, a push) uses prometheus_client's
  own metrics, which gunicorn's workers keep in PROMETHEUS_MULTIPROC_DIR (see
  deploy/gunicorn.conf.py) so one endpoint reports them all.

Labels stay few and bounded: close codes outside the known ones count as "other" (a
client may close with any of 2,000 codes), groups are counted by kind (``chat``,
``user``), never by name, and HTTP requests by their URL pattern's name.
"""

import asyncio
import json
import re
from collections import Counter as Tallies
from functools import cache
from time import monotonic

from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import close_codes

# Counters' *_created series (when each began) double what a scrape carries for nothing
# an operator of this stack asks.
disable_created_metrics()

# -- the websocket tier (daphne) -----------------------------------------------------------

# How a handshake ended: accepted, or why not (the close code a consumer refused with).
HANDSHAKE_OUTCOMES = {
    close_codes.UNAUTHORIZED: "auth",
    close_codes.BAD_REQUEST: "bad_request",
    close_codes.TOO_MANY_CONNECTIONS: "rate_cap",
    close_codes.TRY_AGAIN_LATER: "unavailable",  # Redis or the database down
    close_codes.NOT_FOUND: "not_found",
    close_codes.INTERNAL_ERROR: "error",
}
handshakes = Counter(
    "realtime_websocket_handshakes",
    "Websocket handshakes by outcome: accepted, or refused (origin, auth, bad_request, "
    "rate_cap, unavailable, not_found, error).",
    ["outcome"],
)
# Standard close codes (RFC 6455) and the kit's own; a client's others are "other".
KNOWN_CLOSE_CODES = {str(code) for code in range(1000, 1016)} | {
    str(code) for code in HANDSHAKE_OUTCOMES if code >= 4000
}
closes = Counter(
    "realtime_websocket_closes",
    "Websockets closed, by close code (1006: dropped without a close frame).",
    ["code"],
)
EVENT_LOOP_LAG = {
    "name": "realtime_event_loop_lag_seconds",
    "documentation": "How late daphne's event loop ran a callback scheduled every "
    "EVENT_LOOP_PROBE_SECONDS: the wait every socket of the process shares.",
    "buckets": (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
}  # made by watch_event_loop_lag, in daphne only: gunicorn's workers have no loop to watch


class Tally:
    """The fan-out path's counts: attributes, added to in place (see the module's doc)."""

    __slots__ = (
        "frames_received", "bytes_received", "frames_sent", "bytes_sent",
        "layer_events", "deliveries", "catch_ups", "catch_up_messages",
        "send_buffer_waits", "layer_reconnects", "open",
    )  # fmt: skip

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)
        self.open = Tallies()  # endpoint → open sockets


tally = Tally()

# (name, help, Tally attribute) of each counter the tally holds.
TALLY_COUNTERS = [
    ("realtime_websocket_frames_received", "Frames received from clients.", "frames_received"),
    ("realtime_websocket_received_bytes", "Payload bytes received from clients.",
     "bytes_received"),
    ("realtime_websocket_frames_sent", "Frames sent to clients.", "frames_sent"),
    ("realtime_websocket_sent_bytes", "Payload bytes sent to clients.", "bytes_sent"),
    ("realtime_group_events_received", "Group events this process received from the channel "
     "layer (one per event, however many of its sockets are members).", "layer_events"),
    ("realtime_group_event_deliveries", "Group events handed to member sockets (one per "
     "member).", "deliveries"),
    ("realtime_catch_ups", "Sockets caught up from the database: after the layer's "
     "subscription came back, or once a backed-up connection had room.", "catch_ups"),
    ("realtime_catch_up_messages", "Stored messages those catch-ups sent.", "catch_up_messages"),
    ("realtime_send_buffer_waits", "Sends that waited for a slow client's buffer to drain "
     "(nothing is dropped: the sender waits).", "send_buffer_waits"),
    ("realtime_layer_reconnects", "Channel-layer subscriptions re-established after a lost "
     "Redis connection.", "layer_reconnects"),
]  # fmt: skip


class TallyCollector:
    """Reads ``tally`` when Prometheus scrapes."""

    def collect(self):
        for name, documentation, attribute in TALLY_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=getattr(tally, attribute))
        sockets = GaugeMetricFamily(
            "realtime_websockets_open", "Open websockets, by endpoint.", labels=["endpoint"]
        )
        for endpoint, count in sorted(tally.open.items()):
            sockets.add_metric([endpoint], count)
        yield sockets


REGISTRY.register(TallyCollector())


def handshake(outcome):
    handshakes.labels(outcome).inc()


def closed(code):
    code = str(code)
    closes.labels(code if code in KNOWN_CLOSE_CODES else "other").inc()


def expect_endpoints(websocket_urlpatterns):
    """Report 0 open sockets for every endpoint of the routes until one opens (a daphne
    with none would otherwise be missing from a sum by instance, not at zero)."""
    for pattern in websocket_urlpatterns:
        if (consumer := getattr(pattern.callback, "consumer_class", None)) is not None:
            tally.open.setdefault(endpoint_of(consumer), 0)


@cache
def endpoint_of(consumer_class):
    """A consumer's ``endpoint`` label: ChatConsumer → "chat"."""
    name = consumer_class.__name__.removesuffix("Consumer")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() or "websocket"


# -- pushes (wherever they are sent: gunicorn's views, daphne's chat) ----------------------

pushes = Counter(
    "realtime_pushes",
    "Group events published to the channel layer, by group kind and outcome (ok, failed).",
    ["kind", "outcome"],
)
push_seconds = Histogram(
    "realtime_push_duration_seconds",
    "From the transaction's commit to group_send done (Redis has the event), by group kind.",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
GROUP_KIND = re.compile(r"[A-Za-z0-9]+")


def group_kind(group):
    """``chat_lobby`` → ``chat``, ``user_7`` → ``user``: what a group is, not which one."""
    match = GROUP_KIND.match(group)
    return match[0] if match else "other"


# -- the HTTP tier (gunicorn; daphne for the event stream) ---------------------------------

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
requests = Counter(
    "realtime_http_requests",
    "HTTP requests by view (its URL pattern's name), method and status.",
    ["view", "method", "status"],
)
request_seconds = Histogram(
    "realtime_http_request_duration_seconds",
    "Time to the response (its start, for a stream), by view.",
    ["view"],
    buckets=LATENCY_BUCKETS,
)
check_seconds = Histogram(
    "realtime_health_check_duration_seconds",
    "How long /healthz's check of each dependency took (database, redis).",
    ["check"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
check_failures = Counter(
    "realtime_health_check_failures",
    "Failed /healthz checks, by dependency.",
    ["check"],
)


# -- event-loop lag ------------------------------------------------------------------------

EVENT_LOOP_PROBE_SECONDS = 0.5


def watch_event_loop_lag(loop=None, interval=EVENT_LOOP_PROBE_SECONDS):
    """Schedule a callback every ``interval`` seconds on ``loop`` and record how late it
    ran: a timer, no task, nothing else for the loop to do."""
    loop = loop or asyncio.get_running_loop()
    lag = Histogram(**EVENT_LOOP_LAG)

    def probe(due):
        lag.observe(max(0.0, monotonic() - due))
        loop.call_later(interval, probe, monotonic() + interval)

    loop.call_later(interval, probe, monotonic() + interval)


# -- counts that outlive a graceful restart ------------------------------------------------

# A daphne's counters die with it, and the closes of its own stop (1012 to every socket)
# happen in its last second, between two scrapes: no Prometheus would ever see them. So a
# daphne that stops gracefully writes its counts down, and the next instance of the same
# name starts from them: its counters carry on instead of resetting (a kill loses them,
# as it loses the sockets' close codes, which its clients see as 1006).
CARRIED_COUNTERS = [handshakes, closes, pushes, requests]


def save_counts(path):
    """Write this process's counters to ``path`` (JSON)."""
    counters = {}
    for counter in CARRIED_COUNTERS:
        for family in counter.collect():
            counters[family.name] = [
                [sample.labels, sample.value]
                for sample in family.samples
                if sample.name.endswith("_total")
            ]
    saved = {
        "counters": counters,
        "tally": {attribute: getattr(tally, attribute) for _, _, attribute in TALLY_COUNTERS},
    }
    path.write_text(json.dumps(saved))


def restore_counts(path):
    """Start from the counts a previous instance saved at ``path``, then remove it."""
    try:
        saved = json.loads(path.read_text())
        path.unlink()
    except (OSError, ValueError):
        return False
    by_name = {family.name: counter for counter in CARRIED_COUNTERS for family in counter.collect()}
    for name, samples in saved.get("counters", {}).items():
        if (counter := by_name.get(name)) is not None:
            for labels, value in samples:
                counter.labels(**labels).inc(value)
    for attribute, value in saved.get("tally", {}).items():
        if attribute in Tally.__slots__ and attribute != "open":
            setattr(tally, attribute, getattr(tally, attribute) + value)
    return True
