#!/usr/bin/env bash
# slotproxy - BSD-2-Clause
#
# Where slotproxy's time goes, with perf: system calls per request (counted
# exactly with the syscalls:sys_enter_* tracepoints) and a cpu-clock sample
# profile (kernel and user space) of the proxy, per workload.
#
# Starts a throwaway 3-master Redis Cluster and slotproxy (pinned to
# --proxy-cpus, cluster and redis-benchmark to --load-cpus, like
# bench.sh --pin), prefills the keyspace, then for each workload runs
# redis-benchmark -c 50 -d 64 -r 100000 with `perf stat -p PROXY` (syscall
# counts over exactly that run, divided by its request count) and
# `perf record -e cpu-clock -p PROXY` (sampled profile); the "CPU us" row
# is the proxy's task-clock over the counted run per request. SLOTPROXY_IO
# (auto, epoll, io_uring) in the environment reaches the proxy. Needs root or
# kernel.perf_event_paranoid <= 1 and tracefs for the tracepoints; works
# in VMs without hardware counters (it uses none).
#
# Usage: contrib/bench/perf.sh [options]
#   --bin PATH         slotproxy binary (default <repo>/build/src/slotproxy)
#   --requests N       requests per GET run (default 300000; MGET runs 1/3)
#   --top K            profile lines per workload (default 12)
#   --proxy-cpus LIST  default 0
#   --load-cpus LIST   default 1
#   -h, --help         this text

set -euo pipefail
prog=perf
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(CDPATH='' cd -- "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

bin=$repo/build/src/slotproxy
requests=300000
top=12
proxy_cpus=0
load_cpus=1


while [ $# -gt 0 ]; do
    case $1 in
    --bin) need "$1" $#; bin=$2; shift ;;
    --requests) need "$1" $#; requests=$2; shift ;;
    --top) need "$1" $#; top=$2; shift ;;
    --proxy-cpus) need "$1" $#; proxy_cpus=$2; shift ;;
    --load-cpus) need "$1" $#; load_cpus=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
done
for v in requests top; do
    case ${!v} in ''|*[!0-9]*) die "--$v wants a number" ;; esac
done
for c in perf taskset redis-server redis-cli redis-benchmark awk; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found"
done
[ -x "$bin" ] || die "no slotproxy binary at $bin (build first or --bin)"

bench_init perf
cp "$bin" "$bench_tmp/slotproxy"
say "starting a 3-master cluster"
start_cluster "$load_cpus"
free_port 24000; proxy_port=$free_port_out
write_proxy_conf "$bench_tmp/slotproxy.yml" "$proxy_port" 1
taskset -c "$proxy_cpus" "$bench_tmp/slotproxy" -c "$bench_tmp/slotproxy.yml" \
    >"$bench_tmp/proxy.log" 2>&1 &
proxy_pid=$!
bench_pids+=("$proxy_pid")
wait_ping "$proxy_port" "$proxy_pid" 100 || die "slotproxy did not answer"

rb() {
    taskset -c "$load_cpus" timeout 120 redis-benchmark -h 127.0.0.1 \
        -p "$proxy_port" -c 50 -d 64 -r 100000 --csv "$@" 2>/dev/null |
        tail -n 1 | awk -F'","' 'NF >= 8 { printf "%.0f\n", $2 }'
}
say "prefill"
rb -P 16 -n 300000 -t set >/dev/null

mget=(mget)
for _ in 1 2 3 4 5 6 7 8 9 10; do mget+=("key:__rand_int__"); done
events=raw_syscalls:sys_enter
for s in read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait \
    epoll_pwait io_uring_enter \
    epoll_ctl; do
    events=$events,syscalls:sys_enter_$s
done
# CPU time the proxy used over the same run (msec), for CPU per request.
events=$events,task-clock

for w in get-P1 get-P16 mget10-P1; do
    case $w in
    get-P1) args=(-P 1 -t get); n=$requests ;;
    get-P16) args=(-P 16 -t get); n=$requests ;;
    mget10-P1) args=(-P 1 "${mget[@]}"); n=$((requests / 3)) ;;
    esac
    # Syscall counts over one run: perf stat attached to the proxy, stopped
    # with SIGINT right after redis-benchmark returns.
    perf stat -x, -e "$events" -p "$proxy_pid" -o "$bench_tmp/$w.stat" &
    sp=$!
    sleep 0.5
    rps=$(rb -n "$n" "${args[@]}")
    kill -INT "$sp" 2>/dev/null || true
    wait "$sp" || true
    # Sampled profile over a second run.
    perf record -q -e cpu-clock -F 4000 -p "$proxy_pid" \
        -o "$bench_tmp/$w.data" >/dev/null 2>&1 &
    rp=$!
    sleep 0.5
    rb -n "$n" "${args[@]}" >/dev/null
    kill -INT "$rp" 2>/dev/null || true
    wait "$rp" || true

    echo
    echo "### $w: $n requests, ${rps:-?} ops/s (-c 50 -d 64 -r 100000)"
    echo
    echo "| syscall | per request |"
    echo "|---|--:|"
    awk -F, -v n="$n" '$3 == "task-clock" {
        cpu = sprintf("| CPU us | %.2f |", $1 * 1000 / n); next }
        $1 ~ /^[0-9]+$/ && $1 > 0 {
        e = $3; sub(/^.*sys_enter_?/, "", e); if (e == "") e = "all"
        printf "| %s | %.3f |\n", e, $1 / n }
        END { if (cpu != "") print cpu }' "$bench_tmp/$w.stat"
    echo
    echo "cpu-clock samples by object:"
    echo
    echo "| share | object |"
    echo "|--:|---|"
    perf report -i "$bench_tmp/$w.data" --no-children --sort dso --stdio \
        2>/dev/null | awk '/^ *[0-9.]+%/ && k++ < 6 {
            printf "| %s | %s |\n", $1, $2 }'
    echo
    echo "top $top symbols (cpu-clock samples, self):"
    echo
    echo "| share | object | symbol |"
    echo "|--:|---|---|"
    perf report -i "$bench_tmp/$w.data" --no-children --sort dso,sym --stdio \
        2>/dev/null | awk -v top="$top" '/^ *[0-9.]+%/ && k++ < top {
            s = $4; for (i = 5; i <= NF; i++) s = s " " $i
            printf "| %s | %s | %s |\n", $1, $2, s }'
done
