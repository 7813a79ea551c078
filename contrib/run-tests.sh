#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   1. a -Werror build and `make check` (Check unit tests + integration
#      tests against real redis-server clusters on free loopback ports);
#   2. the same tests in an ASan+UBSan build (--enable-sanitizers), with
#      every proxy running 2 worker threads (SP_WORKERS=2);
#   3. a short libFuzzer run of the RESP parsers over the checked-in corpus.
# Ends with one line "N passed, N failed".
# Options: --no-install (skip apt), --quick (skip the sanitizer build and
# fuzzing), FUZZ_SECONDS=N (default 20 per target).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
quick=0
install=1
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    *) echo "usage: $0 [--quick] [--no-install]" >&2; exit 2 ;;
    esac
done
[ $install -eq 1 ] && { contrib/install-deps.sh || exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)

passed=0
failed=0
skipped=0
# Failure details, repeated at the very end: CI keeps only the tail of the
# output, and a failing test's traceback would otherwise scroll out of it.
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT

# Add one make check run's totals (from test-suite.log) to the sums.
count() {
    local log=$1/test-suite.log
    [ -f "$log" ] || { failed=$((failed + 1)); return; }
    local p f e s
    p=$(sed -n 's/^# PASS: *//p' "$log" | head -1)
    f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
    e=$(sed -n 's/^# ERROR: *//p' "$log" | head -1)
    s=$(sed -n 's/^# SKIP: *//p' "$log" | head -1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
    skipped=$((skipped + ${s:-0}))
}

build_and_check() {
    local dir=$1
    shift
    echo "=== $dir: configure $*"
    mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q "$@" && make -s -j"$jobs") ||
        { echo "=== $dir: BUILD FAILED"; failed=$((failed + 1)); return; }
    echo "=== $dir: make check"
    (cd "$dir" && make -s -j1 check VERBOSE=1 >check.out 2>&1)
    local rc=$?
    grep -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS):' "$dir/check.out"
    [ $rc -ne 0 ] && tail -n 40 "$dir/check.out"
    # Harness failure blocks: a "FAIL name" line and its indented details.
    awk -v dir="$dir" '
        /^FAIL / { n = 0; p = 1; print "[" dir "] " $0; next }
        p && /^    / { if (++n <= 70) print "[" dir "] " $0; next }
        { p = 0 }' "$dir/check.out" >>"$failures"
    count "$dir"
}

[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; exit 1; }
build_and_check build --enable-werror
if [ $quick -eq 0 ]; then
    SP_WORKERS=2 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        build_and_check build-asan --enable-werror --enable-sanitizers --enable-debug
    if [ -x tests/fuzz/run.sh ]; then
        echo "=== fuzz: ${FUZZ_SECONDS:-20}s per target"
        if tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    fi
fi
if [ -s "$failures" ]; then
    echo "=== failure details"
    cat "$failures"
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ $failed -eq 0 ]
