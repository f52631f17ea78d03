"""The Django project the launchers serve, found the same way by each of them.

deploy/local/stack.py, deploy/run_daphne.py and deploy/gunicorn.conf.py start before Django
and outside it. Each calls ``setup()``: the environment file is read into os.environ (as
the project's own manage.py does: DJANGO_ENV_FILE, default .env at the repository root,
empty for none; what is already in the environment wins), and the project's directory
(DJANGO_DIR, where manage.py is: app/ in this template, wherever it is in a project that
adopted the kit, see docs/adopt.md) goes on sys.path. The applications to serve are the
ones the settings name (ASGI_APPLICATION, WSGI_APPLICATION), so nothing here knows the
project's package.
"""

import os
import sys
from pathlib import Path

import environ

REPO_DIR = Path(__file__).resolve().parents[1]


def setup():
    """Read the environment file, make the project importable; its directory."""
    env_file = os.environ.get("DJANGO_ENV_FILE", str(REPO_DIR / ".env"))
    if env_file and Path(env_file).is_file():
        environ.Env.read_env(env_file)
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        sys.exit("set DJANGO_SETTINGS_MODULE (in .env, or the server's environment file)")
    django_dir = REPO_DIR / (os.environ.get("DJANGO_DIR") or "app")
    if not (django_dir / "manage.py").is_file():
        sys.exit(f"no manage.py in {django_dir}: set DJANGO_DIR to the directory that has it")
    if str(django_dir) not in sys.path:
        sys.path.insert(0, str(django_dir))
    return django_dir


def application(setting):
    """The settings' ASGI_APPLICATION or WSGI_APPLICATION as a server takes it: "pkg.mod:app"."""
    from django.conf import settings

    module, _, name = getattr(settings, setting).rpartition(".")
    return f"{module}:{name}"
