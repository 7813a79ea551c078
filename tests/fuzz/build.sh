#!/bin/sh
# slotproxy - BSD-2-Clause
#
# Build the libFuzzer targets (fuzz_req, fuzz_reply: RESP; fuzz_cmdtable:
# the learned command table) into OUTDIR with clang, ASan and UBSan. Needs
# libFuzzer's runtime (Debian: libclang-rt-14-dev). Usage: tests/fuzz/build.sh OUTDIR
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-clang}
mkdir -p "$out/include"
# The targets need no configure results: an empty build_config.h keeps
# them independent of a configured tree (and of jemalloc).
: > "$out/include/build_config.h"

flags="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -I$out/include -I$top/src"
for t in req reply; do
    # shellcheck disable=SC2086
    $CC $flags -o "$out/fuzz_$t" "$top/tests/fuzz/fuzz_$t.c" \
        "$top/src/resp.c" "$top/src/util.c"
done
# shellcheck disable=SC2086
$CC $flags -o "$out/fuzz_cmdtable" "$top/tests/fuzz/fuzz_cmdtable.c" \
    "$top/src/cmdtable.c" "$top/src/cmdtable_merge.c" "$top/src/command.c" \
    "$top/src/keyslot.c" \
    "$top/src/resp.c" "$top/src/util.c"
echo "built $out/fuzz_req $out/fuzz_reply $out/fuzz_cmdtable"
