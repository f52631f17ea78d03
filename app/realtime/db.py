"""Database calls from async code (consumers, middleware): side by side, not one by one.

channels' ``database_sync_to_async`` runs every call of a process on one thread (asgiref's
thread-sensitive mode), so a daphne makes one query at a time. Under a reconnect wave
(thousands of handshakes, each authenticating and replaying from the database) the
handshakes queued behind each other's round trips until clients gave up on them
(tests/load, a daphne killed under 5,000 sockets). The calls made through this module are
self-contained: each is its own transaction (stream appends take their lock inside it,
realtime.streams) and, as in channels, closes stale connections before and after. So they
run on a small pool, each thread with its own connection. A check that must hold until
its write (a room's first message counts as a new room) takes the stream's lock around
both (chat.services.post_within_limits): two threads no longer see the same empty room.

SQLite allows one writer at a time: there the threads would only queue on its lock (or,
with the in-memory test database, fail on it), so it keeps channels' one thread.

Which database it is comes from the backend's class, not from ``connections["default"]``:
from async code, that creates a connection object (a DatabaseWrapper, with its query log)
for the calling task's context, that is one per socket, held for the socket's life: 2.5 KiB
each (docs/benchmarks/memory-census.md).
"""

from concurrent.futures import ThreadPoolExecutor

from channels.db import DatabaseSyncToAsync
from django.db import connections
from django.db.utils import load_backend

# Per daphne process, each holding a database connection while CONN_MAX_AGE allows.
DATABASE_THREADS = 4

_pool = ThreadPoolExecutor(max_workers=DATABASE_THREADS, thread_name_prefix="database")


def database_sync_to_async(func):
    """channels.db.database_sync_to_async, on the pool unless the database is SQLite."""
    if vendor() == "sqlite":
        return DatabaseSyncToAsync(func)
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=_pool)


def vendor():
    """The default database's vendor ("sqlite", "postgresql"...), without a connection."""
    return load_backend(connections.settings["default"]["ENGINE"]).DatabaseWrapper.vendor
