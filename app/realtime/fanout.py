"""The fast path: a group event that goes to every member unchanged is framed once per
process and written to each local member's connection, instead of waking every member's
consumer to send it.

Without it, one message to a room of N members costs N consumer tasks woken, N handlers
run and N frames built and handed to the server one at a time: the cost is per member,
not per message. With it, the process that receives the group message from Redis decodes
it once, frames it once (realtime.layer hands it here), and writes the same frame to each
member's connection in one loop.

Three parties opt in, explicitly:

- the server offers, in each websocket's scope, a frame writer for its connection
  (``scope["extensions"][FRAMES]``: deploy/fast_path.py does under daphne, unless
  DAPHNE_FAST_PATH=off). Without one (another server, WebsocketCommunicator in the unit
  tests) every event goes through the consumer, as before;
- the channel layer hands group messages here (realtime.layer.PubSubChannelLayer; the
  core layer does not: its sockets take the consumer's path);
- the consumer (a realtime.consumers.StoredEventConsumer) lists, per event type, what the
  fast path may write for it: ``fast_path_events``. Every other type reaches its handlers.

The writer's interface: ``prepare_frame(text)`` (once per event), ``send_frame(frame)``
(False when the connection is backed up: nothing was written) and ``backed_up()``.

What a socket is promised is the consumer's path's promise (StoredEventConsumer):

- order: a frame is written only to a socket in step with its stream (not while its
  backlog or a catch-up is being sent: it reads the database again instead), never ahead
  of an event still waiting for its consumer's handler, and never after the server began
  closing it (the re-authentication's 4401, errors);
- each once: an id not newer than the last one sent is a copy, dropped;
- backpressure: a connection backed up past the server's limit gets nothing more written;
  the socket falls behind, and once the connection has room it reads what it missed from
  the database (bounded, realtime.replay). Other members are never held up, and nothing
  piles up in memory for a slow one.
"""

FRAMES = "realtime.frames"  # the scope extension holding a connection's frame writer

_members = {}  # channel name → consumer, for every socket of this process on the fast path


def join(consumer):
    """Put ``consumer`` on the fast path if its server, its layer and its class allow."""
    if not consumer.fast_path_events or not getattr(consumer.channel_layer, "fans_out", False):
        return
    writer = consumer.scope.get("extensions", {}).get(FRAMES)
    if writer is not None:
        consumer.frames = writer
        _members[consumer.channel_name] = consumer


def leave(consumer):
    if consumer.frames is not None:
        _members.pop(getattr(consumer, "channel_name", None), None)


def in_use():
    """Whether any socket of this process is on the fast path."""
    return bool(_members)


def deliver(channels, data, decode, queues):
    """One group message (``data``, encoded; ``decode`` decodes it) for this process's
    members of the group (``channels``, channel names): one frame written for each
    member on the fast path for the event's type; queued for the consumer of every other
    member (``queues``: channel name → queue), as the layer itself does.

    A member that was handed an event for its consumer takes the following ones the same
    way until its consumer has handled them all (``handler_busy``, cleared by the
    consumer), so that no frame overtakes an event still waiting for a handler.
    """
    try:
        event = decode(data)
    except Exception:  # noqa: BLE001 - each consumer's receive raises it, as without this
        event = {}
    event_type, event_id, text = event.get("type"), event.get("id"), event.get("text")
    framed = isinstance(event_id, int) and isinstance(text, str)
    frame = None
    for channel in channels:
        consumer = _members.get(channel)
        if (
            consumer is not None
            and framed
            and event_type in consumer.fast_path_events
            and not consumer.handler_busy
        ):
            if frame is None:
                frame = consumer.frames.prepare_frame(text)
            consumer.take_frame(event, frame)
            continue
        queue = queues.get(channel)
        if queue is not None:
            if consumer is not None:
                consumer.handler_busy = True
            queue.put_nowait(data)
