"""``GET /sse/notifications/``: the notification stream as Server-Sent Events.

The fallback for browsers whose websockets cannot get through (a proxy that strips
``Upgrade``, a policy that blocks them): one-way push is all the bell needs, and SSE is
plain HTTP. It is an async view served by daphne (nginx routes ``/sse/`` there, unbuffered),
because each open stream waits on the channel layer; in a gunicorn sync worker it would
hold the whole worker.

The stream joins the same ``user_<id>`` group as ``/ws/notifications/``, so
``notifications.signals`` reaches both without knowing which one a browser uses.
"""

import asyncio
import time
from contextlib import aclosing

from channels.layers import get_channel_layer
from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from realtime.db import database_sync_to_async
from realtime.replay import RESET, pages
from realtime.scope import parse_message_id
from realtime.wire import encode

from .events import user_group
from .services import latest_notification_id, user_stream

# A comment line this often keeps proxies from timing out a quiet stream.
KEEPALIVE_SECONDS = 15
# How long the browser waits before reconnecting a stream that ended (EventSource's `retry`).
RETRY_MILLISECONDS = 1000


def sse_event(notification_id, text):
    """One notification (its client JSON, one line) as an SSE message; the id is what
    the browser resumes after."""
    return f"id: {notification_id}\nevent: notification\ndata: {text}\n\n"


def resume_point(request):
    """The last notification id the client has: EventSource's Last-Event-ID header on a
    reconnect, else ``?since=`` (the page's newest rendered notification), else None."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("since")
    return None if raw is None else parse_message_id(raw)


@require_GET
async def notification_stream(request):
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"error": "sign in to receive notifications"}, status=401)
    try:
        since = resume_point(request)
    except ValueError as error:
        return JsonResponse({"error": str(error)}, status=400)
    response = StreamingHttpResponse(
        stream_events(user.pk, since), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: never buffer this response
    return response


async def stream_events(user_id, since):
    """Backlog after ``since``, then live events, until the stream's lifetime ends.

    Streams end after WEBSOCKET_REAUTH_INTERVAL: the browser reconnects at once with
    Last-Event-ID, which re-checks the session (a signed-out user gets 401 and EventSource
    stops) and resumes without a gap, the way signed-in websockets are re-checked.
    """
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = user_group(user_id)
    # Join before reading the backlog: a notification created in between arrives twice
    # (skipped below by id), never not at all.
    await layer.group_add(group, channel)
    # One receive in flight for the whole stream: cancelling a receive makes the
    # pub/sub layer unsubscribe the channel, which would drop events.
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        if since is None:
            since = await database_sync_to_async(latest_notification_id)(user_id)
            yield f"id: {since}\n\n"  # sets Last-Event-ID for the first reconnect
        else:  # what was missed, under the sockets' rules (realtime.replay)
            async with aclosing(pages(user_stream(user_id), since)) as backlog:
                async for page in backlog:
                    for payload in page:
                        if payload["type"] == RESET:
                            yield f"event: {RESET}\ndata: {encode(payload)}\n\n"
                        else:
                            since = payload["id"]
                            yield sse_event(since, encode(payload))
        deadline = time.monotonic() + settings.WEBSOCKET_REAUTH_INTERVAL
        while (left := deadline - time.monotonic()) > 0:
            done, _ = await asyncio.wait({receiving}, timeout=min(left, KEEPALIVE_SECONDS))
            if not done:
                yield ": keep-alive\n\n"
                continue
            event = receiving.result()
            receiving = asyncio.ensure_future(layer.receive(channel))
            if event["id"] > since:
                since = event["id"]
                yield sse_event(since, event["text"])
    finally:
        receiving.cancel()
        await layer.group_discard(group, channel)
