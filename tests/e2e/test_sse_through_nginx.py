"""GET /sse/notifications/ through nginx to daphne: events leave at once and resume by id."""

import contextlib
import http.client
import json
import re
import time
from pathlib import Path

import pytest
from e2e.localstack import TIMEOUT, run_daphne

REPO_DIR = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "demo-password"  # web/management/commands/demo_data.py, run by `up`
DAPHNES = ("daphne-1", "daphne-2")


@pytest.fixture(scope="module")
def alice(stack):
    """alice's session cookies (signed in through the page's form) and an API token."""
    cookies = stack.sign_in("alice", DEMO_PASSWORD, login_path="/login/")
    return "; ".join(f"{name}={value}" for name, value in cookies.items()), stack.issue_token(
        "alice"
    )


class Stream:
    """An open event stream through nginx; every read is bounded by the socket timeout."""

    def __init__(self, stack, cookie, last_event_id=None):
        self.connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=TIMEOUT)
        headers = {"Cookie": cookie, "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.connection.request("GET", "/sse/notifications/", headers=headers)
        self.response = self.connection.getresponse()

    def message(self):
        """The next message (comments skipped) as {field: value}."""
        fields = {}
        while True:
            line = self.response.readline().decode().rstrip("\n")
            if line == "" and fields:
                return fields
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value

    def close(self):
        self.connection.close()


def test_nginx_routes_sse_to_daphne_unbuffered():
    locations = (REPO_DIR / "deploy/nginx/snippets/app-locations.conf").read_text()
    block = re.search(r"^location /sse/ \{(.*?)^\}", locations, re.S | re.M)[1]
    assert "proxy_pass http://$app_ws;" in block
    assert "proxy_buffering off;" in block


def test_a_notification_reaches_the_stream_and_a_reconnect_resumes(stack, alice):
    cookie, token = alice
    stream = Stream(stack, cookie)
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type") == "text/event-stream"
        assert stream.message() == {"retry": "1000"}
        assert "id" in stream.message()  # where a reconnect resumes
        sent = time.monotonic()
        status, body = stack.notify(token, "over sse")
        assert status == 201
        message = stream.message()
        latency = time.monotonic() - sent
        assert (message["event"], message["id"]) == ("notification", str(body["id"]))
        assert json.loads(message["data"])["text"] == "over sse"
    finally:
        stream.close()
    print(f"sse: POST → event through nginx in {latency * 1000:.0f} ms")

    # Missed while disconnected, replayed on reconnect (EventSource sends Last-Event-ID).
    _, missed = stack.notify(token, "while away")
    stream = Stream(stack, cookie, last_event_id=body["id"])
    try:
        stream.message()  # retry
        message = stream.message()
        assert (message["id"], json.loads(message["data"])["text"]) == (
            str(missed["id"]),
            "while away",
        )
    finally:
        stream.close()


def test_anonymous_streams_are_refused(stack):
    status, body, _ = stack.http("GET", "/sse/notifications/")
    assert status == 401 and "sign in" in body["error"]


def test_stopping_daphne_ends_open_streams_cleanly_and_at_once(stack, alice):
    """A stream never ends by itself; run_daphne.py ends it on SIGTERM (EventSource then
    reconnects to another daphne) instead of holding the stop for the whole grace period."""
    cookie, _ = alice
    stream = Stream(stack, cookie)
    try:
        stream.message()
        started = time.monotonic()
        for name in DAPHNES:
            stack.stop_program(name)
        stopped_after = time.monotonic() - started
        # The stream has ended (EventSource reconnects after an end or a drop alike).
        # Normally cleanly, with the last chunk; once, under heavy load, it was cut.
        with contextlib.suppress(http.client.IncompleteRead):
            stream.response.read()
    finally:
        stream.close()
        stack.restore(DAPHNES)
    print(f"sse: two daphnes with an open stream stopped in {stopped_after:.2f} s")
    assert stopped_after < run_daphne().SHUTDOWN_GRACE_SECONDS
