#!/usr/bin/env bash
# slotproxy - BSD-2-Clause
#
# Instructions per request: user-space instructions (callgrind "Ir", which
# includes libc, libevent and the allocator, and excludes the kernel) that
# slotproxy executes per proxied GET, per SET and per cross-slot MGET of 10
# keys.
#
# Method:
#  1. A throwaway 3-master Redis Cluster on free 127.0.0.1 ports; slotproxy
#     in front of it under `valgrind --tool=callgrind --instr-atstart=no`,
#     so nothing is counted during startup, the first slot-map fetch and the
#     warm-up (refresh_interval is set to 1h so that no periodic topology
#     refresh falls into a measurement; --refresh S to change).
#  2. Warm-up, uncounted: every key of the keyspace is SET with 64-byte
#     values (so GETs and MGETs return data), then a short GET and MGET run
#     fills the proxy's free lists and buffers.
#  3. `callgrind_control -i on`, then for each workload two runs of
#     redis-benchmark -c 10 -P 1 -r KEYSPACE, first with N/5 then with N
#     requests, each followed by `callgrind_control -d` (a dump holds only
#     the events since the previous dump).
#  4. Ir per request = (Ir(N run) - Ir(N/5 run)) / (N - N/5): the marginal
#     cost. The fixed costs of a run (10 connects and disconnects,
#     redis-benchmark's CONFIG GET, the PING that wakes the idle proxy so it
#     notices the dump request) are the same in both runs and cancel. The
#     plain average Ir(N run) / N is printed too; the two should be close.
#     Both again without the 100 ms tick's inclusive cost (worker_tick_cb):
#     it follows time, not requests, and swings with valgrind's speed.
#  5. callgrind_annotate of the N-request dump lists the functions with the
#     most instructions (self cost, inclusive of nothing), per request.
#
# Usage: contrib/bench/callgrind.sh [options]
#   --bin PATH        slotproxy binary (default <repo>/build/src/slotproxy;
#                     copied to the temp dir)
#   --requests N      requests of the long run per workload (default 20000;
#                     the short run has N/5)
#   --keyspace N      redis-benchmark -r (default 100000)
#   --top K           functions listed per workload (default 10; 0 = none)
#   --workers N       slotproxy workers (default 1)
#   --refresh D       cluster.refresh_interval while measuring (default 1h)
#   --extra YAML      a line appended to the proxy's configuration (as
#                     'monitor: {hotkeys: {sample: 0}}')
#   --keep DIR        copy the callgrind dumps to DIR (for kcachegrind or
#                     callgrind_annotate --inclusive=yes ...)
#   -h, --help        this text
#
# It takes about a minute (valgrind runs the proxy some 30-50x slower).

set -euo pipefail
prog=callgrind
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(CDPATH='' cd -- "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

bin=$repo/build/src/slotproxy
requests=20000
keyspace=100000
top=10
workers=1
refresh=1h
keep=
extra=


while [ $# -gt 0 ]; do
    case $1 in
    --bin) need "$1" $#; bin=$2; shift ;;
    --requests) need "$1" $#; requests=$2; shift ;;
    --keyspace) need "$1" $#; keyspace=$2; shift ;;
    --top) need "$1" $#; top=$2; shift ;;
    --workers) need "$1" $#; workers=$2; shift ;;
    --refresh) need "$1" $#; refresh=$2; shift ;;
    --keep) need "$1" $#; keep=$2; shift ;;
    --extra) need "$1" $#; extra=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
done
for v in requests keyspace top workers; do
    case ${!v} in ''|*[!0-9]*) die "--$v wants a number" ;; esac
done
[ "$requests" -ge 100 ] || die "--requests must be at least 100"
for c in valgrind callgrind_control callgrind_annotate redis-server \
    redis-cli redis-benchmark awk; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found"
done
[ -x "$bin" ] || die "no slotproxy binary at $bin (build first or --bin)"

bench_init callgrind
cp "$bin" "$bench_tmp/slotproxy"

say "starting a 3-master cluster"
start_cluster ""
free_port 24000; proxy_port=$free_port_out
conf=$bench_tmp/slotproxy.yml
write_proxy_conf "$conf" "$proxy_port" "$workers"
printf '  refresh_interval: %s\n' "$refresh" >>"$conf"
[ -z "$extra" ] || printf '%s\n' "$extra" >>"$conf"

out=$bench_tmp/callgrind.out
say "starting slotproxy under callgrind on port $proxy_port"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$bench_tmp/slotproxy" -c "$conf" >"$bench_tmp/proxy.log" 2>&1 &
proxy_pid=$!
bench_pids+=("$proxy_pid")
wait_ping "$proxy_port" "$proxy_pid" 600 ||
    die "slotproxy did not answer under valgrind; log: $(tail -5 "$bench_tmp/proxy.log")"

# ctl ARGS...: callgrind_control on the proxy. Callgrind only looks for a
# command while the proxy runs, so an idle proxy is woken with PINGs until
# the command is acknowledged.
ctl() {
    local cpid tries=0
    callgrind_control "$@" "$proxy_pid" >>"$bench_tmp/ctl.log" 2>&1 &
    cpid=$!
    while kill -0 "$cpid" 2>/dev/null; do
        redis-cli -p "$proxy_port" ping >/dev/null 2>&1 || true
        sleep 0.2
        tries=$((tries + 1))
        [ "$tries" -lt 300 ] || die "callgrind_control $* did not finish"
    done
    wait "$cpid" || die "callgrind_control $* failed: $(tail -3 "$bench_tmp/ctl.log")"
}

