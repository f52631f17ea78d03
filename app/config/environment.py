"""The settings file of the environment, read before Django chooses its settings module.

Every entry point (manage.py, wsgi.py, asgi.py, deploy/run_daphne.py) calls
``load_environment()`` first, so DJANGO_SETTINGS_MODULE may live in that file like every
other setting: on a server, ``DJANGO_ENV_FILE=/etc/realtime/env manage.py migrate`` runs
with exactly the settings the systemd units load.
"""

import os
from pathlib import Path

import environ

REPO_DIR = Path(__file__).resolve().parents[2]
DEFAULT_SETTINGS_MODULE = "config.settings.local"


def load_environment():
    """Read DJANGO_ENV_FILE (default: the repository's .env; empty: none) into os.environ,
    never overriding what is already there, and default to the development settings."""
    env_file = os.environ.get("DJANGO_ENV_FILE", str(REPO_DIR / ".env"))
    if env_file and Path(env_file).is_file():
        environ.Env.read_env(env_file)
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        os.environ["DJANGO_SETTINGS_MODULE"] = DEFAULT_SETTINGS_MODULE
