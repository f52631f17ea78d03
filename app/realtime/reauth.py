"""Closing signed-in sockets whose credentials ended (close code 4401).

A websocket is authenticated once, at the handshake; without this, a socket opened
before a logout, a password change, a session expiry, or a token revocation or expiry
would keep receiving that user's events for as long as it stays open.

One sweeper task per process wakes every WEBSOCKET_REAUTH_INTERVAL seconds and checks
every signed-in socket of the process in a few batched queries; a socket costs one dict
entry, no task and no timer of its own. Anonymous sockets are not watched: there is
nothing to revoke. A credential that ends is noticed within one interval plus one sweep.
"""

import asyncio
import logging
from importlib import import_module

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.tokens import usable_token_ids

from . import close_codes
from .db import database_sync_to_async

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # ids per IN (...) query, well under every database's parameter limit


def credential_of(scope):
    """What authenticated a connection, as a hashable tuple; None for anonymous ones.

    ``("token", token_id)`` for Bearer and ticket sockets, ``("session", key, user_id)``
    for a session cookie.
    """
    token = scope.get("api_token")
    if token is not None:
        return ("token", token.pk)
    user = scope.get("user")
    session = scope.get("session")
    if user is not None and user.is_authenticated and session is not None:
        return ("session", session.session_key, user.pk)
    return None


def _batches(items):
    items = list(items)
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]


def _load_sessions(keys):
    """{session key: session data} for the sessions that exist and have not expired."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store, DatabaseSessionStore):  # cache, file, signed cookies: one by one
        return {key: data for key in keys if (data := store(key).load())}
    model, now, sessions = store.get_model_class(), timezone.now(), {}
    for batch in _batches(keys):
        rows = model.objects.filter(session_key__in=batch, expire_date__gt=now)
        for key, data in rows.values_list("session_key", "session_data"):
            sessions[key] = store(key).decode(data)
    return sessions


def _session_hashes(user):
    """The session auth hashes a session of ``user`` may carry (SECRET_KEY_FALLBACKS too)."""
    return [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]


def _session_authenticates(session, user_id, users, hashes):
    """Django's own test (django.contrib.auth.get_user), for one session already loaded."""
    User = get_user_model()
    try:
        session_user_id = User._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return False
    user = users.get(session_user_id)
    if (
        session_user_id != user_id
        or user is None
        or backend_path not in settings.AUTHENTICATION_BACKENDS
    ):
        return False
    can_authenticate = getattr(load_backend(backend_path), "user_can_authenticate", None)
    if can_authenticate is not None and not can_authenticate(user):
        return False
    if not hasattr(user, "get_session_auth_hash"):
        return True
    # A password change rotates the hash, which ends every other session of the user.
    session_hash = session.get(HASH_SESSION_KEY) or ""
    if user.pk not in hashes:
        hashes[user.pk] = _session_hashes(user)
    return any(constant_time_compare(session_hash, known) for known in hashes[user.pk])


def _live_sessions(credentials):
    sessions = _load_sessions({key for _, key, _ in credentials if key})
    user_ids = {user_id for _, _, user_id in credentials}
    users, hashes = {}, {}
    for batch in _batches(user_ids):
        users.update(
            (user.pk, user) for user in get_user_model()._default_manager.filter(pk__in=batch)
        )
    return {
        (kind, key, user_id)
        for kind, key, user_id in credentials
        if key in sessions and _session_authenticates(sessions[key], user_id, users, hashes)
    }


def ended_credentials(credentials):
    """The subset of ``credentials`` (from credential_of) that no longer authenticate."""
    tokens = {credential for credential in credentials if credential[0] == "token"}
    sessions = {credential for credential in credentials if credential[0] == "session"}
    usable = set()
    for batch in _batches(token_id for _, token_id in tokens):
        usable |= usable_token_ids(batch)
    live_tokens = {credential for credential in tokens if credential[1] in usable}
    return (tokens - live_tokens) | (sessions - _live_sessions(sessions))


class Watcher:
    """The signed-in sockets of this process, and the one task that re-checks them."""

    def __init__(self):
        self.sockets = {}  # consumer → credential
        self.task = None

    def watch(self, consumer):
        credential = credential_of(consumer.scope)
        if credential is None:
            return
        self.sockets[consumer] = credential
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self.run())

    def forget(self, consumer):
        self.sockets.pop(consumer, None)

    async def run(self):
        """Sweep every interval while signed-in sockets remain; then end."""
        while True:
            await asyncio.sleep(settings.WEBSOCKET_REAUTH_INTERVAL)
            if not self.sockets:
                self.task = None
                return
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - e.g. the database is down: try next time
                logger.exception("re-authentication sweep failed; retrying next interval")

    async def sweep(self):
        watched = dict(self.sockets)
        ended = await database_sync_to_async(ended_credentials)(set(watched.values()))
        for consumer, credential in watched.items():
            if credential in ended and self.sockets.pop(consumer, None) is not None:
                logger.info(
                    "credentials ended path=%s kind=%s",
                    consumer.scope.get("path"),
                    credential[0],
                    extra=consumer.log_fields(),
                )
                try:
                    await consumer.refuse(close_codes.UNAUTHORIZED, "signed out: sign in again")
                except Exception:  # noqa: BLE001 - the socket may be gone already
                    logger.debug("could not close a signed-out socket", exc_info=True)


watcher = Watcher()
