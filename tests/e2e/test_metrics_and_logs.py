"""What an operator sees: a real Prometheus scrapes a real stack (the Prometheus config the
local stack writes, the kit's alert rules), and the PromQL answers match a scripted
session; the metrics are never on the public site; the JSON logs follow a notification
from its POST to every socket that got it, and hold no token, cookie or message body.

One stack for the module, with JSON logs (production's default), and one Prometheus
scraping it every second. The tests run in order: the session, then what it left behind.
"""

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid

import pytest
from e2e.conftest import bearer, receive_json, receive_until
from e2e.localstack import REPO_DIR, STACK, LocalStack, free_port
from e2e.prometheus import Prometheus
from polling import wait_until_async
from websockets.exceptions import ConnectionClosed

ROOM = "metrics"
CLEAR = "\033[H\033[J"  # how `make top` begins each screen
SCRIPT = {}  # what the session did, for the tests that read its logs


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("observed")
    stack = LocalStack(directory / "var", free_port(), LOG_FORMAT="json")
    stack.up()
    prometheus = None
    try:
        prometheus = Prometheus(stack.run_dir / "prometheus" / "prometheus.yml", directory / "tsdb")
        prometheus.start()
        yield stack, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        stack.down()


def test_prometheus_scrapes_every_process_and_loads_the_alert_rules(observed):
    _, prometheus = observed
    prometheus.wait_for('count(up{job="django-channels"} == 1)', 3)
    targets = prometheus.query('up{job="django-channels"}')
    assert {dict(labels)["instance"] for labels in targets} == {
        "realtime/gunicorn", "realtime/daphne-1", "realtime/daphne-2",
    }  # fmt: skip
    rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    assert len(rules) == 7 and all(rule["health"] != "err" for rule in rules), rules


async def test_a_scripted_session_is_what_promql_says(observed):
    stack, prometheus = observed
    token = stack.issue_token("metrics-alice")
    SCRIPT["token"] = token
    opened = {1: [], 2: []}
    async with contextlib.AsyncExitStack() as held:
        # Five chat sockets and one notification socket, each straight to its daphne.
        for instance, count in ((1, 3), (2, 2)):
            for _ in range(count):
                ws = await held.enter_async_context(
                    stack.daphne_websocket(
                        instance, f"/ws/chat/{ROOM}/", additional_headers=bearer(token)
                    )  # fmt: skip
                )
                opened[instance].append(ws)
        bell = await held.enter_async_context(
            stack.daphne_websocket(1, "/ws/notifications/", additional_headers=bearer(token))
        )
        open_sockets = 'sum by (instance) (realtime_websockets_open{instance="realtime/%s"})'
        prometheus.wait_for(open_sockets % "daphne-1", 4)
        prometheus.wait_for(open_sockets % "daphne-2", 2)
        prometheus.wait_for('sum(realtime_websockets_open{endpoint="chat"})', 5)
        prometheus.wait_for('sum(realtime_websockets_open{endpoint="notification"})', 1)

        # Three messages from one member: every member gets each.
        members = opened[1] + opened[2]
        bodies = [f"body-{uuid.uuid4().hex}" for _ in range(3)]
        SCRIPT["bodies"] = bodies
        for body in bodies:
            await members[0].send(json.dumps({"message": body}))
            for ws in members:
                await receive_until(ws, lambda frame, body=body: frame.get("message") == body)
        # Each process received each event once from Redis, and handed it to its members.
        prometheus.wait_for("sum(realtime_group_events_received_total)", 6)
        prometheus.wait_for("sum(realtime_group_event_deliveries_total)", 15)
        prometheus.wait_for(
            'sum(realtime_pushes_total{kind="chat", outcome="ok"})', 3
        )  # posted in daphne
        assert prometheus.value("sum(realtime_websocket_frames_received_total)") >= 3

        # A push from an HTTP request: gunicorn counts the request and the push.
        text = f"note-{uuid.uuid4().hex}"
        SCRIPT["bodies"].append(text)
        status, _ = stack.notify(token, text)
        assert status == 201
        assert (await receive_json(bell))["text"] == text
        prometheus.wait_for(
            'sum(realtime_http_requests_total{view="api-notifications", method="POST", '
            'status="201"})',
            1,
        )
        prometheus.wait_for('sum(realtime_pushes_total{kind="user", outcome="ok"})', 1)
        prometheus.wait_for("sum(realtime_group_event_deliveries_total)", 16)
        prometheus.wait_for(
            'sum(realtime_push_duration_seconds_count{instance="realtime/gunicorn"})', 1
        )
        assert (
            prometheus.value(
                'sum(realtime_http_request_duration_seconds_count{view="api-notifications"})'
            )
            == 1
        )

        # /healthz times its checks (`make up` called it already, maybe more than once).
        checks = 'sum(realtime_health_check_duration_seconds_count{check="redis"})'
        checked = prometheus.value(checks)
        status, _, _ = stack.http("GET", "/healthz")
        assert status == 200
        prometheus.wait_for(checks, checked + 1)

        # Refused handshakes, each counted by why.
        with pytest.raises(Exception, match="403"):
            async with stack.websocket("/ws/echo/", origin="http://evil.example"):
                pass
        async with stack.websocket("/ws/notifications/") as anonymous:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(anonymous.recv(), 10)
                await asyncio.wait_for(anonymous.recv(), 10)
        async with stack.websocket("/ws/chat/bad.room/") as bad_room:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(bad_room.recv(), 10)
                await asyncio.wait_for(bad_room.recv(), 10)
        for outcome in ("origin", "auth", "bad_request"):
            prometheus.wait_for(
                f'sum(realtime_websocket_handshakes_total{{outcome="{outcome}"}})', 1
            )
        # The six held, and the echo `make up` checks the stack with.
        prometheus.wait_for('sum(realtime_websocket_handshakes_total{outcome="accepted"})', 7)

        # daphne-2 stops gracefully: its two sockets are closed with 1012, and counted,
        # even though the process is gone before any scrape (the next one carries on).
        stack.stop_program("daphne-2")
        for ws in opened[2]:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == 1012
        stack.start_program("daphne-2")
        stack.wait_running("daphne-2")
        prometheus.wait_for('sum(realtime_websocket_closes_total{code="1012"})', 2)
        prometheus.wait_for(open_sockets % "daphne-2", 0)

        # daphne-1 is killed: its four sockets drop (no close code), and so does the count.
        old_pid = stack.pid("daphne-1")
        os.kill(old_pid, signal.SIGKILL)
        for ws in [*opened[1], bell]:
            with pytest.raises(ConnectionClosed) as dropped:
                await asyncio.wait_for(ws.recv(), 10)
            assert dropped.value.rcvd is None  # no close frame: 1006
        stack.wait_running("daphne-1", old_pid)
        prometheus.wait_for(open_sockets % "daphne-1", 0, timeout=60)
        prometheus.wait_for("sum(realtime_websockets_open)", 0)

    # Every daphne measured its event loop all along.
    assert prometheus.value("sum(realtime_event_loop_lag_seconds_count) > 0") is not None


