"""Websocket tickets: short-lived, single-use stand-ins for an API token.

A client that cannot set an Authorization header on a websocket handshake (browser
JavaScript holding an API token, some websocket libraries) would otherwise put the token
in the URL, where nginx's error log records it whenever a daphne cannot be reached. It
asks for a ticket instead (``POST /api/ws-ticket/`` with the token), and offers it as a
websocket subprotocol (realtime.scope.TICKET_SUBPROTOCOL), which no log records. A ticket
opens one socket, within TICKET_SECONDS; the socket then lives on the token, so revoking
the token closes it (realtime.reauth).

Tickets live in the layer's Redis (realtime.redis_store): gunicorn issues them, any
daphne redeems them. Only a digest of each is stored.
"""

import hashlib
import secrets

from redis.exceptions import RedisError

from realtime.redis_store import client_for, key

from .models import ApiToken

TICKET_SECONDS = 30


def _key(ticket):
    return key("ticket", hashlib.sha256(ticket.encode()).hexdigest())


def issue_ticket(token):
    """A new ticket for ``token`` (an ApiToken); RedisError if Redis cannot store it."""
    ticket = secrets.token_urlsafe(32)
    client_for(_key(ticket)).set(_key(ticket), token.pk, ex=TICKET_SECONDS)
    return ticket


def redeem_ticket(ticket):
    """The usable ApiToken a ticket stands for, once; None for an unknown, used or expired
    ticket (or while Redis cannot be reached)."""
    try:
        token_id = client_for(_key(ticket)).getdel(_key(ticket))
    except RedisError:
        return None
    if token_id is None:
        return None
    return ApiToken.objects.usable().select_related("user").filter(pk=int(token_id)).first()
