"""The base consumer every websocket endpoint builds on, and the echo endpoint."""

import asyncio
import logging
from contextlib import aclosing
from time import monotonic

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from redis.exceptions import RedisError

from . import catch_up, close_codes, fanout, layer, metrics, reauth, replay, request_id
from .limits import MessageRate, socket_caps
from .metrics import tally
from .scope import TICKET_SUBPROTOCOL, parse_message_id, query_param, ticket_offered
from .wire import decode, encode

logger = logging.getLogger(__name__)
# One line per socket that got an event pushed by an HTTP request (one carrying its
# request id), for the first DELIVERY_LINES sockets of each event in a process, then one
# line saying how to count the rest: a push to a user's few sockets is followed socket by
# socket, and a push to thousands does not write thousands of lines (in `make bench`,
# a line per socket of a 500-socket push doubled its delivery time). A logger of its own,
# so a site can turn the lines down.
delivery_logger = logging.getLogger("realtime.delivery")
DELIVERY_LINES = 20
_delivery_lines = {}  # (request id, event id) → lines written; forgotten past this many:
DELIVERIES_REMEMBERED = 1000

# What the channel layer raises when Redis cannot be reached, and the database when it
# restarts or cannot be reached: a client should come back later (close 1013).
UNAVAILABLE_ERRORS = (RedisError, DatabaseOperationalError, DatabaseInterfaceError)
# What daphne raises on a send to a socket whose client has gone meanwhile: nothing to
# tell anyone, the disconnect is on its way.
try:
    from autobahn.exception import Disconnected as CLIENT_GONE
except ImportError:  # another ASGI server: its own way, not an error to log here
    CLIENT_GONE = ()
# How often a socket behind a backed-up connection looks whether it has room again.
DRAIN_POLL_SECONDS = 0.05


