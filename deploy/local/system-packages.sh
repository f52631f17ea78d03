#!/bin/sh
# Make sure the system programs the stack and the tests run are installed:
#   deploy/local/system-packages.sh nginx redis-server systemd-nspawn:systemd-container ...
# Each argument is a program, and after a colon the Debian package providing it if the names
# differ. Missing ones are installed with apt-get when we are root; otherwise we stop with one
# line saying what to install.
set -eu
PATH="$PATH:/usr/sbin:/sbin"
missing=""
for wanted in "$@"; do
    program=${wanted%%:*}
    package=${wanted#*:}
    command -v "$program" >/dev/null 2>&1 || missing="$missing $package"
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
