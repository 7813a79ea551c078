#!/usr/bin/env bash
# Packaging checks CI runs beside the test suite (.ci/run):
#   1. make distcheck: the tarball holds everything (docs, LICENSE, tests)
#      and builds, installs and uninstalls cleanly (unit tests only; the
#      integration tests run in contrib/run-tests.sh);
#   2. make install into a scratch prefix: a second install keeps an
#      edited slotproxy.yml; the installed binary runs -v;
#   3. the installed systemd unit passes `systemd-analyze verify` (skipped
#      with a note where systemd-analyze is missing);
#   4. contrib/Dockerfile passes dockerfilelint (npm; no Docker engine runs
#      in CI, so building the image stays a manual step).
# Prints one line per check; exit status 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/slotproxy-pkg.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
status=0
ok() { echo "ok   packaging: $*"; }
bad() { echo "FAIL packaging: $*"; status=1; }

[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || { bad "autoreconf"; exit 1; }
mkdir -p "$work/build" "$work/prefix"
cd "$work/build"
if ! "$top/configure" -q --prefix="$work/prefix" >configure.log 2>&1 ||
   ! make -s -j"$(nproc 2>/dev/null || echo 2)" >make.log 2>&1; then
    tail -20 configure.log make.log
    bad "build"
    exit 1
fi

units=$(make -s print-unit-tests)
if make -s distcheck TESTS="$units" >distcheck.log 2>&1; then
    ok "make distcheck"
else
    tail -30 distcheck.log
    bad "make distcheck"
fi

conf="$work/prefix/etc/slotproxy/slotproxy.yml"
if make -s install >install.log 2>&1 && [ -f "$conf" ] &&
   [ -f "$conf.example" ] && echo "# edited by the operator" >>"$conf" &&
   make -s install >>install.log 2>&1 &&
   tail -1 "$conf" | grep -q "edited by the operator"; then
    ok "make install keeps an existing slotproxy.yml"
else
    tail -20 install.log
    bad "make install keeps an existing slotproxy.yml"
fi
if "$work/prefix/sbin/slotproxy" -v | grep -q '^commit: '; then
    ok "installed slotproxy -v"
else
    bad "installed slotproxy -v"
fi

unit="$work/prefix/lib/systemd/system/slotproxy.service"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "skip packaging: systemd-analyze not installed"
elif out=$(systemd-analyze verify --man=no "$unit" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify slotproxy.service"
else
    echo "$out"
    bad "systemd-analyze verify slotproxy.service"
fi

if ! command -v npm >/dev/null 2>&1; then
    bad "dockerfilelint: npm missing"
elif (cd "$work" && timeout 300 npm install --no-audit --no-fund --silent \
        dockerfilelint@1.8.0 >npm.log 2>&1); then
    if "$work/node_modules/.bin/dockerfilelint" "$top/contrib/Dockerfile" \
            >lint.log 2>&1; then
        ok "dockerfilelint contrib/Dockerfile"
    else
        cat lint.log
        bad "dockerfilelint contrib/Dockerfile"
    fi
else
    tail -5 "$work/npm.log"
    bad "dockerfilelint: npm install failed"
fi
exit $status