class JsonTextConsumer(AsyncWebsocketConsumer):
    """JSON text frames in and out; anything else gets an ``{"error": ...}`` frame.

    Subclasses implement ``receive_json``. Group events built by an ``events`` module
    carry their client JSON already encoded (once, by the sender) in ``event["text"]``;
    a handler that only relays it is ``forward_event``.

    Every socket also gets, from this class: a per-socket message rate limit (close
    1008), a frame size limit, optional per-address and per-user caps (close 4429),
    re-authentication of signed-in sockets (close 4401, see ``realtime.reauth``), a clear
    close code instead of a traceback when something fails (1013 while Redis is down,
    1011 otherwise), one log line per disconnect, and its metrics (realtime.metrics:
    the handshake's outcome, open sockets by endpoint, closes by code, deliveries).
    """

    # Per-socket state: class defaults, so an attribute costs memory only once it is set.
    connected_at = None  # monotonic clock at the handshake, for the disconnect log
    accepted = False
    closing = False  # the server closed the socket: frames still in flight are ignored
    disconnected = False
    message_rate = None  # a MessageRate, created on the socket's first frame
    caps_held = ()  # socket_caps keys this socket counts against
    handshake_outcome = None  # counted once: "accepted", or why it was refused
    open_as = None  # the endpoint label it is counted under while open

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except Exception as error:  # noqa: BLE001 - turned into a close code, and logged
            await self.close_after_failure(error, send)
        finally:
            if self.open_as is not None:
                tally.open[self.open_as] -= 1
            reauth.watcher.forget(self)
            socket_caps.release(self.caps_held)
            # Shielded: daphne cancels a consumer that takes long to end (thousands closing
            # at once), and a release cut short would leave groups subscribed for good.
            await asyncio.shield(
                layer.release(self.channel_layer, getattr(self, "channel_name", None), self.groups)
            )

    async def dispatch(self, message):
        # Channels' own dispatch first hops to the sync thread to close stale database
        # connections, for every message: with a 2,000-member room that is 2,000 hops,
        # one at a time. Our consumers reach the ORM only through database_sync_to_async,
        # which already closes stale connections around each call, so skip the hop.
        try:
            handler = getattr(self, get_handler_name(message))
        except (AttributeError, ValueError):
            self.log_unhandled(message)
            return
        await handler(message)

    def log_unhandled(self, message):
        """A group event nobody handles: a sender/consumer mismatch, worth a log line,
        not worth killing the socket over (Channels would raise and drop it)."""
        groups = ",".join(self.groups) or "-"
        logger.warning(
            "unhandled event type=%r groups=%s consumer=%s path=%s",
            message.get("type"),
            groups,
            type(self).__name__,
            self.scope.get("path"),
            extra={"event_type": message.get("type"), "group": groups, **self.log_fields()},
        )

    def log_fields(self):
        """What names this socket in a log line (``extra=``, realtime.logs)."""
        user = self.scope.get("user")
        return {
            "socket": self.socket_id,
            "user": user.pk if user is not None and user.is_authenticated else None,
            "path": self.scope.get("path"),
        }

    @property
    def socket_id(self):
        """nginx's request id of the handshake: the same in nginx's access line for this
        socket (logged when it closes) as in daphne's lines. Without nginx in front, the
        socket's channel name."""
        return request_id.of_scope(self.scope) or getattr(self, "channel_name", None)

    # -- connection lifecycle -------------------------------------------------------------

    async def websocket_connect(self, message):
        self.connected_at = monotonic()
        held = socket_caps.acquire(self.scope)
        if held is None:
            await self.refuse(
                close_codes.TOO_MANY_CONNECTIONS,
                "too many open sockets from your address or account; close one first",
            )
            return
        if held:
            self.caps_held = held
        await super().websocket_connect(message)
        if self.handshake_outcome is None and self.accepted:
            self.count_handshake("accepted")

    def count_handshake(self, outcome):
        self.handshake_outcome = outcome
        metrics.handshake(outcome)

    async def accept(self, subprotocol=None, headers=None):
        if subprotocol is None and ticket_offered(self.scope) is not None:
            # A browser fails a handshake whose answer names none of the offered protocols.
            subprotocol = TICKET_SUBPROTOCOL
        await super().accept(subprotocol, headers)
        self.accepted = True
        self.open_as = metrics.endpoint_of(type(self))
        tally.open[self.open_as] += 1
        reauth.watcher.watch(self)

    async def join_group(self, group):
        """Receive the events sent to ``group`` until the socket disconnects."""
        # Listed first: a consumer cancelled while joining (its client gone, daphne
        # giving up on it) must still leave the group (see realtime.layer).
        self.groups.append(group)  # Channels' websocket_disconnect leaves self.groups
        await self.channel_layer.group_add(group, self.channel_name)

    async def close(self, code=None, reason=None):
        self.closing = True
        await super().close(code, reason)

    async def refuse(self, code, reason):
        """Say why, then close with ``code`` (accepting the handshake first if needed).

        A refused handshake reaches a browser as a bare 1006 with no reason, so the
        client could not tell "sign in" from "bad room" from a network failure. From here
        on nothing else is sent: no live event slips between the reason and the close.
        """
        if self.handshake_outcome is None:
            self.count_handshake(metrics.HANDSHAKE_OUTCOMES.get(code, "error"))
        self.closing = True
        if not self.accepted:
            await self.accept()
        await self.send_error(reason)
        await self.close(code=code)

    async def resume_point(self):
        """The client's ``?since=<id>`` (None without one), or False once a malformed one
        has been refused with 4400."""
        raw = query_param(self.scope, "since")
        try:
            return None if raw is None else parse_message_id(raw)
        except ValueError as error:
            await self.refuse(close_codes.BAD_REQUEST, str(error))
            return False

    async def websocket_disconnect(self, message):
        self.disconnected = True
        code = message.get("code")
        metrics.closed(code)
        fields = self.log_fields()
        duration = round(monotonic() - self.connected_at if self.connected_at else 0.0, 3)
        logger.info(
            "websocket closed code=%s path=%s user=%s socket=%s duration=%.3fs",
            code,
            fields["path"],
            fields["user"] or "-",
            fields["socket"],
            duration,
            extra={**fields, "code": code, "duration": duration},
        )
        await super().websocket_disconnect(message)

    async def close_after_failure(self, error, send):
        """Tell the client what it can do, keep the traceback in the server's log."""
        path = self.scope.get("path")
        if isinstance(error, CLIENT_GONE):
            logger.debug("client gone while sending path=%s", path)
            return
        if isinstance(error, UNAVAILABLE_ERRORS):
            logger.warning(
                "service unavailable path=%s error=%s: %s",
                path,
                type(error).__name__,
                error,
                extra=self.log_fields(),
            )
            code, reason = close_codes.TRY_AGAIN_LATER, "temporarily unavailable; reconnect later"
        else:
            logger.error(
                "websocket consumer failed path=%s", path, exc_info=error, extra=self.log_fields()
            )
            code, reason = close_codes.INTERNAL_ERROR, "internal server error"
        if self.closing or self.disconnected:
            return
        if not hasattr(self, "base_send"):  # failed before Channels set it up
            self.base_send = send
        try:
            await self.refuse(code, reason)
        except Exception:  # noqa: BLE001 - the client may be gone already
            logger.debug("could not close path=%s after a failure", path, exc_info=True)

    # -- frames from the client -----------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        if not self.within_rate_limit():
            await self.refuse(
                close_codes.POLICY_VIOLATION,
                f"too many messages: at most {settings.WEBSOCKET_RATE_LIMIT:g} a second",
            )
            return
        if text_data is None:
            await self.send_error("binary frames are not supported; send JSON text")
            return
        if len(text_data) > settings.WEBSOCKET_MAX_MESSAGE_LENGTH:
            await self.send_error(
                f"message too large: at most {settings.WEBSOCKET_MAX_MESSAGE_LENGTH} characters"
            )
            return
        try:
            content = decode(text_data)
        except ValueError as error:
            await self.send_error(f"invalid JSON: {error}")
            return
        await self.receive_json(content)

    def within_rate_limit(self):
        rate = settings.WEBSOCKET_RATE_LIMIT
        if not rate:
            return True
        burst = settings.WEBSOCKET_RATE_BURST
        if self.message_rate is None:
            self.message_rate = MessageRate(burst)
        return self.message_rate.allow(rate, burst)

    async def receive_json(self, content):
        await self.send_error("this socket does not accept messages")

    # -- frames to the client -------------------------------------------------------------

    async def send_json(self, content):
        await self.send(text_data=encode(content))

    async def send_error(self, reason):
        await self.send_json({"error": reason})

    async def forward_event(self, event):
        await self.send(text_data=event["text"])
        self.delivered(event)

    def delivered(self, event):
        """Counted, and followed into the logs if an HTTP request pushed it."""
        tally.deliveries += 1
        if "request_id" in event:
            self.log_delivery(event)

    def log_delivery(self, event):
        key = (event["request_id"], event.get("id"))
        written = _delivery_lines.get(key, 0)
        if written > DELIVERY_LINES:
            return
        if not written and len(_delivery_lines) >= DELIVERIES_REMEMBERED:
            _delivery_lines.clear()
        _delivery_lines[key] = written + 1
        if written == DELIVERY_LINES:
            delivery_logger.info(
                "delivered type=%s id=%s request_id=%s to more than %d sockets here: the "
                "others are counted in realtime_group_event_deliveries_total, not logged",
                event["type"],
                event.get("id"),
                event["request_id"],
                DELIVERY_LINES,
                extra={"request_id": event["request_id"], "event_id": event.get("id")},
            )
            return
        fields = {**self.log_fields(), "request_id": event["request_id"]}
        delivery_logger.info(
            "delivered type=%s id=%s socket=%s user=%s request_id=%s",
            event["type"],
            event.get("id"),
            fields["socket"],
            fields["user"] or "-",
            fields["request_id"],
            extra={
                **fields,
                "event_type": event["type"],
                "event_id": event.get("id"),
                "group": ",".join(self.groups),
            },
        )


