import pytest
from django.test import override_settings
from unit.conftest import closed_with, receive

# The auth middleware reads the session (and closes stale connections) on every handshake.
pytestmark = pytest.mark.django_db(transaction=True)


async def test_echo_says_hello_then_echoes_json(connect):
    ws, accepted, _ = await connect("/ws/echo/")
    assert accepted
    assert await receive(ws) == {"hello": "world"}
    for message in ({"a": [1, 2]}, "text", 42, None, [{"nested": True}]):
        await ws.send_json_to(message)
        assert await receive(ws) == {"echo": message}


async def test_non_json_gets_an_error_and_the_socket_stays_open(connect):
    ws, _, _ = await connect("/ws/echo/")
    await receive(ws)
    await ws.send_to(text_data="{not json")
    assert "invalid JSON" in (await receive(ws))["error"]
    await ws.send_json_to({"still": "open"})
    assert await receive(ws) == {"echo": {"still": "open"}}


async def test_binary_frames_get_an_error(connect):
    ws, _, _ = await connect("/ws/echo/")
    await receive(ws)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert "binary" in (await receive(ws))["error"]


async def test_unknown_path_closes_with_4404(connect):
    ws, accepted, _ = await connect("/ws/nothing-here/")
    assert accepted
    assert "no websocket endpoint" in (await receive(ws))["error"]
    assert await closed_with(ws) == 4404


@pytest.mark.parametrize(
    "headers",
    [[(b"origin", b"http://evil.example")], []],
    ids=["foreign-origin", "no-origin"],
)
async def test_handshake_from_a_foreign_or_missing_origin_is_refused(connect, headers):
    _, accepted, _ = await connect("/ws/echo/", headers=headers)
    assert not accepted


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",
        "http://localhost:1234",
        "https://127.0.0.1:8080",
        "http://127.0.0.1",
        "null",
        "http://127.0.0.1:port",
    ],
)
async def test_another_origin_on_the_sites_own_hosts_is_refused(connect, origin):
    """The local site is http://127.0.0.1:8080 and http://localhost:8080 (PUBLIC_ORIGINS)."""
    _, accepted, _ = await connect("/ws/echo/", headers=[(b"origin", origin.encode())])
    assert not accepted


@override_settings(PUBLIC_ORIGINS=["https://chat.example.com", "https://*.example.org"])
@pytest.mark.parametrize(
    "origin, accepted",
    [
        ("https://chat.example.com", True),
        ("https://chat.example.com:443", True),
        ("https://CHAT.example.com", True),
        ("http://chat.example.com", False),
        ("https://chat.example.com:8443", False),
        ("https://www.example.org", True),
        ("https://example.org.evil.example", False),
    ],
)
async def test_origins_must_match_scheme_host_and_port(connect, origin, accepted):
    _, was_accepted, _ = await connect("/ws/echo/", headers=[(b"origin", origin.encode())])
    assert was_accepted == accepted


async def test_a_handshake_without_origin_needs_a_token(connect, token):
    """Browsers always send Origin: a client without one is a script, which has a token."""
    ws, accepted, _ = await connect(
        "/ws/echo/", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    assert accepted
    assert await receive(ws) == {"hello": "world"}
    _, refused, _ = await connect("/ws/echo/", headers=[])
    assert not refused
