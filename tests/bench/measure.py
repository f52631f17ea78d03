"""The five measurements, each run against every target in turn.

Each function takes the client pool and the targets and returns plain dicts (JSON-ready),
keyed by target name. Before every timed step the targets' websocket tiers are left to go
idle (bounded wait), so the work of one step does not spill into the next.
"""

import json
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path
from statistics import quantiles

from bench.client import ClientPool

IDLE_CPU = 0.05  # a tier using under 5 % of one core is idle
IDLE_TIMEOUT = 30
# After thousands of sockets close, a server may be busy for a while (each disconnect
# leaves its groups); the next measurement must not pay for that.
SETTLE_TIMEOUT = 120
COLLECT_TIMEOUT = 30
OPEN_CONCURRENCY = 64  # handshakes in flight per client process


def percentile(values, q):
    """The q-th percentile (0-100) of ``values`` (inclusive method), None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return quantiles(values, n=100, method="inclusive")[q - 1]


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / 100


def wait_idle(pids, timeout=IDLE_TIMEOUT):
    """Until ``pids`` together use under IDLE_CPU of a core for a quarter second."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(pids)
        if now - last < IDLE_CPU * 0.25:
            return
        last = now


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status)[1])
    return total


def send_http(port, request):
    """Send a raw HTTP request to nginx and read the answer to the end (Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=COLLECT_TIMEOUT) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status = answer[9:12]
    if status not in (b"200", b"201"):
        raise RuntimeError(f"trigger answered {answer[:200]!r}")


def open_members(pool, set_name, target, path, count, headers=()):
    shares = pool.split(count)
    opened = pool.call(
        "open",
        per_worker=[
            (set_name, "127.0.0.1", target.port, path, share, OPEN_CONCURRENCY, headers)
            for share in shares
        ],
    )
    return sum(o for o, _, _ in opened), sum(f for _, f, _ in opened)


def fan_out_once(pool, set_name, target, kind, marker):
    """One message to every member: the seconds each member waited (None: never came)."""
    pool.call("arm", set_name, marker)
    if kind == "ws":
        started = pool.call("send", set_name, 0, json.dumps({"message": marker}), worker=0)
    else:
        started = time.monotonic()
        send_http(target.port, target.push_request(marker))
    arrivals = [t for times in pool.call("collect", set_name, COLLECT_TIMEOUT) for t in times]
    return [None if t is None else t - started for t in arrivals]


def fan_out(pool, targets, kind, sizes, repeats):
    """Time-to-member and time-to-last-member for rooms of each size.

    ``ws``: a member posts to a chat room; ``http``: POST /api/notifications/ for a user
    whose N sockets are the members (the floor: a GET that broadcasts). Rooms grow in
    place, targets take turns at each size, so machine noise hits all alike.
    """
    results = {target.name: {} for target in targets}
    members, failures = dict.fromkeys(results, 0), dict.fromkeys(results, 0)
    room = f"bench{uuid.uuid4().hex[:8]}"
    for size in sizes:
        for target in targets:
            set_name = f"{kind}-{target.name}"
            path, headers = (target.chat_path(room), ()) if kind == "ws" else target.push_socket()
            opened, failed = open_members(
                pool, set_name, target, path, size - members[target.name], headers
            )
            members[target.name] += opened
            failures[target.name] += failed
            results[target.name][size] = {
                **fan_out_rounds(pool, set_name, target, kind, repeats),
                "members": members[target.name],
                "open_failures": failures[target.name],
            }
            print(f"    {kind} fan-out {target.name:8} N={size:5}: {results[target.name][size]}")
    for target in targets:
        pool.call("close", f"{kind}-{target.name}")
    for target in targets:
        wait_idle(target.ws_tier_pids(), SETTLE_TIMEOUT)
    return results


def fan_out_rounds(pool, set_name, target, kind, repeats):
    """``repeats`` messages to every member of ``set_name``, one at a time: their summary."""
    waits, lasts, missing = [], [], 0
    for _ in range(repeats):
        wait_idle(target.ws_tier_pids())
        times = fan_out_once(pool, set_name, target, kind, f"{kind}-{uuid.uuid4().hex}")
        arrived = [t for t in times if t is not None]
        missing += len(times) - len(arrived)
        waits += arrived
        if arrived:
            lasts.append(max(arrived))
    return summary(waits, lasts, missing)


def summary(waits, lasts, missing):
    ms = 1000
    return {
        "member_p50_ms": round(percentile(waits, 50) * ms, 2) if waits else None,
        "member_p99_ms": round(percentile(waits, 99) * ms, 2) if waits else None,
        "last_p50_ms": round(percentile(lasts, 50) * ms, 2) if lasts else None,
        "last_p99_ms": round(percentile(lasts, 99) * ms, 2) if lasts else None,
        "missing": missing,
    }


def capacity(pool, targets, steps, repeats):
    """Sockets held through nginx at each step; failures and RSS growth per socket; at
    the last step, a fan-out to every socket held (WS-triggered, ``repeats`` messages).

    Growth per socket is the slope from the previous step (the first: from before the
    first socket): an earlier phase may have left freed memory in the process, which a
    ratio to the starting RSS would count as free sockets.
    """
    results = {}
    for target in targets:
        wait_idle(target.ws_tier_pids())
        previous = (0, rss_kib(target.ws_tier_pids()), rss_kib(target.nginx_pids()))
        held, failures, rows = 0, 0, []
        path = target.chat_path(f"capacity{uuid.uuid4().hex[:8]}")
        for step in steps:
            opened, failed = open_members(pool, "capacity", target, path, step - held - failures)
            held, failures = held + opened, failures + failed
            wait_idle(target.ws_tier_pids())
            ws, nginx = rss_kib(target.ws_tier_pids()), rss_kib(target.nginx_pids())
            added = held - previous[0]
            rows.append(
                {
                    "attempted": step,
                    "held": held,
                    "failures": failures,
                    "ws_rss_mib": round(ws / 1024, 1),
                    "ws_kib_per_socket": round((ws - previous[1]) / added, 1) if added else None,
                    "nginx_rss_mib": round(nginx / 1024, 1),
                    "nginx_kib_per_socket": (
                        round((nginx - previous[2]) / added, 1) if added else None
                    ),
                }
            )
            previous = (held, ws, nginx)
            print(f"    capacity {target.name:8}: {rows[-1]}")
        rows[-1]["fan_out"] = fan_out_rounds(pool, "capacity", target, "ws", repeats)
        print(f"    capacity {target.name:8} fan-out to {held:,}: {rows[-1]['fan_out']}")
        pool.call("close", "capacity")
        wait_idle(target.ws_tier_pids(), SETTLE_TIMEOUT)
        results[target.name] = rows
    return results


def push_latency(pool, targets, rate, seconds):
    """POST /api/notifications/ at ``rate``/s → arrival on the user's socket."""
    results = {}
    for target in targets:
        wait_idle(target.ws_tier_pids())
        count = int(rate * seconds)
        requests = [target.push_request(f"push-{i}") for i in range(count)]
        latencies = pool.call(
            "push", "127.0.0.1", target.port, *target.push_socket(), requests, rate,
            COLLECT_TIMEOUT, worker=0,
        )  # fmt: skip
        arrived = [t for t in latencies if t is not None]
        results[target.name] = {
            "rate": rate,
            "pushes": count,
            "p50_ms": round(percentile(arrived, 50) * 1000, 2) if arrived else None,
            "p99_ms": round(percentile(arrived, 99) * 1000, 2) if arrived else None,
            "lost": count - len(arrived),
        }
        print(f"    push {target.name:8}: {results[target.name]}")
    return results


