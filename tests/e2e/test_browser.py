"""The page at / in a real browser (headless Chromium) against the real stack through nginx.

Two people chatting, a notification crossing from one to the other, the page riding out
a daphne crash, and notifications arriving over Server-Sent Events where websockets are
blocked. Every wait is bounded (browser.TIMEOUT_MS, or RECOVERY_TIMEOUT for a restart).
"""

import os
import re
import signal
import time
import uuid
from pathlib import Path
from xmlrpc.client import Fault

import pytest
from e2e.browser import chromium, open_page
from playwright.sync_api import expect

REPO_DIR = Path(__file__).resolve().parents[2]
# Set by `make screenshot`; otherwise the screenshot goes to the test's temporary directory.
SCREENSHOT = os.environ.get("SCREENSHOT")
DEMO_PASSWORD = "demo-password"  # web/management/commands/demo_data.py, run by `up`
RECOVERY_TIMEOUT = 60
DAPHNES = ("daphne-1", "daphne-2")


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def pages(browser, stack):
    """``pages("alice", room="r")`` opens a signed-in page; every context is closed after."""
    opened = []

    def open_as(username, room=None, init_script=None):
        path = f"/?room={room}" if room else "/"
        page = open_page(browser, stack.url, username, DEMO_PASSWORD, path, init_script)
        opened.append(page)
        return page

    yield open_as
    for page in opened:
        page.context.close()


def room_name():
    return f"browser-{uuid.uuid4().hex[:8]}"


def send_message(page, text):
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def expect_live(page):
    expect(page.locator("#connection-status")).to_have_text("Connected")


def messages(page, text):
    return page.locator("#messages li", has_text=text)


def test_two_people_in_one_room_see_each_others_messages(pages, stack):
    room = room_name()
    alice = pages("alice", room)
    bob = pages("bob", room)
    expect_live(alice)
    expect_live(bob)

    send_message(alice, "hello from alice")
    expect(messages(bob, "hello from alice")).to_have_count(1)
    send_message(bob, "hi alice")
    expect(messages(alice, "hi alice")).to_have_count(1)
    expect(messages(alice, "hello from alice")).to_contain_text("alice")

    # History: a page opened later gets the room's messages, in order.
    late = pages("bob", room)
    expect(late.locator("#messages li .text")).to_have_text(["hello from alice", "hi alice"])
    assert alice.errors == [] and bob.errors == []  # no CSP violation, no script error


def test_a_room_is_picked_or_created_from_the_form(pages):
    page = pages("alice")
    room = room_name()
    page.get_by_label("Join or create a room").fill(room)
    page.get_by_label("Join or create a room").press("Enter")
    expect(page.locator("#room-title")).to_have_text(f"#{room}")
    expect(page.locator(f'#room-list a[data-room="{room}"]')).to_have_attribute(
        "aria-current", "page"
    )
    expect(page).to_have_url(re.compile(rf"\?room={room}$"))
    expect_live(page)
    send_message(page, "first!")
    expect(messages(page, "first!")).to_have_count(1)


def test_a_notification_sent_from_the_page_rings_the_other_users_bell(pages):
    alice = pages("alice")
    bob = pages("bob")
    expect_live(bob)
    text = f"build {uuid.uuid4().hex[:6]} passed"

    alice.get_by_label("To").select_option("bob")
    alice.get_by_label("Text").fill(text)
    alice.get_by_role("button", name="Send notification").click()
    expect(alice.locator("#notify-result")).to_have_text("Sent to bob.")

    expect(bob.locator("#bell-count")).to_be_visible()
    bob.get_by_role("button", name=re.compile("Notifications")).click()
    expect(bob.locator("#notification-list li", has_text=text)).to_have_count(1)
    expect(bob.locator("#bell-transport")).to_have_text("Live over a websocket")
    # Keyboard: Escape closes the panel and gives focus back to the bell.
    bob.keyboard.press("Escape")
    expect(bob.locator("#bell-panel")).to_be_hidden()
    expect(bob.get_by_role("button", name=re.compile("Notifications"))).to_be_focused()


