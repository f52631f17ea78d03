"""The load rig: deploys and failures under load, on the local stack, on PostgreSQL.

Thousands of resuming members (tests/load/clients.py) hold chat rooms and notification
feeds open through nginx while posters send chat messages over websockets and a pusher
POSTs notifications to gunicorn, at steady rates. Then, one at a time, an event: a
rolling restart of every daphne, a gunicorn reload, an nginx reload, kill -9 of the daphne
holding half the sockets, a Redis restart, a PostgreSQL restart. After each, posting
pauses and the rig checks every member against the database: each must have received
every message of its room (feed) stored since it joined, in order, each shown once.

Everything runs on 127.0.0.1 with bounded loops and waits; every process the rig started
is stopped at the end, also on failure.
"""

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field

from bench.client import ClientPool, raise_open_files_limit
from bench.measure import percentile, rss_kib
from e2e.localstack import LocalStack, free_port
from load.clients import LoadWorker
from polling import wait_until

RECOVERY_TIMEOUT = 120  # every member open again after an event
VERIFY_TIMEOUT = 60  # every member has every stored message after posting pauses
SETTLE_SECONDS = 3  # load before and after each event
RSS_INTERVAL = 0.25

# The events, in the order they run: (name, what it does to the stack).
# First the kill: nginx spread the members over both daphnes as they connected, so one
# holds half of them (after a rolling restart, the last one restarted holds none).
EVENTS = [
    ("kill -9 of one daphne", "kill_daphne"),
    ("rolling restart of every daphne", "rolling_restart"),
    ("gunicorn reload (HUP)", "gunicorn_reload"),
    ("nginx reload (HUP)", "nginx_reload"),
    ("Redis restart", "redis_restart"),
    ("PostgreSQL restart", "postgres_restart"),
]


@dataclass
class Plan:
    sockets: int = 5000
    rooms: int = 10
    feed_users: int = 100
    feed_share: float = 0.2  # of the sockets: notification feeds, the rest chat members
    chat_rate: float = 50.0  # chat messages a second, over all rooms
    push_rate: float = 20.0  # HTTP pushes a second
    client_processes: int = 4
    connect_rate: float = 400.0  # new members a second while setting up
    events: list = field(default_factory=lambda: [method for _, method in EVENTS])
    settings: dict = field(default_factory=dict)  # the stack's environment, on top of .env's


@dataclass
class Phase:
    """What one event did to the members, as measured."""

    event: str
    started: float
    ended: float = 0.0
    dropped: int = 0
    back: list = field(default_factory=list)  # seconds from drop to open again
    caught_up: list = field(default_factory=list)  # seconds from drop to caught up (chat)
    failed_handshakes: int = 0
    lost: int = 0
    shown_twice: int = 0
    delivered_twice: int = 0
    out_of_order: int = 0
    pushes: int = 0
    push_errors: int = 0
    posts: int = 0
    ws_peak_rss_kib: int = 0

    def row(self):
        return {
            "event": self.event,
            "dropped": self.dropped,
            "back p50 (s)": seconds(percentile(self.back, 50)),
            "back p99 (s)": seconds(percentile(self.back, 99)),
            "caught up p50 (s)": seconds(percentile(self.caught_up, 50)),
            "caught up p99 (s)": seconds(percentile(self.caught_up, 99)),
            "failed handshakes": self.failed_handshakes,
            "lost": self.lost,
            "duplicates shown": self.shown_twice,
            "delivered twice": self.delivered_twice,
            "out of order": self.out_of_order,
            "HTTP push errors": f"{self.push_errors}/{self.pushes}",
            "WS tier peak RSS (MiB)": round(self.ws_peak_rss_kib / 1024),
        }


def seconds(value):
    return None if value is None else round(value, 2)


