"""A fresh copy of this checkout, as `git clone` gives it to a user."""

import shutil
import subprocess
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]


def copy_checkout(target):
    """The tracked files (and new ones not ignored yet, so work in progress is tested too):
    no .env, .venv or var/ of the developer's. Modes are kept (scripts stay executable)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_DIR, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = REPO_DIR / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
