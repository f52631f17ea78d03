"""The metrics each process serves (realtime.metrics), counted where things happen: read
back from the process's own registry, as its endpoint renders them for Prometheus."""

import http.client
import json
import logging
import socket

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from unit.conftest import ORIGIN, bearer, closed_with, receive

# demo: begin
from notifications.models import Notification

# demo: end
from realtime import consumers, metrics, metrics_endpoint
from realtime.logs import JsonFormatter
from realtime.metrics import tally

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


def total(name):
    """A sample's sum over all its labels."""
    return sum(s.value for family in REGISTRY.collect() for s in family.samples if s.name == name)


class Delta:
    """How much a sample grew while the block ran."""

    def __init__(self, name, **labels):
        self.name, self.labels = name, labels

    def __enter__(self):
        self.before = sample(self.name, **self.labels)
        return self

    def __exit__(self, *exc):
        self.value = sample(self.name, **self.labels) - self.before


HANDSHAKES = "realtime_websocket_handshakes_total"


@pytest.mark.parametrize(
    ("path", "headers", "outcome"),
    [
        ("/ws/echo/", (ORIGIN,), "accepted"),
        ("/ws/echo/", ((b"origin", b"http://evil.example"),), "origin"),
        # demo: begin
        ("/ws/notifications/", (ORIGIN,), "auth"),
        ("/ws/chat/bad.room/", (ORIGIN,), "bad_request"),
        # demo: end
        ("/ws/nowhere/", (ORIGIN,), "not_found"),
    ],
)
async def test_each_handshake_is_counted_once_by_its_outcome(connect, path, headers, outcome):
    every_outcome = total(HANDSHAKES)
    with Delta(HANDSHAKES, outcome=outcome) as counted:
        ws, accepted, _ = await connect(path, headers=headers)
        if accepted and outcome != "accepted":
            await closed_with(ws)
    assert counted.value == 1
    assert total(HANDSHAKES) == every_outcome + 1


async def test_open_sockets_by_endpoint_and_closes_by_code(connect):
    before = tally.open["echo"]
    with Delta("realtime_websocket_closes_total", code="1001") as closes:
        ws, _, _ = await connect("/ws/echo/")
        await receive(ws)
        assert tally.open["echo"] == before + 1
        await ws.disconnect(code=1001)
    assert tally.open["echo"] == before
    assert closes.value == 1


def test_a_close_code_nobody_defined_is_other():
    with Delta("realtime_websocket_closes_total", code="other") as other:
        metrics.closed(3999)
    with Delta("realtime_websocket_closes_total", code="4401") as known:
        metrics.closed(4401)
    assert (other.value, known.value) == (1, 1)


# demo: begin
def test_groups_are_counted_by_kind_and_consumers_by_endpoint():
    from chat.consumers import ChatConsumer
    from notifications.consumers import NotificationConsumer
    from realtime.consumers import NotFoundConsumer

    assert [metrics.group_kind(g) for g in ("chat_lobby", "chat.long.ab12", "user_7", "_x")] == [
        "chat", "chat", "user", "other",
    ]  # fmt: skip
    consumers = (ChatConsumer, NotificationConsumer, NotFoundConsumer)
    assert [metrics.endpoint_of(c) for c in consumers] == ["chat", "notification", "not_found"]


@database_sync_to_async
def post_notification(token, text, request_id):
    return Client().post(
        "/api/notifications/", json.dumps({"text": text}), content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )  # fmt: skip


async def test_a_push_from_a_request_is_counted_and_its_delivery_logged(
    connect, user, token, caplog
):
    phone, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    laptop, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    pushes = Delta("realtime_pushes_total", kind="user", outcome="ok")
    requests = Delta(
        "realtime_http_requests_total", view="api-notifications", method="POST", status="201"
    )
    with pushes, requests, caplog.at_level(logging.INFO):
        deliveries = tally.deliveries
        response = await post_notification(token, "ready", "req-1234")
        assert response.status_code == 201
        assert (await receive(phone))["text"] == (await receive(laptop))["text"] == "ready"
    assert (pushes.value, requests.value, tally.deliveries - deliveries) == (1, 1, 2)
    pushed = [r for r in caplog.records if r.name == "realtime.broadcast"]
    assert [(r.request_id, r.group, r.event_type) for r in pushed] == [
        ("req-1234", f"user_{user.pk}", "notification")
    ]
    delivered = [r for r in caplog.records if r.name == "realtime.delivery"]
    assert len(delivered) == 2 and {r.request_id for r in delivered} == {"req-1234"}
    assert len({r.socket for r in delivered}) == 2 and {r.user for r in delivered} == {user.pk}
    notification = await database_sync_to_async(Notification.objects.get)()
    assert {r.event_id for r in delivered} == {notification.pk}


