"""Websocket tickets: POST /api/ws-ticket/ with a token, then one handshake offering it."""

import hashlib

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from unit.conftest import ORIGIN, closed_with, receive

from accounts.models import ApiToken
from accounts.tickets import TICKET_SECONDS
from realtime import redis_store

pytestmark = pytest.mark.django_db(transaction=True)


def ask_for_ticket(client, **headers):
    return client.post("/api/ws-ticket/", content_type="application/json", **headers)


@database_sync_to_async
def ticket_for(token):
    response = ask_for_ticket(Client(), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 201, response.content
    return response.json()["ticket"]


def offering(ticket):
    return ["realtime.ticket", ticket]


async def test_a_ticket_signs_in_one_handshake_once(connect, user, token):
    ticket = await ticket_for(token)
    ws, _, subprotocol = await connect(
        "/ws/chat/lobby/", headers=[ORIGIN], subprotocols=offering(ticket)
    )
    assert subprotocol == "realtime.ticket"  # the protocol's name answered, never the ticket
    await ws.send_json_to({"message": "by ticket"})
    assert (await receive(ws))["username"] == "alice"
    again, _, subprotocol = await connect(
        "/ws/notifications/", headers=[ORIGIN], subprotocols=offering(ticket)
    )
    assert subprotocol == "realtime.ticket"  # accepted, to say why it closes
    assert "sign in" in (await receive(again))["error"]
    assert await closed_with(again) == 4401


async def test_a_ticket_needs_no_origin_and_expires_soon(connect, token):
    ticket = await ticket_for(token)
    key = f"realtime:ticket:{hashlib.sha256(ticket.encode()).hexdigest()}"
    assert 0 < redis_store.client_for(key).ttl(key) <= TICKET_SECONDS
    assert redis_store.client_for(key).get(key) is not None  # only the digest is a key
    ws, accepted, _ = await connect("/ws/notifications/", headers=[], subprotocols=offering(ticket))
    assert accepted
    assert await ws.receive_nothing(timeout=0.1)


async def test_a_ticket_of_a_revoked_token_signs_nobody_in(connect, token):
    ticket = await ticket_for(token)
    await database_sync_to_async(lambda: ApiToken.objects.get().revoke())()
    ws, _, _ = await connect("/ws/notifications/", subprotocols=offering(ticket))
    assert await closed_with(ws) == 4401


@pytest.mark.parametrize("ticket", ["", "made-up", "x" * 300])
async def test_an_unknown_ticket_signs_nobody_in(connect, ticket):
    ws, _, _ = await connect("/ws/notifications/", subprotocols=offering(ticket))
    assert await closed_with(ws) == 4401


def test_tickets_are_for_api_tokens_only(user):
    client = Client()
    client.force_login(user)
    response = ask_for_ticket(client)
    assert response.status_code == 403 and "API token" in response.json()["error"]
    assert ask_for_ticket(Client()).status_code == 401
    assert Client().get("/api/ws-ticket/").status_code == 405
