#!/bin/sh
# Installs, through apt, what `make demo` and `make test` use and this machine lacks:
# PostgreSQL with PostGIS 3, Mosquitto (interop tests), Chromium (web tests) and gcc (go test -race).
# Idempotent and quick when everything is present: it only calls apt when something is missing.
# Usage: scripts/setup.sh [demo|test]   (demo needs only PostgreSQL + PostGIS)
set -eu
want=${1:-test}

missing=""
need() { # need PACKAGE CHECK...: queue PACKAGE when CHECK fails
	pkg=$1; shift
	if ! "$@" >/dev/null 2>&1; then missing="$missing $pkg"; fi
}
has_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
has_postgis() { ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; }

need postgresql has_pg
need postgresql-postgis has_postgis
if [ "$want" = test ]; then
	need mosquitto sh -c 'command -v mosquitto || test -x /usr/sbin/mosquitto'
	need mosquitto-clients command -v mosquitto_pub
	need chromium sh -c 'command -v chromium || command -v chromium-browser'
	need gcc command -v gcc
	need libc6-dev test -f /usr/include/stdio.h
fi

if [ -z "$missing" ]; then exit 0; fi

echo "setup: installing:$missing" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
		echo "setup: need root or sudo to run: apt-get install$missing" >&2; exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists; refresh them once per setup.
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian's packages try to start services; Aghali runs its own clusters and brokers instead.
echo "setup: done" >&2
