#!/usr/bin/env bash
# slotproxy - BSD-2-Clause
#
# clang-format check of the files that follow .clang-format, listed in
# scripts/formatted-files.txt. The code predates the formatter and part of
# it (trailing comments aligned on a fixed column, hand-split string
# literals) is not what clang-format would write, so files join the list
# when someone touches them: format only the files you touch.
#
#   scripts/check-format.sh           check every listed file (CI)
#   scripts/check-format.sh --add F   format F in place and list it
set -euo pipefail
cd "$(dirname "$0")/.."
list=scripts/formatted-files.txt
command -v clang-format >/dev/null 2>&1 || { echo "clang-format not installed" >&2; exit 1; }
if [ "${1:-}" = "--add" ]; then
    shift
    for f in "$@"; do
        clang-format -i "$f"
        grep -qxF "$f" "$list" || echo "$f" >>"$list"
    done
    LC_ALL=C sort -u -o "$list" "$list"
    exit 0
fi
bad=0
while read -r f; do
    [ -n "$f" ] || continue
    if [ ! -f "$f" ]; then
        echo "check-format: $f is listed but missing" >&2
        bad=1
    elif ! clang-format "$f" | diff -u "$f" - >/dev/null; then
        echo "check-format: $f is not formatted (clang-format -i $f):" >&2
        clang-format "$f" | diff -u "$f" - | head -20 >&2
        bad=1
    fi
done <"$list"
[ $bad -eq 0 ] && echo "ok   clang-format: $(grep -c . "$list") files formatted"
exit $bad
