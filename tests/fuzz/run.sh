#!/bin/sh
# slotproxy - BSD-2-Clause
#
# Build the fuzz targets and run each for SECONDS (default 30) on its
# checked-in corpus (fuzz_cmdtable also starts from the recorded COMMAND
# replies in tests/unit/data/commands, and takes inputs of their size). New corpus entries go to a temporary directory, never
# into the repository. Exits non-zero if a target crashes; the reproducer
# (crash-*) is left in the temporary directory, whose path is printed.
# Usage: tests/fuzz/run.sh [SECONDS]
set -eu

secs=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/slotproxy-fuzz.XXXXXX")
"$top/tests/fuzz/build.sh" "$work/bin"

status=0
for t in req reply cmdtable; do
    mkdir -p "$work/corpus-$t" "$work/artifacts-$t"
    max_len=4096
    seeds="$top/tests/fuzz/corpus/$t"
    if [ "$t" = cmdtable ]; then
        max_len=131072
        seeds="$seeds $top/tests/unit/data/commands"
    fi
    echo "fuzz_$t: ${secs}s, work dir $work"
    # shellcheck disable=SC2086
    if ! "$work/bin/fuzz_$t" -max_total_time="$secs" -max_len=$max_len \
        -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts-$t/" \
        "$work/corpus-$t" $seeds \
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
