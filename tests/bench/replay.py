#!/usr/bin/env python
"""What resuming costs a daphne: a 100,000-message room, replayed to clients that resume.

    .venv/bin/python tests/bench/replay.py [--messages 100000] [--out replay.json]

Starts the stack on free ports in a temporary directory (stopped at the end, also on
failure), stores a room of --messages messages (bulk_create: no broadcast), then talks
straight to daphne-1's socket, so every figure is one process's:

- a resume of 1,000 messages of 4,000 characters by a client that reads nothing (a slow
  reader): how much daphne-1's memory grew, i.e. how much it buffered for it;
- one resume from the start (?since=0): time to the first frame and to the last, frames
  received, and daphne-1's resident memory before and at its peak;
- ten such resumes at once (what a probe did), while a new client opens an echo socket and
  another loads a small room's history: how long each waited, and the memory peak;
- ten resumes of 1,000 messages each at once (within the replay limit).

Figures on a shared machine are noisy: run it on the code before and after a change, in
the same conditions, and compare.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for e2e.localstack

from e2e.localstack import LocalStack, free_port  # noqa: E402

BIG_ROOM, SMALL_ROOM, WIDE_ROOM = "replay-big", "replay-small", "replay-wide"
QUIET = 2.0  # a replay has ended when nothing arrives for this long


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """The highest resident memory of ``pid`` while the block runs (sampled every 20 ms)."""

    def __init__(self, pid):
        self.pid, self.peak, self.task = pid, 0.0, None

    async def sample(self):
        while True:
            self.peak = max(self.peak, rss_mib(self.pid))
            await asyncio.sleep(0.02)

    async def __aenter__(self):
        self.before = rss_mib(self.pid)
        self.task = asyncio.create_task(self.sample())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        self.peak = max(self.peak, rss_mib(self.pid))


def fill(stack, room, count, length):
    """``count`` messages of ``length`` characters in ``room``: the ids, oldest first."""
    statement = (
        "import json; from chat.models import ChatMessage; ids = []\n"
        f"for start in range(0, {count}, 5000):\n"
        f"    rows = [ChatMessage(room={room!r}, username='bench', message='x' * {length})"
        f" for _ in range(start, min(start + 5000, {count}))]\n"
        "    ids += [row.id for row in ChatMessage.objects.bulk_create(rows)]\n"
        "print(json.dumps([ids[0], ids[-1]]))"
    )
    return json.loads(stack.manage("shell", "-c", statement).strip().splitlines()[-1])


async def resume(stack, room, since, read=True):
    """Frames of a resume straight to daphne-1: (seconds to the first, to the last, count)."""
    started = time.monotonic()
    first = last = None
    count = 0
    async with stack.daphne_websocket(1, f"/ws/chat/{room}/?since={since}", max_size=None) as ws:
        if not read:
            await asyncio.sleep(QUIET * 3)
            return None
        while True:
            try:
                await asyncio.wait_for(ws.recv(), QUIET if first else 60)
            except TimeoutError:
                break
            last = time.monotonic() - started
            first = first or last
            count += 1
    return first, last, count


async def first_frame_after(stack, path):
    """Seconds from opening ``path`` on daphne-1 to its first frame."""
    started = time.monotonic()
    async with stack.daphne_websocket(1, path) as ws:
        await asyncio.wait_for(ws.recv(), 60)
        return time.monotonic() - started


async def bystanders(stack, delay=0.5):
    """A new echo socket and a small room's history, opened ``delay`` s into a load."""
    await asyncio.sleep(delay)
    results = await asyncio.gather(
        first_frame_after(stack, "/ws/echo/"),
        first_frame_after(stack, f"/ws/chat/{SMALL_ROOM}/"),
        return_exceptions=True,
    )
    return [round(r, 3) if isinstance(r, float) else repr(r) for r in results]


async def measure(stack, big_ids, wide_ids):
    pid = stack.pid("daphne-1")
    results = {}
    # First, while the process is small: memory freed by a bigger load would be reused.
    async with PeakMemory(pid) as memory:
        await resume(stack, WIDE_ROOM, wide_ids[0] - 1, read=False)
    results["slow reader, 1,000 x 4,000 characters"] = {
        "rss_before_mib": round(memory.before, 1),
        "rss_peak_mib": round(memory.peak, 1),
    }
    async with PeakMemory(pid) as memory:
        first, last, count = await resume(stack, BIG_ROOM, 0)
    results["one resume from 0"] = {
        "first_frame_s": round(first, 3), "last_frame_s": round(last, 3), "frames": count,
        "rss_before_mib": round(memory.before, 1), "rss_peak_mib": round(memory.peak, 1),
    }  # fmt: skip
    async with PeakMemory(pid) as memory:
        *replays, waits = await asyncio.gather(
            *(resume(stack, BIG_ROOM, 0) for _ in range(10)), bystanders(stack)
        )
    results["ten resumes from 0 at once"] = {
        "slowest_first_frame_s": round(max(r[0] for r in replays), 3),
        "slowest_last_frame_s": round(max(r[1] for r in replays), 3),
        "frames_each": sorted({r[2] for r in replays}),
        "new_echo_socket_waited_s": waits[0],
        "new_history_load_waited_s": waits[1],
        "rss_before_mib": round(memory.before, 1),
        "rss_peak_mib": round(memory.peak, 1),
    }
    async with PeakMemory(pid) as memory:
        *replays, waits = await asyncio.gather(
            *(resume(stack, BIG_ROOM, big_ids[1] - 1000) for _ in range(10)), bystanders(stack)
        )
    results["ten resumes of 1,000 at once"] = {
        "slowest_last_frame_s": round(max(r[1] for r in replays), 3),
        "frames_each": sorted({r[2] for r in replays}),
        "new_echo_socket_waited_s": waits[0],
        "new_history_load_waited_s": waits[1],
        "rss_peak_mib": round(memory.peak, 1),
    }
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replay-", dir="/tmp") as scratch:
        stack = LocalStack(Path(scratch) / "var", free_port(), POST_RATE_LIMIT="0")
        stack.up()
        try:
            big_ids = fill(stack, BIG_ROOM, args.messages, 100)
            wide_ids = fill(stack, WIDE_ROOM, 1000, 4000)
            fill(stack, SMALL_ROOM, 20, 20)
            results = asyncio.run(measure(stack, big_ids, wide_ids))
        finally:
            stack.down()
    text = json.dumps({"messages": args.messages, **results}, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
