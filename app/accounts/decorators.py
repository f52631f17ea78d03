"""Authentication for the JSON API: a bearer token, or a session plus its CSRF token."""

from functools import wraps

from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from .tokens import authenticate_token


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def _csrf_failure_reason(request):
    """Django's own CSRF check, run on demand; None when the request passes."""
    check = _CsrfCheck(lambda request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _unauthorized(reason):
    response = JsonResponse({"error": reason}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def api_auth_required(view):
    """Let a view through with ``request.user`` set, or answer 401/403 in JSON.

    - ``Authorization: Bearer <token>``: judged by the token alone (no CSRF: browsers never
      attach this header on their own).
    - a session cookie: needs a valid CSRF token, like any form POST.
    - neither: 401. CSRF is checked only for sessions, so an anonymous client hears
      "authenticate" (401) rather than "CSRF failed" (403), the same order as DRF.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = authenticate_token(raw.strip())
            if token is None:
                return _unauthorized("invalid, expired or revoked token")
            request.user = token.user
            request.api_token = token
        elif request.user.is_authenticated:
            reason = _csrf_failure_reason(request)
            if reason:
                return JsonResponse({"error": f"CSRF verification failed: {reason}"}, status=403)
        else:
            return _unauthorized(
                "authentication required: a session with a CSRF token, "
                "or an Authorization: Bearer <token> header"
            )
        return view(request, *args, **kwargs)

    return wrapper
