#!/usr/bin/env python
"""`make bench`: the tuned stack, the article's default and the floor, measured in one run.

    .venv/bin/python tests/bench/run.py [--quick] [--out docs/benchmarks]

Everything runs on 127.0.0.1 on free ports, in a temporary directory; every process
started here is stopped at the end, also on failure. Writes results.md, results.json,
fanout.png, memory.png, profile.md and profile-push.md to --out. Figures on a shared
machine are noisy, so each is also given as a ratio to a reference measured in the same
run.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for e2e.localstack
# The launchers read the settings module and the environment file when imported
# (deploy/project.py); the benchmark's stacks never read a developer's .env.
os.environ.update(DJANGO_ENV_FILE="", DJANGO_SETTINGS_MODULE="config.settings.local")

from bench import measure, profile, report  # noqa: E402
from bench.client import ClientPool, raise_open_files_limit  # noqa: E402
from bench.targets import FloorTarget, StackTarget  # noqa: E402

REPO_DIR = Path(__file__).resolve().parents[2]

FULL = {
    "sizes": [100, 1000, 2000, 5000],
    "repeats": 6,
    "capacity_steps": [5000, 10000, 15000, 20000],
    "push_rate": 50,
    "push_seconds": 10,
    "handshakes": 3000,
    "http_seconds": 8,
    "profile_seconds": 15,
}
QUICK = {
    "sizes": [100, 500],
    "repeats": 3,
    "capacity_steps": [1000, 2000],
    "push_rate": 50,
    "push_seconds": 2,
    "handshakes": 500,
    "http_seconds": 2,
    "profile_seconds": 3,
}
CLIENT_PROCESSES = 4  # 20,000 sockets in 4 × 5,000: each far under the 20,000-file limit
# Handshakes: the floor is measured with each number of client processes, the targets with
# the one where the floor's rate is highest (the client is then not the limit).
HANDSHAKE_CLIENT_PROCESSES = (1, 2, 4, 8)
HANDSHAKE_CONCURRENCY = 32  # in flight per client process


def machine():
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    nginx = subprocess.run(
        [shutil.which("nginx", path="/usr/sbin:/usr/bin") or "nginx", "-v"],
        capture_output=True,
        text=True,
    ).stderr.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "nginx": nginx.removeprefix("nginx version: "),
        "load_before": Path("/proc/loadavg").read_text().split()[:3],
        "open_files_limit": raise_open_files_limit(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the harness")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    # A SIGTERM (timeout, Ctrl-C of make, a CI stop) unwinds like an error, so the
    # `finally` below stops every stack and server this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("make bench: terminated"))
    began = time.monotonic()
    results = {"machine": machine(), "plan": plan}
    print(f"==> Machine: {results['machine']}", flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    targets = [
        FloorTarget(scratch / "floor"),
        StackTarget(
            "article",
            "one daphne, channels_redis.core.RedisChannelLayer",
            scratch / "article",
            DAPHNE_INSTANCES="1",
            CHANNEL_LAYER="core",
        ),
        StackTarget(
            "tuned",
            "what `make up` ships, without the fast path (DAPHNE_FAST_PATH=off)",
            scratch / "tuned",
            DAPHNE_FAST_PATH="off",
        ),
        StackTarget(
            "tuned+fast",
            "what `make up` ships (.env.example defaults, the fast path on; posting limit off)",
            scratch / "fast",
        ),
    ]
    results["targets"] = {target.name: target.description for target in targets}
    started, pool = [], None
    try:
        for target in targets:
            print(f"==> Starting {target.name}", flush=True)
            target.start()
            started.append(target)
        pool = ClientPool(CLIENT_PROCESSES)
        print("==> Fan-out, WS-triggered", flush=True)
        results["fanout_ws"] = measure.fan_out(pool, targets, "ws", plan["sizes"], plan["repeats"])
        print("==> Fan-out, HTTP-triggered", flush=True)
        results["fanout_http"] = measure.fan_out(
            pool, targets, "http", plan["sizes"], plan["repeats"]
        )
        print("==> Push latency", flush=True)
        results["push"] = measure.push_latency(
            pool, targets, plan["push_rate"], plan["push_seconds"]
        )
        print("==> Handshakes: the floor with more and more client processes", flush=True)
        results["handshake_floor"], processes = measure.handshake_client_processes(
            targets[0], plan["handshakes"], HANDSHAKE_CONCURRENCY, HANDSHAKE_CLIENT_PROCESSES
        )
        print(f"==> Handshakes: every target, with {processes} client processes", flush=True)
        handshake_pool = ClientPool(processes)
        try:
            results["handshakes"] = measure.handshakes(
                handshake_pool, targets, plan["handshakes"], HANDSHAKE_CONCURRENCY
            )
        finally:
            handshake_pool.close()
        print("==> HTTP requests/s (wrk)", flush=True)
        results["http"] = measure.http_rate(targets, plan["http_seconds"], 32)
        print("==> Capacity", flush=True)
        results["capacity"] = measure.capacity(
            pool, targets, plan["capacity_steps"], plan["repeats"]
        )
        print("==> Profiling the tuned stack (fan-out, then pushes) with py-spy", flush=True)
        profiles = {
            "profile.md": profile.fan_out_profile(
                pool, targets[-1], min(2000, plan["sizes"][-1]), plan["profile_seconds"]
            ),
            "profile-push.md": profile.push_profile(
                pool, targets[-1], plan["push_rate"], plan["profile_seconds"]
            ),
        }
    finally:
        if pool is not None:
            pool.close()
        for target in reversed(started):
            target.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - began)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for name, text in profiles.items():
        (args.out / name).write_text(text)
    report.write(results, args.out)
    print(f"==> Done in {results['seconds']} s: {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