def handshakes(pool, targets, count, concurrency):
    """Websocket handshakes per second through nginx (opened, then dropped)."""
    results = {}
    for target in targets:
        wait_idle(target.ws_tier_pids())
        started = time.monotonic()
        path = target.handshake_path()
        outcomes = pool.call(
            "handshakes",
            per_worker=[
                ("127.0.0.1", target.port, path, share, concurrency) for share in pool.split(count)
            ],
        )
        elapsed = time.monotonic() - started
        succeeded = sum(ok for ok, _ in outcomes)
        results[target.name] = {
            "handshakes": count,
            "failures": count - succeeded,
            "per_second": round(succeeded / elapsed),
        }
        print(f"    handshakes {target.name:8}: {results[target.name]}")
        wait_idle(target.ws_tier_pids())
    return results


def handshake_client_processes(floor, count, concurrency, process_counts):
    """The floor's handshakes/s as client processes are added, one row per count, and the
    count to measure every target with: where the floor's rate stops rising (past it the
    client processes only take the server's CPU), i.e. its highest."""
    rows = []
    for processes in process_counts:
        pool = ClientPool(processes)
        try:
            rows.append({"processes": processes,
                         **handshakes(pool, [floor], count, concurrency)[floor.name]})  # fmt: skip
        finally:
            pool.close()
    return rows, max(rows, key=lambda row: row["per_second"])["processes"]


def http_rate(targets, seconds, connections):
    """wrk against a light view through nginx (the floor: a static file from nginx)."""
    results = {}
    for target in targets:
        url = f"http://127.0.0.1:{target.port}{target.http_path()}"
        output = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        results[target.name] = {
            "path": target.http_path(),
            "per_second": round(float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])),
            "p99": re.search(r"^\s+99%\s+(\S+)", output, re.M)[1],  # --latency's table
            "non_2xx": int(errors[1]) if errors else 0,
        }
        print(f"    http {target.name:8}: {results[target.name]}")
    return results
