"""Signed-in sockets are closed with 4401 soon after their credentials end."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.utils import timezone
from unit.conftest import ORIGIN, bearer, closed_with, receive

from accounts.models import ApiToken
from accounts.tokens import issue_token
from realtime import reauth

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = 0.2  # seconds between sweeps in these tests (the default is 30)


@pytest.fixture(autouse=True)
def short_interval(settings):
    settings.WEBSOCKET_REAUTH_INTERVAL = INTERVAL


@pytest.fixture
def signed_in(user):
    """A browser signed in as ``user``: the Django test client, holding a real session."""
    client = Client()
    client.force_login(user)
    return client


def cookie_header(client):
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())


async def assert_closed_with_4401(ws):
    """Closed, with the reason first, within a few sweeps (the receive timeout bounds it)."""
    started = asyncio.get_running_loop().time()
    assert (await receive(ws)) == {"error": "signed out: sign in again"}
    assert await closed_with(ws) == 4401
    assert asyncio.get_running_loop().time() - started < INTERVAL * 10


async def open_session_socket(connect, signed_in, path="/ws/notifications/"):
    ws, accepted, _ = await connect(path, headers=[ORIGIN, cookie_header(signed_in)])
    assert accepted
    assert await ws.receive_nothing(timeout=INTERVAL * 3)  # several sweeps: still open
    return ws


async def test_logout_closes_the_sessions_sockets(connect, signed_in):
    ws = await open_session_socket(connect, signed_in)
    await sync_to_async(signed_in.logout)()
    await assert_closed_with_4401(ws)


async def test_session_expiry_closes_the_socket(connect, signed_in):
    ws = await open_session_socket(connect, signed_in, "/ws/chat/lobby/")
    key = signed_in.cookies[settings.SESSION_COOKIE_NAME].value
    past = timezone.now() - timedelta(seconds=1)
    await database_sync_to_async(Session.objects.filter(pk=key).update)(expire_date=past)
    await assert_closed_with_4401(ws)


async def test_password_change_closes_the_other_sessions_sockets(connect, signed_in, user):
    ws = await open_session_socket(connect, signed_in)

    @database_sync_to_async
    def change_password():
        user.set_password("a brand new password")
        user.save()

    await change_password()
    await assert_closed_with_4401(ws)


async def test_deactivated_user_is_closed(connect, signed_in, user, token):
    by_session = await open_session_socket(connect, signed_in)
    by_token, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    user.is_active = False
    await database_sync_to_async(user.save)()
    await assert_closed_with_4401(by_session)
    await assert_closed_with_4401(by_token)


async def test_token_revocation_closes_the_tokens_sockets_only(connect, user):
    revoked, revoked_raw = await database_sync_to_async(issue_token)(user)
    _, kept_raw = await database_sync_to_async(issue_token)(user)
    doomed, _, _ = await connect("/ws/chat/lobby/", headers=(ORIGIN, bearer(revoked_raw)))
    kept, _, _ = await connect("/ws/chat/lobby/", headers=(ORIGIN, bearer(kept_raw)))
    await database_sync_to_async(revoked.revoke)()
    await assert_closed_with_4401(doomed)
    assert await kept.receive_nothing(timeout=INTERVAL * 3)
    await kept.send_json_to({"message": "still signed in"})
    assert (await receive(kept))["username"] == "alice"


async def test_token_expiry_closes_the_socket(connect, user):
    token, raw = await database_sync_to_async(issue_token)(user, expires_in=timedelta(hours=1))
    ws, _, _ = await connect(
        "/ws/notifications/", headers=[ORIGIN, (b"authorization", f"Bearer {raw}".encode())]
    )
    assert await ws.receive_nothing(timeout=INTERVAL * 3)
    past = timezone.now() - timedelta(seconds=1)
    await database_sync_to_async(ApiToken.objects.filter(pk=token.pk).update)(expires_at=past)
    await assert_closed_with_4401(ws)


async def test_frames_after_the_close_are_ignored(connect, user):
    token, raw = await database_sync_to_async(issue_token)(user)
    ws, _, _ = await connect("/ws/chat/after-close/", headers=(ORIGIN, bearer(raw)))
    await database_sync_to_async(token.revoke)()
    await assert_closed_with_4401(ws)
    await ws.send_json_to({"message": "sent after the close"})
    assert await ws.receive_nothing(timeout=0.2)

    @database_sync_to_async
    def stored():
        from chat.models import ChatMessage

        return ChatMessage.objects.filter(room="after-close").count()

    assert await stored() == 0


async def test_one_sweeper_task_per_process_and_anonymous_sockets_are_not_watched(connect, token):
    signed_in = (ORIGIN, bearer(token))
    signed = [await connect("/ws/notifications/", headers=signed_in) for _ in range(20)]
    anonymous = [await connect("/ws/chat/lobby/") for _ in range(5)]
    assert len(reauth.watcher.sockets) == 20
    sweepers = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "Watcher.run"
    ]
    assert len(sweepers) == 1
    for ws, _, _ in signed + anonymous:
        await ws.disconnect()
    assert reauth.watcher.sockets == {}


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache")
async def test_other_session_engines_are_checked_too(connect, user):
    client = Client()
    await sync_to_async(client.force_login)(user)
    ws = await open_session_socket(connect, client)
    await sync_to_async(client.logout)()
    await assert_closed_with_4401(ws)


def test_a_sweep_costs_a_few_batched_queries(django_user_model, django_assert_num_queries):
    """1,002 sockets (501 token, 501 session) are re-checked in 6 queries: batches of 500."""
    users = django_user_model.objects.bulk_create(
        django_user_model(username=f"u{n}") for n in range(501)
    )
    tokens = ApiToken.objects.bulk_create(
        ApiToken(user=user, prefix=f"{n:012x}", digest="x") for n, user in enumerate(users)
    )
    sessions = []
    for user in users:
        client = Client()
        client.force_login(user)
        sessions.append(("session", client.session.session_key, user.pk))
    credentials = {("token", token.pk) for token in tokens} | set(sessions)
    ApiToken.objects.filter(pk=tokens[0].pk).update(revoked_at=timezone.now())
    Session.objects.filter(pk=sessions[0][1]).delete()
    with django_assert_num_queries(6):
        ended = reauth.ended_credentials(credentials)
    assert ended == {("token", tokens[0].pk), sessions[0]}
