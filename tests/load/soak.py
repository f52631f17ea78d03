#!/usr/bin/env python
"""`make soak`: memory under connection churn, with group traffic.

    .venv/bin/python tests/load/soak.py [--sockets 50000] [--waves 10] [--out docs/benchmarks]

channels_redis#276 and daphne#373 report daphne's memory growing with connection churn
until it is killed. Here the stack (on PostgreSQL) takes waves of members: each wave
opens its share of the sockets (chat rooms and notification feeds), carries chat messages
and HTTP pushes for a few seconds, and closes them all. After each wave, once the stack
is idle, the rig records the websocket tier's resident memory, Redis's memory, its key
count and its pub/sub channels. The promise: after the last wave the WS tier's memory is
within 10 % of where it settled after the first, and Redis is back to its baseline (no
orphaned group members, channels or backlogs). Writes soak.png and soak.json to --out.
"""

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/

import redis  # noqa: E402
from bench.measure import rss_kib, wait_idle  # noqa: E402
from load.rig import LoadRig, Plan  # noqa: E402
from polling import wait_until  # noqa: E402
from postgres import PostgresServer  # noqa: E402

REPO_DIR = Path(__file__).resolve().parents[2]
TRAFFIC_SECONDS = 3
SETTLE_TIMEOUT = 60
GROWTH_BOUND = 0.10


def redis_state(stack):
    client = redis.Redis(unix_socket_path=str(stack.run_dir / "redis.sock"))
    try:
        return {
            "used_memory_kib": client.info("memory")["used_memory"] // 1024,
            "keys": client.dbsize(),
            "channels": len(client.pubsub_channels()),
        }
    finally:
        client.close()


def settle(rig, baseline):
    """Until the closed wave is gone from the stack: Redis holds no more channels than
    before the first wave (bounded: what never goes is a leak, and shows) and the WS tier
    is idle."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: redis_state(rig.stack)["channels"] <= baseline["channels"],
                   "the wave's subscriptions to end", SETTLE_TIMEOUT, interval=0.5)  # fmt: skip
    wait_idle(rig.ws_tier_pids())


def soak(rig, waves):
    """Each wave: connect, traffic, close, settle; the state after each."""
    stack = rig.stack
    baseline = {"ws_rss_kib": rss_kib(rig.ws_tier_pids()), **redis_state(stack)}
    samples = []
    for wave in range(waves):
        rig.connect_members()
        rig.start_posting()
        time.sleep(TRAFFIC_SECONDS)
        rig.stop_posting()
        rig.pool.call("shutdown")
        settle(rig, baseline)
        sample = {"wave": wave + 1, "ws_rss_kib": rss_kib(rig.ws_tier_pids()), **redis_state(stack)}
        samples.append(sample)
        print(json.dumps(sample), flush=True)
    return baseline, samples


def plot(baseline, samples, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    waves = [0] + [s["wave"] for s in samples]
    figure, (ws, rd) = plt.subplots(1, 2, figsize=(10, 3.6))
    ws.plot(waves, [baseline["ws_rss_kib"] / 1024] + [s["ws_rss_kib"] / 1024 for s in samples],
            marker="o")  # fmt: skip
    first = samples[0]["ws_rss_kib"] / 1024
    ws.axhspan(first, first * (1 + GROWTH_BOUND), alpha=0.15, label="first wave + 10 %")
    ws.set(title="WS tier (2 daphnes) resident memory", xlabel="wave", ylabel="MiB")
    ws.legend(loc="lower right")
    rd.plot(waves, [baseline["used_memory_kib"]] + [s["used_memory_kib"] for s in samples],
            marker="o", label="used memory (KiB)")  # fmt: skip
    rd.plot(waves, [baseline["keys"]] + [s["keys"] for s in samples], marker="s", label="keys")
    rd.plot(waves, [baseline["channels"]] + [s["channels"] for s in samples], marker="^",
            label="pub/sub channels")  # fmt: skip
    rd.set(title="Redis after each wave", xlabel="wave")
    rd.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=50000, help="opened and closed in all")
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "benchmarks")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the stack, e.g. DAPHNE_GC=stock")  # fmt: skip
    args = parser.parse_args()
    settings = dict(setting.split("=", 1) for setting in args.setting)
    plan = Plan(sockets=args.sockets // args.waves, events=[], settings=settings)
    with tempfile.TemporaryDirectory(prefix="soak-") as directory:
        postgres = PostgresServer().start()
        try:
            with LoadRig(Path(directory), plan, postgres) as rig:
                baseline, samples = soak(rig, args.waves)
        finally:
            postgres.stop()
    first, last = samples[0]["ws_rss_kib"], samples[-1]["ws_rss_kib"]
    growth = (last - first) / first
    redis_back = all(samples[-1][k] <= baseline[k] for k in ("keys", "channels"))
    args.out.mkdir(parents=True, exist_ok=True)
    plot(baseline, samples, args.out / "soak.png")
    (args.out / "soak.json").write_text(json.dumps(
        {"plan": plan.__dict__, "waves": args.waves, "baseline": baseline, "samples": samples,
         "ws_growth_after_first_wave": round(growth, 4)}, indent=2) + "\n")  # fmt: skip
    print(f"WS tier after wave 1: {first / 1024:.0f} MiB, after wave {args.waves}: "
          f"{last / 1024:.0f} MiB ({growth:+.1%}; bound +{GROWTH_BOUND:.0%}); "
          f"Redis keys {baseline['keys']} → {samples[-1]['keys']}, "
          f"channels {baseline['channels']} → {samples[-1]['channels']}")  # fmt: skip
    return 0 if growth <= GROWTH_BOUND and redis_back else 1


if __name__ == "__main__":
    sys.exit(main())
