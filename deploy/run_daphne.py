#!/usr/bin/env python
"""Start one daphne instance: the one place daphne's flags live.

The local stack, systemd (``daphne@.service``) and compose all start daphne through this
script, so every instance runs the same way. Run it with the project's Python::

    .venv/bin/python deploy/run_daphne.py --bind unix:/run/app/daphne-1.sock
    .venv/bin/python deploy/run_daphne.py --bind tcp:0.0.0.0:8001

``--bind`` (or ``DAPHNE_BIND``) is ``unix:PATH``, ``tcp:HOST:PORT``, or a raw Twisted
endpoint starting with ``fd:`` for an inherited socket.
"""

import argparse
import os
import socket
import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[1] / "app"

# Chat messages are at most 4,000 characters (16 KB of UTF-8 at worst); anything much
# larger is abuse, and autobahn closes the socket with 1009 (message too big).
MAX_MESSAGE_BYTES = 64 * 1024

DAPHNE_FLAGS = [
    # The client's address from nginx's X-Forwarded-For (nginx overwrites it).
    "--proxy-headers",
    # Keepalive pings well inside nginx's proxy_read_timeout; drop peers that vanished.
    "--ping-interval", "20",
    "--ping-timeout", "30",
    # Daphne's default closes every websocket after 24 h; clients reconnect anyway.
    "--websocket_timeout", "-1",
    "--websocket_connect_timeout", "10",
    "--application-close-timeout", "10",
    "--websocket-max-message-size", str(MAX_MESSAGE_BYTES),
    "--websocket-max-frame-size", str(MAX_MESSAGE_BYTES),
    # No per-connection access log: nginx logs every request (without query strings).
    "-v", "0",
]  # fmt: skip


def clear_stale_unix_socket(path):
    """Remove a socket file left by a killed daphne, refusing to steal a live one.

    A crashed process leaves its socket file behind and the next bind fails with
    "address already in use", the classic cause of daphne units that never restart.
    """
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
    else:
        sys.exit(f"run_daphne: {path} is already served by another process")
    finally:
        probe.close()


def endpoint(bind):
    """Translate --bind into a Twisted endpoint description for daphne's -e."""
    kind, _, rest = bind.partition(":")
    if kind == "unix" and rest:
        clear_stale_unix_socket(rest)
        # lockfile=0: staleness is handled above; Twisted's lock file is what goes stale.
        return f"unix:{rest}:mode=660:lockfile=0"
    if kind == "tcp" and rest.count(":") == 1:
        host, port = rest.split(":")
        return f"tcp:port={int(port)}:interface={host}"
    if kind == "fd":
        return bind
    sys.exit(f"run_daphne: --bind must be unix:PATH, tcp:HOST:PORT or fd:..., got {bind!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=os.environ.get("DAPHNE_BIND"), required=False)
    args = parser.parse_args(argv)
    if not args.bind:
        parser.error("--bind (or DAPHNE_BIND) is required")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.chdir(APP_DIR)  # daphne imports the application relative to the working directory

    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(
        ["-e", endpoint(args.bind), *DAPHNE_FLAGS, "config.asgi:application"]
    )


if __name__ == "__main__":
    main()
