"""The page at / (web): sign-in gate, the Content-Security-Policy, the demo users."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from chat.models import ChatMessage
from chat.services import post_message
from web.middleware import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db
WEB_DIR = Path(__file__).resolve().parents[2] / "app" / "web"


def test_the_page_asks_anonymous_visitors_to_sign_in():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_the_sign_in_page_renders_with_the_policy():
    response = Client().get("/login/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_the_page_loads_its_module_under_a_strict_policy(user):
    client = Client()
    client.force_login(user)
    response = client.get("/", {"room": "ops"})
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert b'<script type="module" src="/static/web/js/main.js">' in response.content
    assert b'data-room="ops"' in response.content


def test_an_invalid_room_in_the_address_falls_back_to_the_lobby(user):
    client = Client()
    client.force_login(user)
    response = client.get("/", {"room": "no spaces!"})
    assert b'data-room="lobby"' in response.content


@pytest.mark.parametrize("template", sorted((WEB_DIR / "templates").rglob("*.html")), ids=str)
def test_templates_have_no_inline_code(template):
    """What a strict CSP would block: inline scripts, style attributes, on* handlers."""
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html)


def test_demo_data_is_idempotent(capsys):
    call_command("demo_data")
    call_command("demo_data")
    assert "alice or bob, password demo-password" in capsys.readouterr().out
    for name in ("alice", "bob"):
        assert authenticate(username=name, password="demo-password") is not None
    assert ChatMessage.objects.filter(room="lobby").count() == 1


def test_demo_data_refuses_outside_the_local_settings(settings):
    settings.DEMO_USERS_ALLOWED = False  # as in production
    with pytest.raises(CommandError, match="local settings only"):
        call_command("demo_data")
    assert not get_user_model().objects.filter(username="alice").exists()


def test_unlisted_rooms_stay_out_of_the_room_list(user):
    """The smoke test chats in "_smoke": checking a deployment leaves no room users see."""
    post_message("lobby", user, "listed")
    post_message("_smoke", user, "unlisted")
    client = Client()
    client.force_login(user)
    response = client.get("/", {"room": "lobby"})
    assert b'href="?room=lobby"' in response.content
    assert b"_smoke" not in response.content
