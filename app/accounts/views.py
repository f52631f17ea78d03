from django.http import JsonResponse
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from .decorators import api_auth_required
from .tickets import TICKET_SECONDS, issue_ticket


@require_POST
@api_auth_required
def create_ticket(request):
    """POST /api/ws-ticket/ with ``Authorization: Bearer <token>`` → 201
    ``{"ticket": "...", "expires_in": 30}``: one websocket handshake's credentials, for
    clients that cannot send the token in a header (accounts.tickets)."""
    token = getattr(request, "api_token", None)
    if token is None:
        return JsonResponse(
            {"error": "tickets stand in for an API token (Authorization: Bearer); "
             "pages on the site use their session"},
            status=403,
        )  # fmt: skip
    try:
        ticket = issue_ticket(token)
    except RedisError:
        return JsonResponse({"error": "tickets are unavailable: try again later"}, status=503)
    return JsonResponse({"ticket": ticket, "expires_in": TICKET_SECONDS}, status=201)
