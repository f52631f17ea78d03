"""Playwright for Python driving Debian's Chromium (/usr/bin/chromium), never a download."""

import contextlib
import shutil
from urllib.parse import quote

from playwright.sync_api import expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 15_000  # every wait in the browser tests is bounded by this (or says so)
# Containers without user namespaces need --no-sandbox; /dev/shm is often tiny there.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]

expect.set_options(timeout=TIMEOUT_MS)


@contextlib.contextmanager
def chromium(args=()):
    """A headless Chromium (with more command-line ``args``), closed with its processes
    whatever happens."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, base_url, username, password, path="/", init_script=None):
    """A new browser context signed in through the page's own form, at ``path``.

    Console errors (a Content-Security-Policy violation, an exception in a module) are
    collected in ``page.errors``.
    """
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.errors = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and page.errors.append(f"{message.text} ({message.location.get('url')})")
        ),
    )
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"/login/?next={quote(path, safe='')}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#username")).to_have_text(username)
    return page
