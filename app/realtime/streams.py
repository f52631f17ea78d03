"""Appending to a stored stream so that clients can resume after the newest id they saw.

A client resumes with ``?since=<newest id seen>`` (realtime.replay). That is only safe if,
within one stream (a room, a user's feed), ids are committed and published in the order
they were given out. Without care they are not: two processes insert rows 41 and 42 of one
room, 42 commits and reaches its members first, a member drops before 41 arrives and
resumes after 42, and 41 is never shown. The load rig saw such inversions under
concurrent writers (tests/load): HTTP pushes from several gunicorn workers, chat posts
during a rolling restart.

So writers append through ``in_order(stream)``: id, commit and publish (the post_save
receiver's on_commit broadcast runs when the atomic block ends) happen while holding a
lock on that stream, across processes and hosts. On PostgreSQL it is an advisory lock
keyed by the stream's name (held for a millisecond or two; other streams are not held
up). SQLite allows one writer at a time anyway, and lives on one host: a file lock beside
its sockets orders the publishes too.
"""

import contextlib
import fcntl
import zlib

from django.conf import settings
from django.db import connection, transaction


@contextlib.contextmanager
def in_order(stream):
    """Run the body (which stores one row of ``stream``) in a transaction, under the
    stream's lock; the row's broadcast, on commit, happens under it too."""
    with _lock(stream), transaction.atomic():
        yield


@contextlib.contextmanager
def _lock(stream):
    if connection.vendor == "postgresql":
        key = zlib.crc32(f"{settings.PROJECT_NAME}:{stream}".encode())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    else:
        settings.RUN_DIR.mkdir(parents=True, exist_ok=True)
        with open(settings.RUN_DIR / "streams.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