class LoadRig:
    def __init__(self, directory, plan, postgres):
        self.plan = plan
        self.postgres = postgres
        self.database = f"load_{uuid.uuid4().hex[:8]}"
        url = postgres.create_database(self.database)
        self.stack = LocalStack(
            directory / "var",
            free_port(),
            DATABASE_URL=url,
            # The rig's clients all come from 127.0.0.1, its posters are anonymous and its
            # pushes come from a few users: no per-address socket cap, no posting limit.
            WEBSOCKET_MAX_PER_IP="0",
            WEBSOCKET_MAX_PER_USER="0",
            POST_RATE_LIMIT="0",
            **plan.settings,
        )
        self.pool = None
        self.phases = []
        self.tokens = {}  # feed user → raw API token
        self.keys = []  # per member: ("room", name) or ("user", username), in pool order
        self.posting = None

    # -- setting up and tearing down -------------------------------------------------------

    def __enter__(self):
        raise_open_files_limit()
        try:
            self.stack.up()
            self.tokens = self.make_feed_users()
            self.pool = ClientPool(self.plan.client_processes, LoadWorker)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            with contextlib.suppress(Exception):
                self.pool.call("shutdown")
            self.pool.close()
        self.stack.down()

    def make_feed_users(self):
        """Users with an API token each, made in one manage.py call."""
        script = (
            "import json; from django.contrib.auth import get_user_model; "
            "from accounts.tokens import issue_token; tokens = {}\n"
            f"for n in range({self.plan.feed_users}):\n"
            "    user = get_user_model().objects.create_user(f'feed-{n}')\n"
            "    tokens[user.username] = issue_token(user)[1]\n"
            "print(json.dumps(tokens))"
        )
        return json.loads(self.stack.manage("shell", "-c", script).splitlines()[-1])

    def sql(self, query):
        rows = self.postgres.psql(self.database, query).splitlines()
        return [row.split("|") for row in rows if row]

    def newest_ids(self):
        chat = self.sql("SELECT coalesce(max(id), 0) FROM chat_chatmessage")[0][0]
        notes = self.sql("SELECT coalesce(max(id), 0) FROM notifications_notification")[0][0]
        return int(chat), int(notes)

    def connect_members(self):
        """Every member, spread over the client processes, resuming from now."""
        self.start_chat, self.start_notes = self.newest_ids()
        feeds = round(self.plan.sockets * self.plan.feed_share)
        members, self.keys = [], []
        users = list(self.tokens)
        for n in range(self.plan.sockets):
            if n < feeds:
                user = users[n % len(users)]
                bearer = [("Authorization", f"Bearer {self.tokens[user]}")]
                members.append(("/ws/notifications/", self.start_notes, bearer))
                self.keys.append(("user", user))
            else:
                room = f"load-{n % self.plan.rooms}"
                members.append((f"/ws/chat/{room}/", self.start_chat, []))
                self.keys.append(("room", room))
        order = list(range(len(members)))
        random.shuffle(order)  # each process gets a mix of rooms and feeds
        self.keys = [self.keys[i] for i in order]
        members = [members[i] for i in order]
        shares = self.pool.split(len(members))
        per_worker, start = [], 0
        for share in shares:
            per_worker.append(
                ("127.0.0.1", self.stack.port, members[start : start + share],
                 self.plan.connect_rate / len(shares))
            )  # fmt: skip
            start += share
        self.worker_keys = [self.keys[sum(shares[:i]) : sum(shares[: i + 1])]
                            for i in range(len(shares))]  # fmt: skip
        opened = sum(self.pool.call("start", per_worker=per_worker))
        if opened != len(members):
            raise RuntimeError(f"only {opened} of {len(members)} members opened")

    # -- load ------------------------------------------------------------------------------

    def start_posting(self):
        self.posting = Posting(self.stack, self.plan, self.tokens)
        self.posting.start()

    def stop_posting(self):
        counts = self.posting.stop()
        self.posting = None
        return counts

    # -- events ----------------------------------------------------------------------------

    def daphnes(self):
        return sorted(name for name in self.stack.programs() if name.startswith("daphne-"))

    def rolling_restart(self):
        """The documented procedure: one daphne after another, each serving again first."""
        for name in self.daphnes():
            old = self.stack.pid(name)
            self.stack.stop_program(name)
            self.stack.start_program(name)
            self.stack.wait_running(name, old)

    def gunicorn_reload(self):
        os.kill(self.stack.pid("gunicorn"), signal.SIGHUP)

    def nginx_reload(self):
        os.kill(self.stack.pid("nginx"), signal.SIGHUP)

    def kill_daphne(self):
        name = self.daphnes()[0]
        old = self.stack.pid(name)
        os.kill(old, signal.SIGKILL)
        self.stack.wait_running(name, old, timeout=RECOVERY_TIMEOUT)

    def redis_restart(self):
        self.stack.stop_program("redis")
        self.stack.start_program("redis")
        self.stack.wait_running("redis")

    def postgres_restart(self):
        self.postgres.restart()

    # -- one event, measured ---------------------------------------------------------------

    def run(self):
        """Connect every member, then each planned event under load; the phases."""
        self.connect_members()
        for method in self.plan.events:
            self.phases.append(self.measure(method))
        return self.phases

    def measure(self, method):
        event = next(name for name, m in EVENTS if m == method)
        phase = Phase(event, time.time())
        sampler = RssSampler(self.ws_tier_pids)
        self.start_posting()
        try:
            time.sleep(SETTLE_SECONDS)
            sampler.start()
            getattr(self, method)()
            opened = self.until_open()
            time.sleep(SETTLE_SECONDS)
        finally:
            phase.posts, phase.pushes, phase.push_errors = self.stop_posting()
            phase.ws_peak_rss_kib = sampler.stop()
        phase.ended = time.time()
        if opened != len(self.keys):
            raise RuntimeError(f"after {event}: {opened} of {len(self.keys)} members open")
        self.verify(phase)
        return phase

    def ws_tier_pids(self):
        return [
            pid for name, (_, pid) in self.stack.programs().items() if name.startswith("daphne")
        ]

    def until_open(self):
        return sum(self.pool.call("until_open", RECOVERY_TIMEOUT))

    def expected(self):
        """{("room", name) or ("user", username): stored ids since the members joined}."""
        expected = {}
        for room, id_ in self.sql(
            f"SELECT room, id FROM chat_chatmessage WHERE id > {self.start_chat} ORDER BY id"
        ):
            expected.setdefault(("room", room), []).append(int(id_))
        for username, id_ in self.sql(
            "SELECT u.username, n.id FROM notifications_notification n JOIN users_user u "
            f"ON u.id = n.user_id WHERE n.id > {self.start_notes} ORDER BY n.id"
        ):
            expected.setdefault(("user", username), []).append(int(id_))
        return expected

    def verify(self, phase):
        """Wait (bounded) until every member has every stored message, then count."""
        expected = self.expected()
        wanted = [[len(expected.get(key, [])) for key in keys] for keys in self.worker_keys]

        def everyone_has_everything():
            counts = self.pool.call("received_counts")
            return all(c >= w for got, want in zip(counts, wanted, strict=True)
                       for c, w in zip(got, want, strict=True))  # fmt: skip

        with contextlib.suppress(TimeoutError):
            wait_until(
                everyone_has_everything, "every member caught up", VERIFY_TIMEOUT, interval=0.5
            )
        summaries = self.pool.call("summaries")
        previous = {event.event: event for event in self.phases}
        for keys, summary in zip(self.worker_keys, summaries, strict=True):
            for key, member in zip(keys, summary["members"], strict=True):
                self.count_member(phase, key, member, expected.get(key, []))
            phase.failed_handshakes += sum(
                phase.started <= t <= phase.ended for t in summary["handshake_failures"]
            )
        # Copies and inversions are counted since the start: this phase's are the new ones.
        phase.delivered_twice -= sum(p.delivered_twice for p in previous.values())
        phase.out_of_order -= sum(p.out_of_order for p in previous.values())

    def count_member(self, phase, key, member, expected):
        received = member["received"]
        shown = list(dict.fromkeys(received))  # what the page shows: each id once
        phase.lost += len(set(expected) - set(shown))
        phase.shown_twice += len(shown) - len(set(shown))  # 0 by construction, checked
        phase.delivered_twice += len(received) - len(shown)
        phase.out_of_order += sum(1 for a, b in itertools.pairwise(shown) if b < a)
        for dropped_at, _code, back_at, caught_up_at in member["drops"]:
            if not phase.started <= dropped_at <= phase.ended:
                continue
            phase.dropped += 1
            if back_at is not None:
                phase.back.append(back_at - dropped_at)
            if key[0] == "room" and caught_up_at is not None:
                phase.caught_up.append(caught_up_at - dropped_at)


