#!/usr/bin/env python3
"""Remove the demo, keep the kit: `make strip-demo`.

The demo is the chat rooms, the notifications (API, sockets, SSE) and the page that shows
them (app/chat, app/notifications, app/web), with their tests and the measurements built
on them (tests/bench, tests/load, tests/multihost). What stays is the kit: realtime/ (base
consumers, replay and catch-up, limits, re-authentication, the channel layer, health
checks), accounts/ (API tokens, tickets, sign-in throttling), the echo endpoint, the
deployment kit and the smoke test's core (healthz, echo). Then add your own app.

Besides whole directories and files (DEMO_PATHS), the demo's lines in shared files (the
settings, the URL and websocket routes, the smoke test, the Makefile, .env.example, a few
tests) sit between ``demo: begin`` and ``demo: end`` comments; they go too. Run it on a
fresh copy, then `make test`. The README and docs/ still describe the demo: rewrite them
for your project.
"""

import shutil
import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]

DEMO_PATHS = [
    "app/chat", "app/notifications", "app/web", "docs/screenshot.png",
    "tests/bad_frames.py", "tests/bench", "tests/load", "tests/multihost",
    "tests/containers/site.py", "tests/containers/test_development.py",
    "tests/containers/test_production.py",
    "tests/e2e/browser.py", "tests/e2e/test_bad_input_through_nginx.py",
    "tests/e2e/test_metrics_and_logs.py", "tests/e2e/prometheus.py",
    "tests/e2e/test_fast_path_end_to_end.py",
    "tests/e2e/test_browser.py", "tests/e2e/test_faults.py",
    "tests/e2e/test_production_like_stack.py", "tests/e2e/test_quick_start.py",
    "tests/e2e/test_security_through_nginx.py", "tests/e2e/test_sse_through_nginx.py",
    "tests/e2e/test_through_nginx.py",
    "tests/integration/test_push_on_commit.py", "tests/integration/test_query_plans.py",
    "tests/integration/test_concurrent_first_posts.py", "tests/integration/test_stream_order.py",
    "tests/unit/test_bad_input.py", "tests/unit/test_catch_up.py",
    "tests/unit/test_chat_consumer.py", "tests/unit/test_consumer_failures.py",
    "tests/unit/test_fast_path.py",
    "tests/unit/test_notification_consumer.py", "tests/unit/test_notification_stream.py",
    "tests/unit/test_notifications_api.py", "tests/unit/test_reauth.py",
    "tests/unit/test_sign_in.py", "tests/unit/test_throttle.py", "tests/unit/test_tickets.py",
    "tests/unit/test_web.py",
    # This script and its test: nothing is left to strip.
    "deploy/strip_demo.py", "tests/e2e/test_strip_demo.py",
]  # fmt: skip
BEGIN, END = "demo: begin", "demo: end"
SKIPPED_DIRECTORIES = {".git", ".venv", "var", "node_modules", "__pycache__"}


def marked_lines_removed(text):
    """``text`` without its demo blocks (marker lines included); None if it has none."""
    kept, inside, found = [], False, False
    for line in text.splitlines(keepends=True):
        marker = line.strip().lstrip("#").strip()
        if marker == BEGIN:
            inside = found = True
        elif marker == END:
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"a '{BEGIN}' without its '{END}'")
    return "".join(kept) if found else None


def text_files(root):
    for path in root.rglob("*"):
        if path.is_file() and not SKIPPED_DIRECTORIES & set(path.relative_to(root).parts):
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


def strip(root=REPO_DIR):
    """Remove the demo from the copy at ``root``; the paths changed."""
    changed = []
    for name in DEMO_PATHS:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        changed.append(name)
    for path, text in text_files(root):
        try:
            stripped = marked_lines_removed(text)
        except ValueError as error:
            sys.exit(f"strip-demo: {path.relative_to(root)}: {error}")
        if stripped is not None:
            path.write_text(stripped)
            changed.append(str(path.relative_to(root)))
    return changed


def main():
    changed = strip()
    for name in changed:
        print(f"    {name}")
    print("The demo is gone. Check with `make test`; the README and docs/ still describe it.")
    # What the removed lines leave behind: imports nothing uses any more, blank lines that
    # no longer separate anything.
    ruff = [str(REPO_DIR / ".venv/bin/ruff"), "--config", str(REPO_DIR / "app/ruff.toml")]
    code = [str(REPO_DIR / "app"), str(REPO_DIR / "deploy"), str(REPO_DIR / "tests")]
    subprocess.run([*ruff[:1], "check", "--quiet", "--fix", "--select", "F401,I001", *ruff[1:],
                    *code], check=False)  # fmt: skip
    subprocess.run([*ruff[:1], "format", "--quiet", *ruff[1:], *code], check=False)


if __name__ == "__main__":
    main()
