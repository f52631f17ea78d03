#!/usr/bin/env python
"""Container health check: exit 0 if GET /healthz on this container's port answers 200.

    python deploy/healthcheck.py 8000

Sends the site's own Host (first of ALLOWED_HOSTS) and X-Forwarded-Proto, as nginx would,
so Django's host check and HTTPS redirect treat it like a real request.
"""

import os
import sys
import urllib.request


def main():
    port = int(sys.argv[1])
    host = (os.environ.get("ALLOWED_HOSTS") or "localhost").split(",")[0].strip()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        headers={"Host": host, "X-Forwarded-Proto": "https"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError as error:
        sys.exit(f"healthcheck: {error}")


if __name__ == "__main__":
    main()
