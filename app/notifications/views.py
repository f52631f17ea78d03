from django.http import JsonResponse
from django.views.decorators.http import require_POST

from accounts.decorators import api_auth_required
from realtime.consumers import decode

from .models import Notification

MAX_TEXT_LENGTH = 4000


def _bad_request(reason):
    return JsonResponse({"error": reason}, status=400)


@require_POST
@api_auth_required
def create_notification(request):
    """POST /api/notifications/ {"text": "..."} → 201 {"id": ...}.

    The new notification reaches the caller's open sockets through notifications.signals.
    """
    try:
        body = decode(request.body)
    except ValueError:
        return _bad_request("request body must be JSON")
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        return _bad_request('"text" must be a non-empty string')
    if len(text) > MAX_TEXT_LENGTH:
        return _bad_request(f'"text" is longer than {MAX_TEXT_LENGTH} characters')
    notification = Notification.objects.create(user=request.user, text=text)
    return JsonResponse({"id": notification.id}, status=201)
