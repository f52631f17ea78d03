"""The resume and catch-up reads stay index scans at production sizes, on PostgreSQL.

Every reconnect (`?since=`), every catch-up after a Redis outage and every page load runs
these reads; on a table of a million rows a sequential scan would make each one cost a
full read of the table. The test fills a database on the session's private PostgreSQL
server with 1,000,000 chat messages and 1,000,000 notifications, runs the project's own
read functions, and asks PostgreSQL how it executes each query they sent.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = str(Path(__file__).resolve().parents[2] / "app" / "manage.py")
ROWS = 1_000_000
ROOMS = 1_000
USERS = 1_000

FILL = f"""
INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT '!', false, 'user' || i, '', '', '', false, true, now()
FROM generate_series(1, {USERS}) AS i;
INSERT INTO chat_chatmessage (room, username, message, created)
SELECT 'room-' || (i % {ROOMS}), 'someone', 'message ' || i, now()
FROM generate_series(1, {ROWS}) AS i;
INSERT INTO notifications_notification (user_id, text, created)
SELECT (SELECT min(id) FROM users_user) + (i % {USERS}), 'notification ' || i, now()
FROM generate_series(1, {ROWS}) AS i;
ANALYZE;
"""

# Runs the reads as the consumers do and prints, for each query they sent, its plan.
EXPLAIN_READS = """
import json
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from chat.services import room_stream
from notifications.services import latest_notification_id, user_stream
from realtime.replay import latest, page_after, too_far_behind

user = get_user_model().objects.order_by("id")[500]
room, feed = room_stream("room-7"), user_stream(user.id)
with CaptureQueriesContext(connection) as captured:
    latest(room)                                # a page load, a socket without ?since=
    too_far_behind(room, 990_000)               # a resume after a short absence...
    page_after(room, 990_000, 200)              # ...and its first page
    too_far_behind(room, 0)                     # a resume from the start
    page_after(room, 0, 200)
    latest_notification_id(user.id)             # a new notification socket
    latest(feed)                                # the page's bell
    too_far_behind(feed, 990_000)               # its resume
    page_after(feed, 990_000, 200)
    page_after(feed, 0, 200)
plans = []
with connection.cursor() as cursor:
    for query in captured.captured_queries:
        cursor.execute("EXPLAIN " + query["sql"])
        plans.append({"sql": query["sql"], "plan": "\\n".join(r[0] for r in cursor.fetchall())})
print(json.dumps(plans))
"""


@pytest.fixture(scope="module")
def million_rows(postgres_server):
    """A migrated database with a million chat messages and a million notifications."""
    url = postgres_server.create_database("plans")
    environment = {**os.environ, "DATABASE_URL": url}
    manage(environment, "migrate", "--noinput")
    postgres_server.psql("plans", FILL)
    return environment


def manage(environment, *args):
    result = subprocess.run(
        [sys.executable, MANAGE, *args],
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_resume_and_catch_up_reads_use_an_index_at_a_million_rows(million_rows):
    plans = json.loads(manage(million_rows, "shell", "-c", EXPLAIN_READS).splitlines()[-1])
    reads = [p for p in plans if "chat_chatmessage" in p["sql"] or "notifications_" in p["sql"]]
    assert len(reads) >= 10, plans
    for read in reads:
        print(read["sql"], read["plan"], sep="\n", end="\n\n")
        index = "chat_room_id" if "chat_chatmessage" in read["sql"] else "notification_user_id"
        # The index that leads with the room (the user), never a scan that reads rows of
        # other rooms (users) and filters them out.
        assert index in read["plan"], read
        assert "Seq Scan" not in read["plan"] and "Filter:" not in read["plan"], read
