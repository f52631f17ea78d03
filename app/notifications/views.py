from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from accounts.decorators import api_auth_required
from realtime.consumers import decode

from .models import Notification

MAX_TEXT_LENGTH = 4000


def _bad_request(reason):
    return JsonResponse({"error": reason}, status=400)


def _recipient(body, caller):
    """The active user named by ``body["to"]``; the caller when there is no "to"."""
    if "to" not in body:
        return caller
    name = body["to"]
    if not isinstance(name, str):
        return None
    users = get_user_model().objects.filter(is_active=True)
    return users.filter(**{get_user_model().USERNAME_FIELD: name}).first()


@require_POST
@api_auth_required
def create_notification(request):
    """POST /api/notifications/ {"text": "...", "to": "<username>"} → 201 {"id": ...}.

    ``to`` is optional (default: the caller); any signed-in user may notify any other, as
    the demo page does; restrict it for your own app. The new notification reaches the
    recipient's open sockets and streams through notifications.signals.
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
    recipient = _recipient(body, request.user)
    if recipient is None:
        return _bad_request('"to" must name an active user')
    notification = Notification.objects.create(user=recipient, text=text)
    return JsonResponse({"id": notification.id}, status=201)
