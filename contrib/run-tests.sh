#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   1. a -Werror build, its Check unit tests (make check) and the
#      integration tests against real redis-server clusters on free
#      loopback ports (the harness run directly, so that each result shows
#      as it comes; `make check` runs both as well);
#   2. the same tests in an ASan+UBSan build (--enable-sanitizers), with
#      every proxy running 2 worker threads (SP_WORKERS=2);
#   the first with SLOTPROXY_IO=epoll, the second with the default I/O
#   (io_uring where the kernel allows it), so the suite runs on both;
#   3. a short libFuzzer run of the RESP parsers over the checked-in corpus.
# Integration tests print each result as it comes. Ends with one line
# "N passed, N failed, N skipped" counting test cases (Check test cases,
# integration tests, fuzz targets).
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

# Test cases, summed over the builds: Check test cases of the unit
# suites, integration tests, fuzz targets.
passed=0
failed=0
skipped=0
# Failure details, repeated at the very end: CI keeps only the tail of the
# output, and a failing test's traceback would otherwise scroll out of it.
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT

# Unit suites: Check's "N%: Checks: C, Failures: F, Errors: E" per suite.
count_unit() {
    local dir=$1 log c f e
    for log in "$dir"/tests/unit/*.log; do
        [ -f "$log" ] || continue
        c=$(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$log" | tail -1)
        if [ -z "$c" ]; then
            failed=$((failed + 1))   # the suite did not even run
            continue
        fi
        set -- $c
        passed=$((passed + $1 - $2 - $3))
        failed=$((failed + $2 + $3))
    done
}

# The harness's last line: "N passed, M failed[, K skipped]".
count_integration() {
    local line p f s
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    if [ -z "$line" ]; then
        failed=$((failed + 1))       # it died before its summary
        return
    fi
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    skipped=$((skipped + ${s:-0}))
}

# Build in $1 with configure options $2..., run the unit suites (make
# check limited to them), then the integration tests with their output
# shown as they run (and kept in $1/integration.log).
build_and_check() {
    local dir=$1
    shift
    echo "=== $dir: configure $*"
    mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q "$@" && make -s -j"$jobs") ||
        { echo "=== $dir: BUILD FAILED"; failed=$((failed + 1)); return; }
    echo "=== $dir: unit tests"
    local units
    units=$(cd "$dir" && make -s print-unit-tests 2>/dev/null)
    (cd "$dir" && make -s -j"$jobs" check TESTS="$units" >check.out 2>&1)
    grep -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS):' "$dir/check.out"
    grep -h 'Checks:' "$dir"/tests/unit/*.log 2>/dev/null | sed 's/^/    /'
    for log in "$dir"/tests/unit/*.log; do
        grep -q 'Failures: 0, Errors: 0' "$log" 2>/dev/null ||
            sed "s|^|[$dir] |" "$log" >>"$failures"
    done
    count_unit "$dir"
    echo "=== $dir: integration tests"
    SLOTPROXY_BIN="$top/$dir/src/slotproxy" SLOTPROXY_SRCDIR="$top" \
        tests/integration/run.sh 2>&1 | tee "$dir/integration.log" |
        grep --line-buffered -vE '^    \|'
    # Harness failure blocks: a "FAIL name" line and its indented details.
    awk -v dir="$dir" '
        /^FAIL / { n = 0; p = 1; print "[" dir "] " $0; next }
        p && /^    / { if (++n <= 70) print "[" dir "] " $0; next }
        { p = 0 }' "$dir/integration.log" >>"$failures"
    count_integration "$dir/integration.log"
}

[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; exit 1; }
# The two builds run the suite over both I/O paths: epoll here (also
# what valgrind's tests need), and the default (io_uring where the kernel
# allows it) in the sanitizer build. test_io.py covers both in each.
SLOTPROXY_IO=epoll build_and_check build --enable-werror
if [ $quick -eq 0 ]; then
    SP_WORKERS=2 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        build_and_check build-asan --enable-werror --enable-sanitizers --enable-debug \
            CFLAGS="-O1 -g"
    if [ -x tests/fuzz/run.sh ]; then
        echo "=== fuzz: ${FUZZ_SECONDS:-20}s per target"
        if tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"; then
            passed=$((passed + 2))
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
