#!/usr/bin/env python
"""`make load`: deploys and failures under load, measured; the table goes to docs/.

    .venv/bin/python tests/load/run.py [--sockets 5000] [--out docs/benchmarks]

Starts its own PostgreSQL server and the local stack on free ports in a temporary
directory, holds the sockets, runs every event of tests/load/rig.py one at a time and
prints a table; writes load.md and load.json to --out. Every process it started is
stopped at the end, also on failure or Ctrl-C.
"""

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/

from load.rig import LoadRig, Plan, table  # noqa: E402
from postgres import PostgresServer  # noqa: E402

REPO_DIR = Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=Plan.sockets)
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "benchmarks")
    parser.add_argument("--keep", type=Path, help="keep the stack's logs in this directory")
    args = parser.parse_args()
    plan = Plan(sockets=args.sockets)
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        directory = args.keep or cleanup.enter_context(tempfile.TemporaryDirectory(prefix="load-"))
        postgres = PostgresServer().start()
        try:
            with LoadRig(Path(directory), plan, postgres) as rig:
                phases = rig.run()
        finally:
            postgres.stop()
    text = table(phases)
    print(text)
    header = (
        f"# Deploys and failures under load\n\n`make load` on {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.node()} ({platform.machine()}, {__import__('os').cpu_count()} cores), "
        f"{time.monotonic() - started:.0f} s: {plan.sockets} sockets ({plan.feed_share:.0%} "
        f"notification feeds of {plan.feed_users} users, the rest in {plan.rooms} chat rooms), "
        f"{plan.chat_rate:g} chat messages/s and {plan.push_rate:g} HTTP pushes/s throughout; "
        "the local stack (2 daphnes) on PostgreSQL, clients on the same machine.\n\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.md").write_text(header + text + "\n")
    (args.out / "load.json").write_text(
        json.dumps({"plan": plan.__dict__, "phases": [p.row() for p in phases]}, indent=2) + "\n"
    )
    lost = sum(p.lost for p in phases)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
