import math

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from accounts.decorators import api_auth_required
from realtime.consumers import decode
from realtime.text import InvalidText, validate_text
from realtime.throttle import client_of, posting_wait, request_address, too_many_posts

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


def _caller_name(user):
    return getattr(user, get_user_model().USERNAME_FIELD)


@require_POST
@api_auth_required
def create_notification(request):
    """POST /api/notifications/ {"text": "...", "to": "<username>"} → 201 {"id": ...}.

    ``to`` is optional (default: the caller); naming another user needs the
    NOTIFICATIONS_TO_OTHERS setting (on in development for the demo page, off in
    production), else 403. The new notification reaches the
    recipient's open sockets and streams through notifications.signals.
    """
    try:
        body = decode(request.body)
    except ValueError:
        return _bad_request("request body must be JSON")
    if not isinstance(body, dict):
        return _bad_request('request body must be a JSON object like {"text": "..."}')
    try:
        text = validate_text(body.get("text"), "text", MAX_TEXT_LENGTH)
    except InvalidText as error:
        return _bad_request(str(error))
    if body.get("to", _caller_name(request.user)) != _caller_name(request.user) and not (
        settings.NOTIFICATIONS_TO_OTHERS
    ):
        return JsonResponse({"error": 'notifying other users ("to") is turned off'}, status=403)
    recipient = _recipient(body, request.user)
    if recipient is None:
        return _bad_request('"to" must name an active user')
    if wait := posting_wait(client_of(request.user, request_address(request))):
        response = JsonResponse({"error": too_many_posts(wait)}, status=429)
        response["Retry-After"] = str(math.ceil(wait))
        return response
    notification = Notification.objects.create(user=recipient, text=text)
    return JsonResponse({"id": notification.id}, status=201)
