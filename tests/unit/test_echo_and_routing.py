import pytest
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
