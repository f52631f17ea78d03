"""The README's quick start, verbatim, on a fresh clone, ending in a real browser.

What a new user does: clone, run the commands of "Two commands" (`make up`), open the
address it prints and sign in as the demo users it names, in two browsers ("The page"),
chat both ways, send a notification from one to the other through the page's form, run
`make smoke`, then `make down`. No extra environment, no test-only settings: the `.env`
is the one `make up` makes from `.env.example`, on the port it sets (8080), so this test
needs that port free, as a fresh machine has it. When the README's commands change,
``test_the_readme_still_gives_these_commands`` fails until this test follows them.
"""

import re
import subprocess
import uuid
from pathlib import Path

import pytest
from e2e.browser import chromium, open_page
from e2e.localstack import REPO_DIR
from playwright.sync_api import expect

from tests.plugins.session_environment import users_environment

# What this test runs, in order, as the README gives them.
QUICK_START = ["make up"]
# A first `make up` creates .venv from the pinned requirements: minutes on a cold cache.
FIRST_UP_TIMEOUT = 900
COMMAND_TIMEOUT = 300


def readme_section(title):
    readme = (REPO_DIR / "README.md").read_text()
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_still_gives_these_commands():
    block = re.search(r"```sh\n(.*?)```", readme_section("Two commands"), re.S)[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["make up", "make test"]  # make test is this suite: not run again
    assert commands[: len(QUICK_START)] == QUICK_START
    page = readme_section("The page")
    assert "Open it in two browsers, sign in as each" in page
    assert "send one to yourself or to the other user" in page
    table = readme_section("Two commands")
    assert "| `make smoke` |" in table and "| `make down` |" in table


def processes_in(directory):
    """Live processes working in, or started from, ``directory``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = str((proc / "cwd").readlink())
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            zombie = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and (cwd.startswith(str(directory)) or str(directory) in cmdline):
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


@pytest.fixture
def fresh_clone(tmp_path):
    """HEAD cloned as a user clones it; `make down` there afterwards, whatever happened."""
    clone = tmp_path / "realtime"
    subprocess.run(["git", "clone", "-q", str(REPO_DIR), str(clone)], check=True, timeout=120)
    yield clone
    make(clone, "down")


def make(clone, target, timeout=COMMAND_TIMEOUT):
    """``make <target>`` in the clone, with the user's environment."""
    return subprocess.run(
        ["make", target], cwd=clone, env=users_environment(),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def chat(sender, receiver, text):
    box = sender.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    expect(receiver.locator("#messages li", has_text=text)).to_have_count(1)


def test_a_new_user_signs_in_and_chats_on_the_first_try(fresh_clone):
    up = make(fresh_clone, "up", timeout=FIRST_UP_TIMEOUT)
    assert up.returncode == 0, up.stdout + up.stderr
    # The last line says where to go and as whom: that is all a user has to go on.
    sign_in = re.search(
        r"open (http://\S+)/\s+and sign in as (\w+) or (\w+), password (\S+)", up.stdout
    )
    assert sign_in, up.stdout
    url, first, second, password = sign_in.groups()
    assert url == "http://127.0.0.1:8080"
    assert (fresh_clone / ".env").read_text() == (fresh_clone / ".env.example").read_text()

    smoke = make(fresh_clone, "smoke")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    results = [
        line.split()[:2] for line in smoke.stdout.splitlines() if line[:4] in ("PASS", "FAIL")
    ]
    assert results == [["PASS", check] for check in ("healthz", "echo", "chat", "push", "ticket")]

    with chromium() as browser:
        alice = open_page(browser, url, first, password)
        bob = open_page(browser, url, second, password)
        for page in (alice, bob):
            expect(page.locator("#connection-status")).to_have_text("Connected")
        nonce = uuid.uuid4().hex[:6]
        chat(alice, bob, f"hello {second}, {nonce}")
        chat(bob, alice, f"hi {first}, {nonce}")

        alice.get_by_label("To").select_option(second)
        alice.get_by_label("Text").fill(f"a notification for {second}, {nonce}")
        alice.get_by_role("button", name="Send notification").click()
        expect(alice.locator("#notify-result")).to_have_text(f"Sent to {second}.")
        bob.get_by_role("button", name=re.compile("Notifications")).click()
        expect(bob.locator("#notification-list li", has_text=nonce)).to_have_count(1)

        # Checking the deployment left no room behind that users see.
        expect(bob.locator("#room-list")).not_to_contain_text("smoke")
        assert alice.errors == [] and bob.errors == []

    down = make(fresh_clone, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "nothing left running" in down.stdout
    assert processes_in(fresh_clone) == []
