"""Where the servers spend their time: py-spy, summarised as markdown.

py-spy samples running processes from outside (no code change, no restart) while the
benchmark drives them. Two profiles of the tuned stack:

- fan-out: every daphne process while a chat room of N members receives one message
  after another;
- push: the gunicorn workers and daphne processes while POST /api/notifications/ runs at
  a steady rate.

Each summary lists the functions with the most samples on top of the stack (self time)
and on the stack at all (inclusive time), over all the processes sampled.
"""

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench import measure
from e2e.localstack import children

TOP = 25
RATE = 250  # samples a second


def py_spy():
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def record(pids, seconds, work):
    """Run ``work()`` repeatedly while py-spy samples ``pids``: (stacks, runs, errors)."""
    scratch = Path(tempfile.mkdtemp(prefix="py-spy-"))
    recorders = []
    try:
        for pid in pids:
            recorders.append(
                subprocess.Popen(
                    [
                        py_spy(),
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(seconds),
                        "--rate",
                        str(RATE),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(scratch / f"{pid}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
        deadline, runs = time.monotonic() + seconds, 0
        while time.monotonic() < deadline and all(r.poll() is None for r in recorders):
            work(runs)
            runs += 1
        errors = [r.communicate(timeout=seconds + 30)[1] for r in recorders]
        stacks = Counter()
        for output in scratch.glob("*.txt"):
            for line in output.read_text().splitlines():
                frames, _, count = line.rpartition(" ")
                stacks[frames] += int(count)
        return stacks, runs, errors
    finally:
        for recorder in recorders:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def fan_out_profile(pool, target, members, seconds):
    """Markdown: ``target``'s websocket tier during repeated fan-outs to ``members``."""
    room = f"profile{uuid.uuid4().hex[:8]}"
    measure.open_members(pool, "profile", target, target.chat_path(room), members)
    try:
        stacks, messages, errors = record(
            target.ws_tier_pids(),
            seconds,
            lambda n: measure.fan_out_once(pool, "profile", target, "ws", f"profile-{n}"),
        )
    finally:
        pool.call("close", "profile")
    return summarise(
        "the tuned stack's daphne processes during fan-out",
        f"every daphne process for {seconds} s while {messages} messages went to a chat room "
        f"of {members} members",
        stacks,
        errors,
    )


def push_profile(pool, target, rate, seconds):
    """Markdown: gunicorn and daphne while pushes run at ``rate``/s for ``seconds``."""
    gunicorn = children(target.stack.pid("gunicorn"))
    requests = [target.push_request(f"push-{i}") for i in range(int(rate * seconds))]

    def push(_):
        pool.call("push", "127.0.0.1", target.port, *target.push_socket(), requests, rate,
                  measure.COLLECT_TIMEOUT, worker=0)  # fmt: skip

    stacks, _, errors = record([*gunicorn, *target.ws_tier_pids()], seconds, push)
    return summarise(
        "the tuned stack's gunicorn workers and daphne processes during pushes",
        f"{len(gunicorn)} gunicorn workers and every daphne process for {seconds} s while "
        f"POST /api/notifications/ ran at {rate}/s, each pushed to one socket",
        stacks,
        errors,
    )


def summarise(title, what, stacks, errors):
    total = sum(stacks.values())
    lines = [
        f"# Profile: {title}",
        "",
        f"py-spy (`record --format raw --rate {RATE} --nonblocking`) on {what} (written by "
        f"`make bench`; {total} samples; idle threads are not sampled).",
        "",
    ]
    if not total:
        return "\n".join([*lines, "No samples: py-spy failed.", "", "```", *errors, "```", ""])
    own, inclusive = Counter(), Counter()
    for frames, count in stacks.items():
        names = [frame.split(" (", 1)[0] + frame_place(frame) for frame in frames.split(";")]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    for heading, counter in (("Self time", own), ("Inclusive time", inclusive)):
        lines += [f"## {heading} (top {TOP})", "", "| % | function (file) |", "|---:|---|"]
        for name, count in counter.most_common(TOP):
            lines.append(f"| {100 * count / total:.1f} | `{name}` |")
        lines.append("")
    return "\n".join(lines)


def frame_place(frame):
    """' (module.py)' from py-spy's 'function (path/module.py:line)'."""
    _, _, place = frame.partition(" (")
    path = place.rsplit(":", 1)[0].rstrip(")")
    return f" ({'/'.join(Path(path).parts[-2:])})" if path else ""