mget=(mget)
for _ in 1 2 3 4 5 6 7 8 9 10; do mget+=("key:__rand_int__"); done

# rb N PIPELINE CLIENTS CMD...: one redis-benchmark run through the proxy.
rb() {
    local n=$1 p=$2 c=$3
    shift 3
    redis-benchmark -h 127.0.0.1 -p "$proxy_port" -c "$c" -P "$p" -n "$n" \
        -d 64 -r "$keyspace" --csv "$@" >>"$bench_tmp/rb.log" \
        2>>"$bench_tmp/rb.err" || die "redis-benchmark $* failed"
    tail -n 1 "$bench_tmp/rb.log" | grep -q '^"' ||
        die "redis-benchmark $* printed no result"
}

say "warm-up (not counted): SET $keyspace keys, GET and MGET"
rb "$((keyspace * 2))" 16 50 -t set
rb 5000 1 10 -t get
rb 2000 1 10 "${mget[@]}"

# dump: callgrind_control -d; sets dump_file and dump_ir (its Ir total).
dump_seq=0
dump() {
    ctl -d
    dump_seq=$((dump_seq + 1))
    dump_file=$out.$dump_seq
    [ -f "$dump_file" ] || die "callgrind dump $dump_file missing"
    dump_ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump_file")
    [ -n "$dump_ir" ] || die "no Ir total in $dump_file"
}

# Inclusive Ir of the 100 ms tick (worker_tick_cb) in a dump. Its cost
# follows time, not requests, and valgrind's slowdown (30-50x, changing
# with the machine's load) makes it swing from 10 to 300 Ir per request
# between runs of one binary: the figures without it compare builds.
tick_ir() {
    callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
        awk '/:worker_tick_cb \[/ && !n { gsub(",", "", $1); print $1; n = 1 }
             END { if (!n) print 0 }'
}

ctl -i on
ctl -z
short=$((requests / 5))
declare -A ir_short ir_long dump_long tick_short tick_long
for w in get set mget; do
    case $w in
    get|set) cmd=(-t "$w") ;;
    *) cmd=("${mget[@]}") ;;
    esac
    say "measuring $w: $short then $requests requests (-c 10 -P 1)"
    rb "$short" 1 10 "${cmd[@]}"
    dump
    ir_short[$w]=$dump_ir
    tick_short[$w]=$(tick_ir "$dump_file")
    rb "$requests" 1 10 "${cmd[@]}"
    dump
    ir_long[$w]=$dump_ir
    tick_long[$w]=$(tick_ir "$dump_file")
    dump_long[$w]=$dump_file
done

echo
echo "slotproxy instructions per request (callgrind Ir, user space)," \
    "redis-benchmark -c 10 -P 1 -d 64 -r $keyspace, workers $workers"
echo
echo "| request | Ir, run of $short | Ir, run of $requests | Ir/request (marginal) | Ir/request (average of long run) | without the tick (marginal) | without the tick (average) |"
echo "|---|--:|--:|--:|--:|--:|--:|"
for w in get set mget; do
    case $w in
    get) label=GET ;;
    set) label="SET (64-byte value)" ;;
    *) label="MGET 10 keys, cross-slot" ;;
    esac
    awk -v l="$label" -v a="${ir_short[$w]}" -v b="${ir_long[$w]}" \
        -v ta="${tick_short[$w]}" -v tb="${tick_long[$w]}" \
        -v n1="$short" -v n2="$requests" 'BEGIN {
        printf "| %s | %d | %d | %.0f | %.0f | %.0f | %.0f |\n", l, a, b,
            (b - a) / (n2 - n1), b / n2,
            ((b - tb) - (a - ta)) / (n2 - n1), (b - tb) / n2 }'
done

if [ "$top" -gt 0 ]; then
    for w in get set mget; do
        echo
        echo "Top $top functions by self Ir, $w run of $requests requests" \
            "(Ir per request = self Ir / $requests):"
        echo
        echo "| Ir/request | share | function |"
        echo "|--:|--:|---|"
        callgrind_annotate --inclusive=no --threshold=100 \
            "${dump_long[$w]}" 2>/dev/null |
            sed -e 's/( */(/' |
            awk -v n="$requests" -v k="$top" '
            /PROGRAM TOTALS/ { next }
            $1 ~ /^[0-9,]+$/ && $2 ~ /^\([0-9.]+%\)$/ && printed < k {
                ir = $1; gsub(",", "", ir)
                share = $2; gsub(/[()]/, "", share)
                fn = $3; obj = ""; sub(/^.*\//, "", fn)
                if (NF >= 4) { obj = $NF; gsub(/[][]/, "", obj)
                               sub(/.*\//, "", obj); last = obj }
                else obj = last
                if (obj != "" && obj != "slotproxy") fn = fn " (" obj ")"
                printf "| %.0f | %s | %s |\n", ir / n, share, fn
                printed++
            }'
    done
fi

if [ -n "$keep" ]; then
    mkdir -p "$keep"
    cp "$out".* "$keep"/
    say "callgrind dumps copied to $keep"
fi