# Two ways websockets fail in the wild: a browser (or extension, or policy) without them,
# and a proxy that refuses the upgrade (here every /ws/ URL is bent to a path that answers
# the handshake with 404, so each attempt fails without ever opening).
WEBSOCKET_BLOCKERS = {
    "no WebSocket in the browser": "delete window.WebSocket;",
    "upgrades refused on the way": """
        const Native = window.WebSocket;
        window.WebSocket = class extends Native {
            constructor(url, protocols) {
                super(String(url).replace("/ws/", "/no-ws/"), protocols);
            }
        };
    """,
}


@pytest.mark.parametrize("blocker", WEBSOCKET_BLOCKERS)
def test_notifications_arrive_over_sse_when_websockets_are_blocked(pages, stack, blocker):
    bob = pages("bob", init_script=WEBSOCKET_BLOCKERS[blocker])
    expect(bob.locator("#bell-button")).to_have_attribute("data-transport", "sse")
    bob.get_by_role("button", name=re.compile("Notifications")).click()
    expect(bob.locator("#bell-transport")).to_have_text("Live over Server-Sent Events")

    alice = pages("alice")
    for n in range(2):
        text = f"over sse {n} ({blocker})"
        alice.get_by_label("To").select_option("bob")
        alice.get_by_label("Text").fill(text)
        alice.get_by_role("button", name="Send notification").click()
        expect(alice.locator("#notify-result")).to_have_text("Sent to bob.")
        expect(bob.locator("#notification-list li", has_text=text)).to_have_count(1)


@pytest.fixture
def restore(stack):
    """Every daphne running again after the test, even if it fails."""
    yield
    stack.restore(DAPHNES)


