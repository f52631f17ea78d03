import json

import pytest
from django.test import Client

from accounts.tokens import issue_token
from notifications.models import Notification

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


def post(client, body, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", headers=headers)


def test_bearer_token_creates_a_notification(user, token):
    response = post(Client(), {"text": "hello"}, Authorization=f"Bearer {token}")
    assert response.status_code == 201
    notification = Notification.objects.get(pk=response.json()["id"])
    assert (notification.user, notification.text) == (user, "hello")


def test_no_credentials_is_401():
    response = post(Client(), {"text": "hello"})
    assert response.status_code == 401
    assert "authentication required" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Bearer 0123456789ab.bad"])
def test_bad_token_is_401(user, header):
    assert post(Client(), {"text": "hello"}, Authorization=header).status_code == 401
    assert not Notification.objects.exists()


def test_bad_token_does_not_fall_back_to_the_session(user):
    client = Client()
    client.force_login(user)
    assert post(client, {"text": "x"}, Authorization="Bearer nonsense").status_code == 401


@pytest.mark.parametrize(
    "body, reason",
    [
        ("not json", "must be JSON"),
        ('["a list"]', '"text"'),
        ({}, '"text"'),
        ({"text": ""}, '"text"'),
        ({"text": "   "}, '"text"'),
        ({"text": 42}, '"text"'),
        ({"text": "x" * 4001}, "longer than"),
        ({"text": "a\x00b"}, "control character U+0000"),
        ({"text": "\x1b[31mred"}, "control character U+001B"),
        ({"text": "next line\x85"}, "control character U+0085"),
    ],
)
def test_bad_body_is_400(token, body, reason):
    response = post(Client(), body, Authorization=f"Bearer {token}")
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not Notification.objects.exists()


def test_session_without_csrf_token_is_403(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = post(client, {"text": "hello"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert not Notification.objects.exists()


def test_session_with_csrf_token_is_201(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/admin/login/")  # any page that sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = post(client, {"text": "hello"}, **{"X-CSRFToken": csrf})
    assert response.status_code == 201


def test_get_is_not_allowed(token):
    assert Client().get(URL, headers={"Authorization": f"Bearer {token}"}).status_code == 405


def test_expired_or_revoked_tokens_are_401(user):
    token, raw = issue_token(user)
    token.revoke()
    assert post(Client(), {"text": "x"}, Authorization=f"Bearer {raw}").status_code == 401


def test_to_sends_the_notification_to_another_user(token, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    response = post(Client(), {"text": "hi bob", "to": "bob"}, Authorization=f"Bearer {token}")
    assert response.status_code == 201
    assert Notification.objects.get(pk=response.json()["id"]).user == bob


@pytest.mark.parametrize("to", ["nobody", "", 42, None, "inactive"])
def test_to_must_name_an_active_user(token, django_user_model, to):
    django_user_model.objects.create_user("inactive", is_active=False)
    response = post(Client(), {"text": "hi", "to": to}, Authorization=f"Bearer {token}")
    assert response.status_code == 400
    assert '"to"' in response.json()["error"]
    assert not Notification.objects.exists()


def test_to_another_user_is_refused_when_turned_off(token, django_user_model, settings):
    """Production's default: no user may message others (or probe which names exist)."""
    settings.NOTIFICATIONS_TO_OTHERS = False
    django_user_model.objects.create_user("bob")
    for to in ("bob", "nobody"):
        response = post(Client(), {"text": "hi", "to": to}, Authorization=f"Bearer {token}")
        assert response.status_code == 403
        assert '"to"' in response.json()["error"]
    assert not Notification.objects.exists()