async def test_a_push_to_many_sockets_logs_the_first_ones_then_one_line(
    connect, user, token, caplog, monkeypatch
):
    monkeypatch.setattr(consumers, "DELIVERY_LINES", 2)
    sockets = [
        (await connect("/ws/notifications/", headers=(ORIGIN, bearer(token))))[0] for _ in range(4)
    ]
    with caplog.at_level(logging.INFO, logger="realtime.delivery"):
        response = await post_notification(token, "to all four", "req-many")
        assert response.status_code == 201
        for ws in sockets:
            assert (await receive(ws))["text"] == "to all four"
    lines = [r.getMessage() for r in caplog.records if r.name == "realtime.delivery"]
    assert len(lines) == 3, lines
    assert all(line.startswith("delivered type=notification") for line in lines)
    assert "to more than 2 sockets here" in lines[2]


async def test_events_pushed_without_a_request_are_not_logged_per_socket(
    connect, user, token, caplog
):
    ws, _, _ = await connect("/ws/notifications/", headers=(ORIGIN, bearer(token)))
    with caplog.at_level(logging.INFO):
        await database_sync_to_async(Notification.objects.create)(user=user, text="quiet")
        assert (await receive(ws))["text"] == "quiet"
    assert [r for r in caplog.records if r.name == "realtime.delivery"] == []


# demo: end


@pytest.mark.parametrize(
    ("path", "view", "status"),
    [("/healthz", "healthz", "200"), ("/no/such/page", "<unmatched>", "404")],
)
def test_requests_are_counted_by_view_and_status_and_timed(path, view, status):
    timed = Delta("realtime_http_request_duration_seconds_count", view=view)
    counted = Delta("realtime_http_requests_total", view=view, method="GET", status=status)
    with counted, timed:
        Client().get(path)
    assert (counted.value, timed.value) == (1, 1)


def test_health_checks_are_timed():
    with Delta("realtime_health_check_duration_seconds_count", check="redis") as redis:
        Client().get("/healthz")
    assert redis.value == 1


def test_json_logs_carry_the_named_fields_and_nothing_else():
    record = logging.LogRecord(
        "realtime.consumers", logging.INFO, __file__, 1, "closed %s", (1012,), None
    )
    record.code, record.socket, record.request = 1012, "abc", "<the whole request>"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "closed 1012" and (entry["code"], entry["socket"]) == (1012, "abc")
    assert "request" not in entry and {"time", "level", "logger", "process", "pid"} <= set(entry)
    atoms = {"{x-forwarded-for}i": "10.0.0.1", "m": "POST", "U": "/api/notifications/",
             "H": "HTTP/1.0", "s": "201", "B": 9, "M": 12, "{x-request-id}i": "f00d"}  # fmt: skip
    access = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(m)s", (), None)
    access.args = atoms
    assert json.loads(JsonFormatter().format(access)) | {"time": "-", "pid": 0} == {
        "time": "-", "level": "INFO", "logger": "gunicorn.access", "process": entry["process"],
        "pid": 0, "client": "10.0.0.1", "method": "POST", "path": "/api/notifications/",
        "protocol": "HTTP/1.0", "status": 201, "bytes": 9, "duration_ms": 12, "request_id": "f00d",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("bind", "metrics_bind", "counts"),
    [
        ("unix:/run/app/daphne-1.sock", "unix:/run/app/daphne-1.metrics.sock",
         "/run/app/daphne-1.counts.json"),
        ("tcp:0.0.0.0:8001", "tcp:0.0.0.0:9001", None),
        ("0.0.0.0:8000", "tcp:0.0.0.0:9000", None),  # gunicorn's own spelling
    ],
)  # fmt: skip
def test_each_process_serves_metrics_beside_its_own_socket(bind, metrics_bind, counts):
    assert metrics_endpoint.metrics_bind(bind) == metrics_bind
    assert str(metrics_endpoint.counts_file(metrics_bind) or None) == str(counts)


def test_the_endpoint_serves_a_registry_on_a_unix_socket_until_stopped(tmp_path):
    registry = CollectorRegistry()
    Counter("probe_things", "Things.", registry=registry).inc(3)
    path = tmp_path / "probe.metrics.sock"
    server = metrics_endpoint.serve(f"unix:{path}", registry)
    try:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(str(path))
            client = http.client.HTTPConnection("localhost")
            client.sock = connection
            client.request("GET", "/anything/metrics")
            response = client.getresponse()
            body = response.read().decode()
        assert response.status == 200 and "probe_things_total 3.0" in body
        assert oct(path.stat().st_mode & 0o777) == "0o660"
    finally:
        metrics_endpoint.stop(server)
    assert not path.exists()  # a stopped process leaves no socket behind


def test_a_graceful_stop_hands_its_counts_to_the_next_instance(tmp_path):
    counts = tmp_path / "daphne-1.counts.json"
    metrics.closed(1012)
    saved = sample("realtime_websocket_closes_total", code="1012")
    frames, deliveries = tally.frames_sent, tally.deliveries
    metrics.save_counts(counts)
    assert metrics.restore_counts(counts) and not counts.exists()
    # The next instance starts from the saved counts; in this same process, they double.
    assert sample("realtime_websocket_closes_total", code="1012") == 2 * saved
    assert (tally.frames_sent, tally.deliveries) == (2 * frames, 2 * deliveries)
    assert metrics.restore_counts(counts) is False  # nothing left to take
