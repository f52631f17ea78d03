"""Where a daphne spends its time during fan-out: py-spy, summarised as markdown.

py-spy samples the running daphne processes from outside (no code change, no restart)
while a room of N members receives one message after another. The summary lists the
functions with the most samples on top of the stack (self time) and on the stack at all
(inclusive time), over all daphne processes of the stack.
"""

import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from bench import measure

TOP = 25


def py_spy():
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def fan_out_profile(pool, target, members, seconds):
    """Markdown: the profile of ``target``'s websocket tier during repeated fan-outs."""
    room = f"profile{uuid.uuid4().hex[:8]}"
    measure.open_members(pool, "profile", target, target.chat_path(room), members)
    outputs, recorders = [], []
    try:
        for pid in target.ws_tier_pids():
            output = Path(f"/tmp/py-spy-{pid}-{uuid.uuid4().hex[:6]}.txt")
            outputs.append(output)
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
                        "250",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(output),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
        deadline = time.monotonic() + seconds
        messages = 0
        while time.monotonic() < deadline and all(r.poll() is None for r in recorders):
            measure.fan_out_once(pool, "profile", target, "ws", f"profile-{messages}")
            messages += 1
        errors = [r.communicate(timeout=seconds + 30)[1] for r in recorders]
        stacks = Counter()
        for output in outputs:
            if output.exists():
                for line in output.read_text().splitlines():
                    frames, _, count = line.rpartition(" ")
                    stacks[frames] += int(count)
    finally:
        for recorder in recorders:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()
        for output in outputs:
            output.unlink(missing_ok=True)
        pool.call("close", "profile")
    return summarise(stacks, members, messages, seconds, errors)


def summarise(stacks, members, messages, seconds, errors):
    total = sum(stacks.values())
    lines = [
        "# Profile: the tuned stack's daphne processes during fan-out",
        "",
        f"py-spy (`record --format raw --rate 250 --nonblocking`) on every daphne process for "
        f"{seconds} s while {messages} messages went to a chat room of {members} members "
        f"(written by `make bench`; {total} samples).",
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
    for title, counter in (("Self time", own), ("Inclusive time", inclusive)):
        lines += [f"## {title} (top {TOP})", "", "| % | function (file) |", "|---:|---|"]
        for name, count in counter.most_common(TOP):
            lines.append(f"| {100 * count / total:.1f} | `{name}` |")
        lines.append("")
    return "\n".join(lines)


def frame_place(frame):
    """' (module.py)' from py-spy's 'function (path/module.py:line)'."""
    _, _, place = frame.partition(" (")
    path = place.rsplit(":", 1)[0].rstrip(")")
    return f" ({'/'.join(Path(path).parts[-2:])})" if path else ""
