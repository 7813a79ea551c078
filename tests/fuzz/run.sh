#!/bin/sh
# slotproxy - BSD-2-Clause
#
# Build the RESP fuzz targets and run each for SECONDS (default 30) on its
# checked-in corpus. New corpus entries go to a temporary directory, never
# into the repository. Exits non-zero if a target crashes; the reproducer
# (crash-*) is left in the temporary directory, whose path is printed.
# Usage: tests/fuzz/run.sh [SECONDS]
set -eu

secs=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/slotproxy-fuzz.XXXXXX")
"$top/tests/fuzz/build.sh" "$work/bin"

status=0
for t in req reply; do
    mkdir -p "$work/corpus-$t" "$work/artifacts-$t"
    echo "fuzz_$t: ${secs}s, work dir $work"
    if ! "$work/bin/fuzz_$t" -max_total_time="$secs" -max_len=4096 \
        -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts-$t/" \
        "$work/corpus-$t" "$top/tests/fuzz/corpus/$t" \
        > "$work/fuzz_$t.log" 2>&1; then
        echo "fuzz_$t FAILED; see $work/fuzz_$t.log and $work/artifacts-$t/" >&2
        tail -40 "$work/fuzz_$t.log" >&2
        status=1
    else
        grep -E '^stat::number_of_executed_units' "$work/fuzz_$t.log" || true
    fi
done
if [ $status -eq 0 ]; then
    rm -rf "$work"
fi
exit $status
