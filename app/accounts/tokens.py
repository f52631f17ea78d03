"""Issuing and checking API tokens. Raw tokens are never stored and never logged."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiToken

PREFIX_BYTES = 6  # 12 hex characters: the public, indexed half of a token
SECRET_BYTES = 32


def _digest(secret):
    # Tokens carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(user, *, name="", expires_in=None):
    """Create a token for ``user``; return ``(ApiToken, raw)``. ``raw`` is shown once."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=_digest(secret),
        expires_at=timezone.now() + expires_in if expires_in else None,
    )
    return token, f"{prefix}.{secret}"


def authenticate_token(raw):
    """Return the usable ApiToken for a raw token string, or None.

    The digest comparison runs in constant time, so response timing does not reveal how
    much of a guessed secret was right.
    """
    prefix, sep, secret = (raw or "").partition(".")
    if not sep or not secret or len(prefix) != 2 * PREFIX_BYTES:
        return None
    token = ApiToken.objects.usable().select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.digest, _digest(secret)):
        return None
    return token


def usable_token_ids(token_ids):
    """The ids among ``token_ids`` of tokens still usable (for re-checking open sockets)."""
    return set(ApiToken.objects.usable().filter(pk__in=token_ids).values_list("pk", flat=True))


def parse_duration(text):
    """'90s', '15m', '12h', '30d' → timedelta (for the issue_token command)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(f"expected a duration like 90s, 15m, 12h or 30d, got {text!r}")
    return timedelta(**{units[unit]: int(number)})