class RssSampler:
    """The peak resident memory of the websocket tier, sampled in a thread."""

    def __init__(self, pids):
        self.pids = pids
        self.peak = 0
        self.running = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def start(self):
        self.running.set()
        self.thread.start()

    def _sample(self):
        while self.running.is_set():
            with contextlib.suppress(Exception):  # a process between restarts
                self.peak = max(self.peak, rss_kib(self.pids()))
            time.sleep(RSS_INTERVAL)

    def stop(self):
        self.running.clear()
        if self.thread.is_alive():
            self.thread.join(5)
        return self.peak


class Posting:
    """Chat posters (one websocket per room, reconnecting) and an HTTP pusher, at steady
    rates, in a thread with its own event loop."""

    def __init__(self, stack, plan, tokens):
        self.stack, self.plan, self.tokens = stack, plan, tokens
        self.loop = asyncio.new_event_loop()
        self.stopping = None
        self.posts = self.pushes = self.push_errors = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self.thread.start()
        self.stopping = asyncio.run_coroutine_threadsafe(self._stopping_event(), self.loop).result()
        self.done = asyncio.run_coroutine_threadsafe(self._run(), self.loop)

    async def _stopping_event(self):
        return asyncio.Event()

    def stop(self):
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.done.result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        return self.posts, self.pushes, self.push_errors

    async def _run(self):
        rooms = [f"load-{n}" for n in range(self.plan.rooms)]
        per_room = self.plan.chat_rate / len(rooms)
        await asyncio.gather(*(self._post(room, per_room) for room in rooms), self._push())

    async def _post(self, room, rate):
        """Post to ``room`` at ``rate``/s over one websocket, reconnecting if it drops."""
        next_at = time.monotonic() + random.random() / rate
        while not self.stopping.is_set():
            try:
                async with self.stack.websocket(f"/ws/chat/{room}/") as ws:
                    drain = asyncio.create_task(self._drain(ws))
                    try:
                        while not self.stopping.is_set():
                            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                            await ws.send(json.dumps({"message": f"load {self.posts}"}))
                            self.posts += 1
                            next_at += 1 / rate
                    finally:
                        drain.cancel()
            except Exception:  # noqa: BLE001 - a dropped poster reconnects, like any client
                await asyncio.sleep(0.2)

    async def _drain(self, ws):
        async for _ in ws:
            pass

    async def _push(self):
        """Open loop: a push every 1/rate s, whether the last one has answered or not."""
        users, pending = list(self.tokens), set()
        next_at = time.monotonic()
        while not self.stopping.is_set():
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += 1 / self.plan.push_rate
            push = asyncio.ensure_future(self._push_one(random.choice(users)))
            pending.add(push)
            push.add_done_callback(pending.discard)
        await asyncio.gather(*pending)

    async def _push_one(self, user):
        self.pushes += 1
        try:
            status, _ = await asyncio.to_thread(self.stack.notify, self.tokens[user], "load")
        except OSError:
            status = None
        if status != 201:
            self.push_errors += 1


def table(phases):
    """The phases as a Markdown table."""
    rows = [phase.row() for phase in phases]
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join("–" if v is None else str(v) for v in row.values()) + " |")
    return "\n".join(lines)
