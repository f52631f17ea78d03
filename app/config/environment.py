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


class Env(environ.Env):
    """django-environ's reader, except that a variable set to nothing means "the default".

    ``.env.example`` lists every variable, many of them empty ("CSRF_TRUSTED_ORIGINS="),
    and a compose file passes ``VAR: ${VAR:-}``: django-environ would read those as an
    empty string or an empty list, silently replacing the default. A variable without a
    default is still required, empty or not.
    """

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        if default is not self.NOTSET and self.ENVIRON.get(f"{self.prefix}{var}") == "":
            return (
                self.parse_value(default, cast)
                if parse_default and default is not None
                else default
            )
        return super().get_value(var, cast, default, parse_default)


def load_environment():
    """Read DJANGO_ENV_FILE (default: the repository's .env; empty: none) into os.environ,
    never overriding what is already there, and default to the development settings."""
    env_file = os.environ.get("DJANGO_ENV_FILE", str(REPO_DIR / ".env"))
    if env_file and Path(env_file).is_file():
        environ.Env.read_env(env_file)
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        os.environ["DJANGO_SETTINGS_MODULE"] = DEFAULT_SETTINGS_MODULE
