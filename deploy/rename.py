#!/usr/bin/env python3
"""Give this copy of the project its own name: `make rename NAME=chatapp`.

The name is one setting, PROJECT_NAME in .env.example: deploy/render.py names the server's
user, paths, systemd units, nginx site and database after it, the compose files name their
images and database after it, and the channel layer prefixes its Redis keys and channels
with it. This sets it, in .env.example and in .env if there is one, and rewrites the
deployment guide (deploy/README.md), whose commands spell the name out, so the guide can
still be followed word for word. Run it on a fresh copy, before deploying it anywhere.
"""

import re
import sys

from render import ENV_EXAMPLE, REPO_DIR, check_name, read_settings

SETTING = re.compile(r"^PROJECT_NAME=.*$", re.MULTILINE)
# Files that spell the name out for people to copy (the kit itself reads the setting).
SPELLED_OUT = ["deploy/README.md"]


def rename(new):
    old = read_settings(ENV_EXAMPLE)["PROJECT_NAME"]
    changed = []
    for env_file in (ENV_EXAMPLE, REPO_DIR / ".env"):
        if env_file.is_file() and SETTING.search(env_file.read_text()):
            env_file.write_text(SETTING.sub(f"PROJECT_NAME={new}", env_file.read_text()))
            changed.append(env_file)
    for name in SPELLED_OUT:
        path = REPO_DIR / name
        path.write_text(re.sub(rf"\b{re.escape(old)}\b", new, path.read_text()))
        changed.append(path)
    return old, changed


def main(argv):
    if len(argv) != 1:
        sys.exit("Usage: make rename NAME=yourname")
    try:
        new = check_name(argv[0])
    except ValueError as error:
        sys.exit(f"rename: {error}")
    old, changed = rename(new)
    for path in changed:
        print(f"    {path.relative_to(REPO_DIR)}")
    print(f"Renamed {old} to {new}. Commit the change; servers and images take the new name.")


if __name__ == "__main__":
    main(sys.argv[1:])
