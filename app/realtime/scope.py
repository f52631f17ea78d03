"""Reading the parts of an ASGI scope that clients control."""

from urllib.parse import parse_qs


def query_param(scope, name):
    """The first value of query parameter ``name``, or None. Never raises on bad bytes."""
    query = scope.get("query_string", b"").decode("utf-8", errors="replace")
    values = parse_qs(query).get(name)
    return values[0] if values else None
