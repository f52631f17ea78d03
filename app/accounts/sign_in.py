"""Throttling password guessing on the sign-in pages (/login/, /admin/login/).

Failed sign-ins are counted per user name and per client address in the layer's Redis
(realtime.throttle), so every gunicorn worker and host sees the same counts. Past
LOGIN_FAILURE_LIMIT failures for a user name, or LOGIN_FAILURE_LIMIT_PER_ADDRESS from an
address, within LOGIN_FAILURE_PERIOD seconds, the page answers 429 without checking the
password (the right one too: a guesser must learn nothing), and allows one more attempt
each PERIOD / LIMIT. Successful sign-ins are not counted.
"""

import math
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpResponse
from django.utils.html import format_html

from realtime.throttle import Rate, request_address, wait_seconds


def _counts(request, username):
    """(bucket, client, rate) of each count a sign-in attempt is judged by."""
    period = settings.LOGIN_FAILURE_PERIOD
    by_name = Rate.per_period(settings.LOGIN_FAILURE_LIMIT, period)
    by_address = Rate.per_period(settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS, period)
    return [
        ("sign-in-name", username.strip().casefold(), by_name),
        ("sign-in-address", request_address(request), by_address),
    ]


def sign_in_wait(request, username):
    """Seconds before ``username`` may be tried from this request's address (0: now)."""
    return max(
        wait_seconds(bucket, client, rate, take=False)
        for bucket, client, rate in _counts(request, username)
    )


@receiver(user_login_failed, dispatch_uid="accounts.count_failed_sign_in")
def count_failed_sign_in(sender, credentials, request=None, **kwargs):
    if request is None:  # not a sign-in page: authenticate() called by code
        return
    username = str(credentials.get(get_user_model().USERNAME_FIELD, ""))
    for bucket, client, rate in _counts(request, username):
        wait_seconds(bucket, client, rate)


def throttle_sign_in(view):
    """Wrap a sign-in view: a POST over either count is answered 429, unchecked."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            username = request.POST.get(get_user_model().USERNAME_FIELD, "")
            if wait := sign_in_wait(request, username):
                return too_many_failures(request, wait)
        return view(request, *args, **kwargs)

    return wrapper


def too_many_failures(request, wait):
    minutes = math.ceil(wait / 60)
    page = format_html(
        '<!doctype html><html lang="en"><title>Too many failed sign-ins</title>'
        "<h1>Too many failed sign-ins</h1><p>Too many wrong passwords for this account, or "
        "from your address. Try again in {} minute{}.</p>"
        '<p><a href="{}">Back to the sign-in page</a></p></html>',
        minutes,
        "" if minutes == 1 else "s",
        request.get_full_path(),
    )
    response = HttpResponse(page, status=429)
    response["Retry-After"] = str(math.ceil(wait))
    return response
