"""Reading the parts of an ASGI scope that clients control."""

from urllib.parse import parse_qs


def query_param(scope, name):
    """The first value of query parameter ``name``, or None. Never raises on bad bytes."""
    query = scope.get("query_string", b"").decode("utf-8", errors="replace")
    values = parse_qs(query).get(name)
    return values[0] if values else None


def client_address(scope):
    """The client's address (daphne takes it from nginx's X-Forwarded-For), or "-"."""
    client = scope.get("client")
    return client[0] if client else "-"


def parse_message_id(text):
    """A resume point (``?since=``, ``Last-Event-ID``) as an int; ValueError unless it is
    a plain non-negative integer."""
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise ValueError("since must be a message id (a non-negative integer)")
    return int(text)


# Offered by a client next to its ticket (accounts.tickets), as Sec-WebSocket-Protocol:
# "realtime.ticket, <ticket>". The server answers with this name, never the ticket.
TICKET_SUBPROTOCOL = "realtime.ticket"


def ticket_offered(scope):
    """The ticket a handshake offers among its subprotocols, or None."""
    offered = scope.get("subprotocols") or ()
    if TICKET_SUBPROTOCOL not in offered:
        return None
    return next((protocol for protocol in offered if protocol != TICKET_SUBPROTOCOL), "")
