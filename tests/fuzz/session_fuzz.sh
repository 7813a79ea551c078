#!/bin/sh
# slotproxy - BSD-2-Clause
#
# Long hand runs of the stateful session fuzzer
# (tests/integration/test_session_fuzz.py) against the ASan+UBSan build,
# with two workers, as CI runs it. The seed and the figures are printed
# at the end; SP_FUZZ_SEED=<seed> repeats a run's sequences.
# Usage: tests/fuzz/session_fuzz.sh [SECONDS]   (default 600)
#   SLOTPROXY_BIN  proxy binary (default build-asan/src/slotproxy)
#   SP_FUZZ_CLIENTS, SP_FUZZ_SEED, SP_WORKERS (default 2)
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
export SP_FUZZ_SECONDS="${1:-${SP_FUZZ_SECONDS:-600}}"
export SLOTPROXY_BIN="${SLOTPROXY_BIN:-$top/build-asan/src/slotproxy}"
export SP_WORKERS="${SP_WORKERS:-2}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
exec "$top/tests/integration/run.sh" "$top/tests/integration/test_session_fuzz.py"
