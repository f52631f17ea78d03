#!/bin/sh
# Make sure the system programs the stack and the tests run are installed:
#   deploy/local/system-packages.sh nginx redis-server ...
# Each argument is both a Debian package and the program it provides. Missing ones are
# installed with apt-get when we are root; otherwise we stop with one line saying what to install.
set -eu
PATH="$PATH:/usr/sbin:/sbin"
missing=""
for program in "$@"; do
    command -v "$program" >/dev/null 2>&1 || missing="$missing $program"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing system packages:$missing (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
else
    echo "Missing system packages:$missing. Install them (e.g. sudo apt-get install$missing) and run again." >&2
    exit 1
fi