def kill_and_keep_down(stack, name, timeout=RECOVERY_TIMEOUT):
    """kill -9 a daphne, then stop supervisord from restarting it until we say so."""
    os.kill(stack.pid(name), signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while stack.programs()[name][0] != "STOPPED":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not stopped within {timeout}s: {stack.programs()}")
        try:
            stack.stop_program(name)
        except Fault:  # between "exited" and "starting again": not stoppable this instant
            time.sleep(0.05)


def post_while_down(stack, room, texts):
    """Store messages the way the chat consumer does, while no daphne is up to post through."""
    stack.manage(
        "shell",
        "-c",
        "from chat.services import post_message; "
        "from django.contrib.auth import get_user_model; "
        "bob = get_user_model().objects.get(username='bob'); "
        f"[post_message({room!r}, bob, text) for text in {texts!r}]",
    )


def alice_in_a_new_room(pages, first_message):
    """alice's page, live, in a new room where she posted ``first_message``: (room, page)."""
    room = room_name()
    alice = pages("alice", room)
    expect_live(alice)
    send_message(alice, first_message)
    expect(messages(alice, first_message)).to_have_count(1)
    return room, alice


def test_the_page_shows_reconnecting_after_a_daphne_crash_and_recovers_the_missed_messages(
    pages, stack, restore
):
    room, alice = alice_in_a_new_room(pages, "before the crash")

    for name in DAPHNES:
        kill_and_keep_down(stack, name)
    expect(alice.locator("#connection-status")).to_have_text("Reconnecting…")
    missed = [f"missed {n}" for n in range(3)]
    post_while_down(stack, room, missed)
    status, _ = stack.notify(stack.issue_token("alice"), "sent while daphne was down")
    assert status == 201  # gunicorn stores it; no socket is there to push it to

    started = time.monotonic()
    for name in DAPHNES:
        stack.start_program(name)
    expect_live_within = RECOVERY_TIMEOUT * 1000
    expect(alice.locator("#connection-status")).to_have_text(
        "Connected", timeout=expect_live_within
    )
    expect(alice.locator("#messages li .text")).to_have_text(
        ["before the crash", *missed], timeout=expect_live_within
    )
    print(f"page live again {time.monotonic() - started:.2f} s after daphne was started")
    # The bell resumed too (?since= on /ws/notifications/), still over the websocket.
    expect(alice.locator("#notification-list li", has_text="while daphne was down")).to_have_count(
        1
    )
    expect(alice.locator("#bell-button")).to_have_attribute("data-transport", "websocket")

    send_message(alice, "after the crash")
    expect(messages(alice, "after the crash")).to_have_count(1)


def store_unannounced(stack, statement):
    """Rows bulk-created in manage.py shell: stored, never broadcast."""
    stack.manage("shell", "-c", "from django.contrib.auth import get_user_model; " + statement)


def test_the_page_starts_over_when_it_missed_too_much_to_replay(pages, stack, restore):
    """Past the replay limits (1,000 messages, 200 notifications) the server says
    "resume.reset" and sends the latest: the page drops what it showed and shows those."""
    room, alice = alice_in_a_new_room(pages, "before the gap")

    for name in DAPHNES:
        stack.stop_program(name)  # 1012: the page reconnects, and fails until restored
    expect(alice.locator("#connection-status")).to_have_text("Reconnecting…")
    store_unannounced(
        stack,
        "from chat.models import ChatMessage; "
        f"ChatMessage.objects.bulk_create(ChatMessage(room={room!r}, username='bob', "
        "message=f'missed {n}') for n in range(1050)); "
        "from notifications.models import Notification; "
        "alice = get_user_model().objects.get(username='alice'); "
        "Notification.objects.bulk_create(Notification(user=alice, text=f'gap {n}') "
        "for n in range(250))",
    )
    stack.restore(DAPHNES)

    expect(alice.locator("#connection-status")).to_have_text(
        "Connected", timeout=RECOVERY_TIMEOUT * 1000
    )
    expect(alice.locator("#chat-error")).to_have_text(
        "You missed more than 1000 messages: showing the latest."
    )
    texts = alice.locator("#messages li .text")
    expect(texts).to_have_text([f"missed {n}" for n in range(1000, 1050)])
    bell = alice.locator("#notification-list li")
    expect(bell).to_have_text([f"gap {n}" for n in range(230, 250)])
    send_message(alice, "after the gap")
    expect(messages(alice, "after the gap")).to_have_count(1)


def test_the_page_on_a_phone_and_the_screenshot(pages, tmp_path):
    """The README's screenshot (`make screenshot` writes docs/screenshot.png), and the
    same page at a phone's width with nothing wider than the screen."""
    room = "design-review"
    bob = pages("bob", room)
    alice = pages("alice", room)
    expect_live(alice)
    for page, text in [
        (alice, "Deploy at 5, anyone?"),
        (bob, "Sure: daphne restarts are graceful now, sockets come back on their own."),
        (alice, "Great, I'll ping you when it's out."),
    ]:
        send_message(page, text)
        expect(messages(alice, text).last).to_be_visible()
    bob.get_by_label("To").select_option("alice")
    bob.get_by_label("Text").fill("Your export is ready")
    bob.get_by_role("button", name="Send notification").click()
    expect(alice.locator("#bell-count")).to_be_visible()
    alice.screenshot(path=SCREENSHOT or tmp_path / "screenshot.png")

    alice.set_viewport_size({"width": 390, "height": 844})
    width = alice.evaluate("document.documentElement.scrollWidth")
    assert width <= 390


def test_reconnect_delays_double_with_jitter_up_to_a_cap(pages):
    """backoff.js, as the browser runs it: [lowest, highest] delay for attempts 0 to 7."""
    page = pages("alice")
    bounds = page.evaluate(
        """async () => {
            const { backoffDelay } = await import("/static/web/js/backoff.js");
            return [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => [
                backoffDelay(attempt, { random: () => 0 }),
                backoffDelay(attempt, { random: () => 1 }),
            ]);
        }"""
    )
    ceilings = [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]
    assert bounds == [[ceiling / 2, ceiling] for ceiling in ceilings]