class StoredEventConsumer(JsonTextConsumer):
    """A socket whose events are stored rows with increasing ids (chat messages,
    notifications), each stream published in id order (realtime.streams): the newest id
    it sent says what it has, so it can be sent what it missed.

    Rows read from the database (the backlog ``connect`` sends, a catch-up) go out through
    ``replay``, under realtime.replay's rules (page by page, bounded, taking turns). Live
    events go out only while the socket is *live*, in step with its stream. Until then
    (its backlog still going out, a catch-up after a Redis outage, its connection backed
    up) a live event is neither sent nor kept: the socket notes that it missed one and,
    before going live, reads its stream again after the newest id it sent. The database is
    the one buffer: nothing piles up per socket, and an event whose id is not newer than
    the last one sent is a copy, dropped. So each row arrives once, in order.

    Live events come one of two ways, the same rules for both: for the event types in
    ``fast_path_events``, the process's fan-out writes the frame straight to the
    connection when the server offers it (realtime.fanout, ``take_frame``); otherwise the
    consumer's handler calls ``relay_event``.

    Subclasses implement ``stored_stream()`` (the realtime.replay.StoredStream the socket
    follows); their ``connect`` joins the group, accepts and sends the backlog
    (``replay``); the socket goes live once it returns. After an outage of the channel
    layer's subscription, ``realtime.catch_up`` calls ``fall_behind`` and then ``catch_up``.
    """

    fast_path_events = frozenset()  # event types realtime.fanout may write for this socket
    last_sent_id = 0  # the newest id sent: a live event not newer than it is a copy
    live = False  # in step with the stream: live events go out as they come
    missed = False  # a live event went by while not live: read the stream again first
    catching_up = None  # the task bringing the socket back in step, while one runs
    frames = None  # the connection's frame writer, when on the fast path (realtime.fanout)
    handler_busy = False  # realtime.fanout handed the handlers an event not yet handled

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            catch_up.forget(self)
            fanout.leave(self)

    async def websocket_connect(self, message):
        # The consumer's own task brings the socket in step: the backlog, then what went
        # by meanwhile. Followed from the start: an outage meanwhile makes it read again.
        self.catching_up = asyncio.current_task()
        catch_up.follow(self)
        await super().websocket_connect(message)
        if self.accepted and not self.closing:
            await self.go_live()
        self.catching_up = None

    async def join_group(self, group):
        fanout.join(self)  # first: the group's events may come as soon as it is joined
        await super().join_group(group)

    async def dispatch(self, message):
        await super().dispatch(message)
        if (
            self.handler_busy
            and not message["type"].startswith("websocket.")
            and not layer.pending_events(self.channel_layer, self.channel_name)
        ):
            self.handler_busy = False  # every event handed to the handlers is handled

    async def replay(self, since):
        """Send the stored rows owed after id ``since`` (None: a fresh start); how many."""
        sent = 0
        async with aclosing(replay.pages(self.stored_stream(), since)) as pages:
            async for page in pages:
                if self.closing or self.disconnected:
                    break
                sent += await self.send_stored(page)
        return sent

    async def send_stored(self, payloads):
        """Send rows read from the database, but none already sent; after a reset frame
        the client starts over, with rows all newer than what it had. How many rows it sent."""
        sent = 0
        for payload in payloads:
            if payload["type"] != replay.RESET:
                if payload["id"] <= self.last_sent_id:
                    continue
                self.last_sent_id = payload["id"]
                sent += 1
            await self.send_json(payload)
        return sent

    async def relay_event(self, event):
        """A live event reaching the consumer's handler (the fast path's ``take_frame``)."""
        if not self.live or self.closing:
            self.missed = True
        elif event["id"] > self.last_sent_id:
            self.last_sent_id = event["id"]
            await self.forward_event(event)

    def take_frame(self, event, frame):
        """``relay_event`` on the fast path: a live event and its frame (realtime.fanout)."""
        if not self.live or self.closing:
            self.missed = True
        elif event["id"] > self.last_sent_id:
            if self.frames.send_frame(frame):
                self.last_sent_id = event["id"]
                self.delivered(event)
            else:  # backed up: what it misses waits in the database until it has room
                self.fall_behind()
                catch_up.start(self)

    def stored_stream(self):
        raise NotImplementedError

    async def go_live(self):
        """Read the stream again after the last id sent while a live event went by
        meanwhile; then in step, live. How many rows it sent."""
        sent = 0
        while self.missed and not (self.closing or self.disconnected):
            self.missed = False
            sent += await self.replay(self.last_sent_id)
        self.live = not (self.closing or self.disconnected)
        return sent

    def fall_behind(self):
        """Out of step with the stream (events lost with the layer's subscription, or not
        written to a backed-up connection): live events wait for ``catch_up``."""
        self.live, self.missed = False, True

    async def catch_up(self):
        """Once the connection has room, send what was missed, then go live again. If
        that fails (the database restarting), the socket is closed as any failure closes
        it (1013, 1011): out of step, it would miss events silently; the client resumes."""
        tally.catch_ups += 1
        try:
            while (
                self.frames is not None
                and self.frames.backed_up()
                and not (self.closing or self.disconnected)
            ):
                await asyncio.sleep(DRAIN_POLL_SECONDS)
            tally.catch_up_messages += await self.go_live()
        except Exception as error:  # noqa: BLE001 - turned into a close code, and logged
            await self.close_after_failure(error, self.base_send)


class EchoConsumer(JsonTextConsumer):
    """``/ws/echo/``: says hello, then answers each JSON message M with ``{"echo": M}``."""

    async def connect(self):
        await self.accept()
        await self.send_json({"hello": "world"})

    async def receive_json(self, content):
        await self.send_json({"echo": content})


class NotFoundConsumer(JsonTextConsumer):
    """Any other path under /ws/: a clear close code instead of a server-side traceback."""

    async def connect(self):
        await self.refuse(close_codes.NOT_FOUND, f"no websocket endpoint at {self.scope['path']}")