def test_every_dashboard_query_answers_from_the_scraped_metrics(observed):
    """Each panel of the Grafana dashboard, as Grafana would ask it, has data."""
    _, prometheus = observed
    dashboard = json.loads((REPO_DIR / "deploy" / "grafana" / "django-channels.json").read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$project", "realtime")
            expr = expr.replace("$__rate_interval", "1m")
            if not prometheus.query(expr):
                empty.append(f"{panel['title']}: {expr}")
    assert empty == []


async def test_make_top_shows_the_stack_live_until_ctrl_c(observed, tmp_path):
    """`make top` (stack.py top) on the running stack: sockets per daphne and endpoint,
    message rates, the push p99, the last closes; Ctrl-C ends it. With TOP_SCREENSHOT=PATH
    (`make screenshot`), the screen it showed is saved as a PNG there (docs/top.png)."""
    stack, _ = observed
    # stderr to a file, not a pipe read only at the end: a full pipe would block it.
    errors = (tmp_path / "top.stderr").open("w+")
    top = subprocess.Popen(
        [sys.executable, STACK, "top"], env=stack.env, stdout=subprocess.PIPE,
        stderr=errors, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )  # fmt: skip
    screens = []
    reader = threading.Thread(target=read_screens, args=(top.stdout, screens))
    reader.start()
    try:
        # Its first screen is drawn once it has read the stack twice: what follows is new.
        async def drawn():
            return screens[:1]

        await wait_until_async(drawn, "make top's first screen", 30)
        async with contextlib.AsyncExitStack() as held:
            members = [
                await held.enter_async_context(stack.websocket(f"/ws/chat/{ROOM}/"))
                for _ in range(4)
            ]
            notified = await held.enter_async_context(stack.websocket("/ws/echo/"))
            await receive_json(notified)
            await members[3].close()  # a close to show

            async def shown():
                await members[0].send(json.dumps({"message": "top"}))
                for ws in members[:3]:
                    await receive_until(ws, lambda frame: frame.get("message") == "top")
                return next((screen for screen in list(screens)[::-1] if live(screen)), None)

            try:
                screen = await wait_until_async(shown, "make top to show the traffic", 60)
            except TimeoutError:
                raise AssertionError(f"make top showed, last: {screens[-1:]}") from None
    finally:
        top.send_signal(signal.SIGINT)
        try:
            top.wait(timeout=10)
        finally:
            if top.poll() is None:
                top.kill()
                top.wait()
            reader.join(timeout=10)
    errors.seek(0)
    assert top.returncode == 0, errors.read()
    assert re.search(r"^daphne-1\s+up\s+\d+", screen, re.M) and "gunicorn" in screen
    if path := os.environ.get("TOP_SCREENSHOT"):
        terminal_png(screen, path)


def read_screens(stream, screens):
    """Append to ``screens`` each screen `make top` draws, once the next one begins (each
    begins by clearing the terminal), until it exits."""
    current = []
    for line in stream:
        if CLEAR in line:
            if "".join(current).strip():
                screens.append("".join(current))
            current = [line.partition(CLEAR)[2]]
        else:
            current.append(line)
    if "".join(current).strip():
        screens.append("".join(current))


def live(screen):
    """A screen showing the traffic of the test above: 4 sockets, messages, a push."""
    return (
        re.search(r"sockets by endpoint: chat 3, echo 1", screen)
        and re.search(r"pushes: [1-9][\d.]*/s, p99 [\d.]+ ms", screen)
        and re.search(r"closes \(last \d+ s\): .*1000 ×1", screen)
    )


def terminal_png(text, path):
    """``text`` as a terminal shows it: light monospace on dark, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    lines = text.rstrip("\n").splitlines()
    width = max(len(line) for line in lines)
    figure = pyplot.figure(figsize=(width * 0.085 + 0.4, len(lines) * 0.2 + 0.4), dpi=110)
    figure.patch.set_facecolor("#1e1e1e")
    figure.text(0.02, 0.96, "\n".join(lines), family="DejaVu Sans Mono", size=10,
                color="#e6e6e6", va="top", linespacing=1.35)  # fmt: skip
    figure.savefig(path, facecolor=figure.get_facecolor())
    pyplot.close(figure)


@pytest.mark.parametrize(
    "path",
    [
        "/metrics", "/metrics/", "/realtime/gunicorn/metrics", "/realtime/daphne-1/metrics",
        "/nginx/stub_status", "/-/metrics", "/api/metrics",
    ],
)  # fmt: skip
def test_the_public_site_serves_no_metrics(observed, path):
    stack, _ = observed
    status, body, _ = stack.http("GET", path)
    assert status == 404, (path, status)
    assert "realtime_" not in str(body)


def json_lines(stack, name):
    lines = (stack.data_dir / "log" / name).read_text().splitlines()
    return [json.loads(line) for line in lines]  # every line one JSON object


def test_every_python_process_logs_one_json_object_a_line(observed):
    stack, _ = observed
    for name in ("gunicorn.log", "daphne-1.log", "daphne-2.log"):
        entries = json_lines(stack, name)
        assert entries, name
        assert all({"time", "level", "logger", "process", "pid"} <= set(e) for e in entries)
    processes = {e["process"] for e in json_lines(stack, "daphne-2.log")}
    assert processes == {"daphne-2"}
    access = [e for e in json_lines(stack, "gunicorn.log") if e["logger"] == "gunicorn.access"]
    assert access and all({"method", "path", "status", "request_id"} <= set(e) for e in access)
    closes = [e for e in json_lines(stack, "daphne-2.log") if e.get("code") == 1012]
    assert len(closes) == 2 and all(e["socket"] and e["user"] for e in closes), closes


def test_one_notification_is_followed_from_its_post_to_the_socket_that_got_it(observed):
    stack, _ = observed
    gunicorn = json_lines(stack, "gunicorn.log")
    (post,) = [
        e for e in gunicorn
        if e["logger"] == "gunicorn.access" and e["path"] == "/api/notifications/"
    ]  # fmt: skip
    request_id = post["request_id"]
    assert request_id in (stack.data_dir / "log" / "nginx-access.log").read_text()
    (pushed,) = [e for e in gunicorn if e.get("request_id") == request_id and "group" in e]
    assert pushed["group"].startswith("user_") and pushed["event_type"] == "notification"
    deliveries = [
        e for name in ("daphne-1.log", "daphne-2.log") for e in json_lines(stack, name)
        if e["logger"] == "realtime.delivery" and e.get("request_id") == request_id
    ]  # fmt: skip
    assert len(deliveries) == 1, deliveries
    (delivery,) = deliveries
    assert delivery["event_id"] == pushed["event_id"] and delivery["group"] == pushed["group"]
    assert delivery["socket"] and delivery["user"]


async def test_no_token_cookie_or_message_body_reaches_any_log(observed):
    stack, _ = observed
    # A session and a ticket too, each used on a socket.
    password = f"password-{uuid.uuid4().hex}"
    stack.create_staff_user("metrics-bob", password)
    cookies = stack.sign_in("metrics-bob", password)
    cookie_header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    async with stack.websocket("/ws/notifications/", additional_headers={"Cookie": cookie_header}):
        pass
    status, answer, _ = stack.http(
        "POST", "/api/ws-ticket/", headers={"Authorization": f"Bearer {SCRIPT['token']}"}
    )
    assert status == 201
    ticket = answer["ticket"]
    async with stack.websocket("/ws/notifications/", subprotocols=["realtime.ticket", ticket]):
        pass
    secrets = [SCRIPT["token"], ticket, password, *cookies.values(), *SCRIPT["bodies"]]
    secrets.append(SCRIPT["token"].partition(".")[2])  # the secret half alone
    logs = sorted((stack.data_dir / "log").glob("*.log"))
    assert len(logs) >= 6
    for secret in secrets:
        assert stack.logs_containing(secret) == [], secret
