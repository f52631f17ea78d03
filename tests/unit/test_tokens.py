import hashlib
import hmac
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import authenticate_token, issue_token, parse_duration

pytestmark = pytest.mark.django_db


def test_issued_token_authenticates_its_user(user):
    token, raw = issue_token(user, name="laptop")
    assert authenticate_token(raw) == token
    assert authenticate_token(raw).user == user


def test_raw_token_is_not_stored(user):
    token, raw = issue_token(user)
    secret = raw.split(".", 1)[1]
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(secret not in str(value) for value in stored.values())


@pytest.mark.parametrize(
    "garbage",
    ["", "nodot", ".", "abc.def", "0123456789ab.", "x" * 500, "0123456789ab.wrong-secret"],
)
def test_garbage_is_rejected(user, garbage):
    issue_token(user)
    assert authenticate_token(garbage) is None


def test_right_prefix_wrong_secret_is_rejected(user):
    _, raw = issue_token(user)
    prefix = raw.split(".")[0]
    assert authenticate_token(f"{prefix}.{'A' * 43}") is None


def test_expired_token_is_rejected(user):
    token, raw = issue_token(user, expires_in=timedelta(hours=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert authenticate_token(raw) is None


def test_revoked_token_is_rejected(user):
    token, raw = issue_token(user)
    token.revoke()
    assert authenticate_token(raw) is None


def test_token_of_inactive_user_is_rejected(user):
    _, raw = issue_token(user)
    user.is_active = False
    user.save()
    assert authenticate_token(raw) is None


def test_issue_token_command_prints_the_token_last():
    out = StringIO()
    call_command(
        "issue_token", "bob", "--create-user", "--expires-in", "2h", stdout=out, stderr=StringIO()
    )
    raw = out.getvalue().strip().splitlines()[-1]
    token = authenticate_token(raw)
    assert token.user.username == "bob"
    assert timedelta(hours=1, minutes=59) < token.expires_at - timezone.now() <= timedelta(hours=2)


def test_issue_token_command_refuses_unknown_user_without_create():
    with pytest.raises(CommandError, match="--create-user"):
        call_command("issue_token", "nobody", stdout=StringIO(), stderr=StringIO())
    assert not get_user_model().objects.filter(username="nobody").exists()


@pytest.mark.parametrize(
    "text, expected", [("90s", timedelta(seconds=90)), ("30d", timedelta(days=30))]
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "h", "-5m", "1.5h", "10w"])
def test_parse_duration_rejects_nonsense(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_secrets_are_compared_in_constant_time_as_digests(user, monkeypatch):
    """hmac.compare_digest on two fixed-length digests: the time taken does not depend on
    how much of a guessed secret was right, nor on its length."""
    token, raw = issue_token(user)
    compared = []
    real_compare = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    prefix = raw.split(".")[0]
    assert authenticate_token(f"{prefix}.a-wrong-guess") is None
    assert authenticate_token(raw) == token
    wrong_digest = hashlib.sha256(b"a-wrong-guess").hexdigest()
    assert compared == [(token.digest, wrong_digest), (token.digest, token.digest)]
