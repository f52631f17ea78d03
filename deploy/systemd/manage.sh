#!/bin/sh
# @NAME@-manage: Django's manage.py for @NAME@, always with the server's settings
# (@ENV_FILE@) and as its user (@APP_USER@), the way its services run. A bare manage.py in
# a new shell that lacks DJANGO_ENV_FILE would quietly use the local settings and a SQLite
# file in the checkout.
#   @NAME@-manage migrate         @NAME@-manage createsuperuser
set -eu
if [ "$(id -u)" = 0 ]; then
    exec runuser -u @APP_USER@ -- "$0" "$@"
fi
cd @APP_DIR@
exec env -i PATH=/usr/bin:/bin LANG=C.UTF-8 TERM="${TERM:-dumb}" DJANGO_ENV_FILE=@ENV_FILE@ \
    @APP_DIR@/.venv/bin/python app/manage.py "$@"
