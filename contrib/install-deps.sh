#!/usr/bin/env bash
# Install the Debian packages slotproxy needs to build and test, if any is
# missing. Used by contrib/quickstart.sh, contrib/run-tests.sh and .ci/run.
set -euo pipefail

PKGS=(autoconf automake libtool pkg-config gcc make
      libevent-dev libyaml-dev libjemalloc-dev libssl-dev liburing-dev openssl check
      redis-server redis-tools python3 python3-redis
      clang clang-format libclang-rt-14-dev valgrind)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
# ioredis (npm) is one of the clients the integration tests drive.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a redis-server on 6379; the tests start their
# own servers on free ports and do not need it.
