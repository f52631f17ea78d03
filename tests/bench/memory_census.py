#!/usr/bin/env python
"""What each open websocket holds in a daphne: RSS, objects by type, allocation sites.

    .venv/bin/python tests/bench/memory_census.py [--sockets 2000] [--json FILE]

Starts the local stack as the benchmarks do (tests/e2e/localstack.py, one daphne), then
swaps its daphne for the same launcher run by census_daphne.py (same environment, same
socket, so nginx and the settings are unchanged), and, with bare websocket clients
(bench/client.py) in one chat room through nginx:

1. RSS (VmRSS) at 0 sockets, after N, after 2N: growth per socket for each step, read
   before any census touches the heap (with the shipped garbage-collector settings);
2. a census at 2N (cyclic garbage waiting for a collection, then live objects by type);
3. every socket closed, a census at 0: live objects at 2N minus these, per socket;
4. tracemalloc started, N sockets opened again, a census: top allocation sites per socket.

Keep N small: the machine is shared.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for e2e.localstack
os.environ.update(DJANGO_ENV_FILE="", DJANGO_SETTINGS_MODULE="config.settings.local")

from bench.client import ClientPool, raise_open_files_limit  # noqa: E402
from bench.measure import OPEN_CONCURRENCY, SETTLE_TIMEOUT, rss_kib, wait_idle  # noqa: E402
from e2e.localstack import LocalStack, free_port  # noqa: E402
from polling import wait_until  # noqa: E402

CENSUS_DAPHNE = Path(__file__).with_name("census_daphne.py")
CLIENT_PROCESSES = 2
CENSUS_TIMEOUT = 300  # a traced census on a busy machine takes minutes
TOP = 30
PROTOCOL = "__main__.FastPathWebSocketProtocol"  # run_daphne's, run as __main__


class CensusDaphne:
    """The stack's daphne-1, replaced by census_daphne.py on the same socket."""

    def __init__(self, stack, census_file):
        self.stack, self.census_file = stack, Path(census_file)
        old = stack.pid("daphne-1")
        environment = Path(f"/proc/{old}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in environment if b"=" in item)
        stack.stop_program("daphne-1")
        bind = f"unix:{stack.run_dir / 'daphne-1.sock'}"
        log = open(stack.data_dir / "log" / "census-daphne.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, str(CENSUS_DAPHNE), str(census_file), "--bind", bind],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        wait_until(lambda: stack.accepting("daphne-1"), "the census daphne to listen", 60)

    def census(self):
        self.census_file.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR2)
        wait_until(self.census_file.exists, "the census", CENSUS_TIMEOUT)
        return json.loads(self.census_file.read_text())

    def census_without_sockets(self, timeout=CENSUS_TIMEOUT):
        """A census once the closed sockets are gone: daphne lets go of a connection's
        protocol a second or two after its consumer ended (its application checker), and
        a census taken earlier counted a third of them as still held."""

        def without_sockets():
            census = self.census()
            return census if not census["objects"].get(PROTOCOL, (0,))[0] else None

        return wait_until(without_sockets, "the closed sockets to be let go", timeout)

    def start_tracing(self):
        os.kill(self.pid, signal.SIGUSR1)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def open_sockets(pool, port, path, count):
    """Open ``count`` sockets to ``path``: how many opened (under tracemalloc, handshakes
    are slow enough for a few to time out; the figures divide by what opened)."""
    opened = pool.call(
        "open",
        per_worker=[
            ("census", "127.0.0.1", port, path, share, OPEN_CONCURRENCY)
            for share in pool.split(count)
        ],
    )
    return sum(o for o, _, _ in opened)


def per_socket(after, before, sockets):
    """{type: (count, bytes incl. __dict__s, __dict__ bytes)} per socket, biggest first."""
    rows = {}
    for name, (count, size, dict_size) in after.items():
        c0, s0, d0 = before.get(name, (0, 0, 0))
        rows[name] = ((count - c0) / sockets, (size + dict_size - s0 - d0) / sockets,
                      (dict_size - d0) / sockets)  # fmt: skip
    return sorted(rows.items(), key=lambda row: -row[1][1])


def print_types(title, rows):
    print(f"\n{title}\n{'objects':>8} {'bytes':>8} {'dict':>7}  type")
    total = sum(size for _, (_, size, _) in rows)
    for name, (count, size, dict_size) in rows[:TOP]:
        print(f"{count:8.2f} {size:8.0f} {dict_size:7.0f}  {name}")
    print(f"{'':8} {total:8.0f} {'':7}  total bytes per socket (all types)")


def measure(sockets, data_dir):
    stack = LocalStack(data_dir, free_port(), DAPHNE_INSTANCES="1")
    stack.up()
    daphne = pool = None
    try:
        daphne = CensusDaphne(stack, Path(data_dir) / "census.json")
        pool = ClientPool(CLIENT_PROCESSES)
        path = f"/ws/chat/census{uuid.uuid4().hex[:8]}/"
        held, rss = [0], []
        for step in range(3):
            if step:
                held.append(held[-1] + open_sockets(pool, stack.port, path, sockets))
            wait_idle([daphne.pid])
            rss.append(rss_kib([daphne.pid]))
        full = daphne.census()
        pool.call("close", "census")
        wait_idle([daphne.pid], SETTLE_TIMEOUT)
        empty = daphne.census_without_sockets()
        daphne.start_tracing()
        time.sleep(2)  # the signal is handled on the loop's next wake-up (within a second)
        traced_sockets = open_sockets(pool, stack.port, path, sockets)
        wait_idle([daphne.pid])
        traced = daphne.census()
        pool.call("close", "census")
        return {"held": held, "rss_kib": rss, "full": full, "empty": empty,
                "traced_sockets": traced_sockets, "traced": traced}  # fmt: skip
    finally:
        if pool is not None:
            pool.close()
        if daphne is not None:
            daphne.stop()
        stack.down()


def report(result):
    held, rss = result["held"], result["rss_kib"]
    print(f"RSS: {rss[0] / 1024:.1f} MiB at 0, {rss[1] / 1024:.1f} at {held[1]:,}, "
          f"{rss[2] / 1024:.1f} at {held[2]:,} sockets")  # fmt: skip
    first, second = (rss[1] - rss[0]) / held[1], (rss[2] - rss[1]) / (held[2] - held[1])
    print(f"RSS per socket: {first:.1f} KiB (0 → {held[1]:,}), "
          f"{second:.1f} KiB ({held[1]:,} → {held[2]:,})")  # fmt: skip
    print_types(
        f"Live objects per socket ({held[2]:,} open minus 0 open), by type",
        per_socket(result["full"]["objects"], result["empty"]["objects"], held[2]),
    )
    print_types(
        f"Cyclic garbage waiting for a collection at {held[2]:,} open, per socket",
        per_socket(result["full"]["garbage"], {}, held[2]),
    )
    n, traced = result["traced_sockets"], result["traced"]["tracemalloc"]
    print(f"\ntracemalloc, {n:,} sockets opened while tracing: "
          f"{traced['traced_bytes'] / n:.0f} bytes per socket still allocated")  # fmt: skip
    print(f"{'bytes':>8} {'blocks':>7}  site")
    for site in traced["sites"][:TOP]:
        print(f"{site['bytes'] / n:8.0f} {site['count'] / n:7.2f}  {site['site']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the raw censuses here")
    args = parser.parse_args()
    raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="census-") as data_dir:
        result = measure(args.sockets, data_dir)
    if args.json:
        args.json.write_text(json.dumps(result))
    report(result)


if __name__ == "__main__":
    main()
