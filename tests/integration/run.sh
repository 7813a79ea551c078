#!/bin/sh
# slotproxy - BSD-2-Clause
#
# `make check` entry for the integration tests. automake runs it with
# SLOTPROXY_BIN (the built proxy) and SLOTPROXY_SRCDIR set; by hand it works
# from anywhere: tests/integration/run.sh [-k NAME] [-x] [test_file.py ...]
# Exit status is the harness's: 0 pass, 1 fail, 77 skip (no redis-server
# and CI is not "true").
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 1
case "$*" in
*.py*) exec /usr/bin/python3 -B "$here/harness.py" "$@" ;;
*) exec /usr/bin/python3 -B "$here/harness.py" "$@" "$here"/test_*.py ;;
esac
