"""Replaying stored events to a client that resumes (``?since=``, ``Last-Event-ID``, the
catch-up after a Redis outage), under three rules:

- Page by page: PAGE_SIZE rows per database call, each page sent before the next is read.
  The database thread is never held for a whole room, a replay holds one page in memory,
  and each send waits while the client's connection is backed up (deploy/run_daphne.py),
  so a slow client slows its own replay only.
- Bounded: at most ``limit`` rows per resume. A client further behind gets
  ``{"type": "resume.reset", ...}`` and then the stream's latest rows, as on a first
  visit: it must drop what it shows and start over (Centrifugo's "recovered: false",
  AnyCable's "history lost").
- Taking turns: at most REPLAYS_PER_PROCESS replays run at once in a process; the others
  wait for a slot, so a few clients resuming cannot starve everyone else of the database.
"""

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet

from .db import database_sync_to_async

PAGE_SIZE = 200
REPLAYS_PER_PROCESS = 4
RESET = "resume.reset"


@dataclass(frozen=True)
class StoredStream:
    """The stored rows one client follows (a room's messages, a user's notifications)."""

    rows: QuerySet  # every row of the stream, in any order
    payload: Callable  # row → the client's JSON object, with the row's "id"
    limit: int  # the most rows one resume replays
    latest: int  # how many of the newest rows a fresh start gets


def reset_frame(limit):
    return {
        "type": RESET,
        "limit": limit,
        "reason": f"more than {limit} were missed: what follows is the latest, start over",
    }


def too_far_behind(stream, since):
    """More than ``stream.limit`` rows after ``since`` (an index range scan of limit rows)."""
    return stream.rows.filter(pk__gt=since).order_by("pk")[stream.limit :][:1].exists()


def page_after(stream, since, count):
    rows = stream.rows.filter(pk__gt=since).order_by("pk")[:count]
    return [stream.payload(row) for row in rows]


def latest(stream):
    rows = stream.rows.order_by("-pk")[: stream.latest]
    return [stream.payload(row) for row in reversed(rows)]


_slots = weakref.WeakKeyDictionary()  # event loop → its semaphore (tests run many loops)


def slots():
    """This process's replay slots (one semaphore per event loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = asyncio.Semaphore(REPLAYS_PER_PROCESS)
    return _slots[loop]


async def pages(stream, since):
    """Lists of client payloads to send, oldest first, holding a replay slot throughout:
    the latest rows for a fresh start (``since`` None); every row after ``since``; or,
    with more than ``stream.limit`` of them, the reset frame and then the latest rows.

    Close it (``contextlib.aclosing``) if it is left early, so that the slot is freed.
    """
    async with slots():
        if since is None or await database_sync_to_async(too_far_behind)(stream, since):
            start_over = [] if since is None else [reset_frame(stream.limit)]
            yield start_over + await database_sync_to_async(latest)(stream)
            return
        remaining = stream.limit
        while remaining:
            count = min(PAGE_SIZE, remaining)
            page = await database_sync_to_async(page_after)(stream, since, count)
            if page:
                yield page
            if len(page) < count:
                return
            since, remaining = page[-1]["id"], remaining - count
