#!/usr/bin/env bash
# slotproxy - BSD-2-Clause
#
# Scaling benchmark: throughput and CPU time per request of slotproxy (and
# of a peer proxy, if given) with W = 1, 2, 4 ... workers, each worker
# pinned to a core of its own, with the cluster masters and the load
# generator (redis-benchmark --threads) on other cores, so that the proxy
# is what saturates. For each W: the median ops/s over the rounds, the CPU
# time the proxy process spent per request (from /proc/PID/stat), and the
# speedup and per-request CPU against W=1.
#
# On a 2-core machine it can only check itself (everything shares the
# cores; the figures mean nothing); on a machine with 16 cores the default
# layout is: proxy cores 0..W-1, redis-benchmark on the next --bench-cpus
# cores, the masters on the last --masters cores.
#
# Usage: contrib/bench/scale.sh [options]
#   --bin PATH          slotproxy binary (default <repo>/build/src/slotproxy)
#   --workers LIST      worker counts (default "1 2 4")
#   --rounds N          rounds per W (default 3)
#   --requests N        requests per run (default 2000000)
#   --pipeline N        redis-benchmark -P (default 1)
#   --clients N         redis-benchmark -c (default 256)
#   --test NAME         redis-benchmark -t (default get)
#   --masters N         cluster masters (default 4)
#   --bench-threads N   redis-benchmark --threads (default 6)
#   --peer NAME=CMD     also measure a peer, started by CMD for each W with
#                       placeholders {port}, {workers}, {seeds} (host:port,
#                       comma-separated), {seeds_space}, {dir}, {conf}
#   --peer-conf NAME=FILE  config template for the peer ({conf})
#   --balance N         then, with the largest W, N long-lived client
#                       connections (redis-benchmark -c N): CPU time of each
#                       worker thread and max/mean (1.00 = perfectly even)
#   -h, --help          this text
# Binaries: redis-server, redis-cli and redis-benchmark from PATH.

set -euo pipefail
prog=scale
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(CDPATH='' cd -- "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

bin=$repo/build/src/slotproxy
worker_list="1 2 4"
rounds=3
requests=2000000
pipeline=1
clients=256
test=get
masters=4
bthreads=6
peer_name=
peer_cmd=
peer_conf=
balance=0

while [ $# -gt 0 ]; do
    case $1 in
    --bin) need "$1" $#; bin=$2; shift ;;
    --workers) need "$1" $#; worker_list=$2; shift ;;
    --rounds) need "$1" $#; rounds=$2; shift ;;
    --requests) need "$1" $#; requests=$2; shift ;;
    --pipeline) need "$1" $#; pipeline=$2; shift ;;
    --clients) need "$1" $#; clients=$2; shift ;;
    --test) need "$1" $#; test=$2; shift ;;
    --masters) need "$1" $#; masters=$2; shift ;;
    --bench-threads) need "$1" $#; bthreads=$2; shift ;;
    --peer) need "$1" $#
        case $2 in *=*) ;; *) die "--peer wants NAME=COMMAND" ;; esac
        peer_name=${2%%=*}; peer_cmd=${2#*=}; shift ;;
    --peer-conf) need "$1" $#; peer_conf=${2#*=}; shift ;;
    --balance) need "$1" $#; balance=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
done
for v in rounds requests pipeline clients masters bthreads balance; do
    case ${!v} in ''|*[!0-9]*) die "--$v wants a number" ;; esac
done
for c in redis-server redis-cli redis-benchmark taskset awk sort; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found"
done
[ -x "$bin" ] || die "no slotproxy binary at $bin (build first or --bin)"

ncpu=$(nproc)
maxw=0
for w in $worker_list; do [ "$w" -gt "$maxw" ] && maxw=$w; done
# Core layout: proxy first, then the load generator, the masters last.
if [ $((maxw + bthreads + masters)) -le "$ncpu" ]; then
    bench_cpus=$maxw-$((maxw + bthreads - 1))
    master_cpus=$((ncpu - masters))-$((ncpu - 1))
    layout="proxy 0-$((maxw - 1)), redis-benchmark $bench_cpus, masters $master_cpus"
else
    bench_cpus=0-$((ncpu - 1))
    master_cpus=0-$((ncpu - 1))
    layout="shared: $ncpu cores for everything (a self-check, not a measurement)"
fi

bench_init scale
cp "$bin" "$bench_tmp/slotproxy"
say "layout: $layout"
say "starting a $masters-master cluster"
start_cluster "$master_cpus" "$masters"

# cpu_ticks PID: utime + stime of the whole process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run_load PORT: one redis-benchmark run; prints ops/s.
run_load() {
    taskset -c "$bench_cpus" redis-benchmark -h 127.0.0.1 -p "$1" \
        -t "$test" -n "$requests" -c "$clients" -P "$pipeline" -d 64 \
        -r 100000 --threads "$bthreads" --csv 2>/dev/null |
        awk -F'"' 'NR > 1 && $2 != "" { print $4; exit }'
}

# measure NAME PORT PID W: rounds of run_load; one result line.
results=()
measure() {
    local name=$1 port=$2 pid=$3 w=$4 r ops t0 t1 ops_all=() cpu_all=()
    run_load "$port" >/dev/null    # warm-up: connections, map, caches
    for r in $(seq "$rounds"); do
        t0=$(cpu_ticks "$pid")
        ops=$(run_load "$port")
        t1=$(cpu_ticks "$pid")
        [ -n "$ops" ] || die "$name W=$w: redis-benchmark gave no figure"
        ops_all+=("$ops")
        cpu_all+=("$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$requests" \
            'BEGIN { printf "%.2f", t / hz * 1e6 / n }')")
    done
    local med_ops med_cpu
    med_ops=$(printf '%s\n' "${ops_all[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    med_cpu=$(printf '%s\n' "${cpu_all[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    results+=("$name $w $med_ops $med_cpu ${ops_all[*]}")
    say "$name W=$w: $med_ops ops/s, $med_cpu us CPU/request (rounds: ${ops_all[*]})"
}

seeds=$(seeds_csv)
for w in $worker_list; do
    pcpus=0-$((w - 1))
    [ "$layout" = "${layout#shared}" ] || pcpus=0-$((ncpu - 1))
    free_port 24000; port=$free_port_out
    write_proxy_conf "$bench_tmp/sp-$w.yml" "$port" "$w"
    taskset -c "$pcpus" "$bench_tmp/slotproxy" -c "$bench_tmp/sp-$w.yml" \
        >"$bench_tmp/sp-$w.log" 2>&1 &
    pid=$!
    bench_pids+=("$pid")
    wait_ping "$port" "$pid" 100 || die "slotproxy W=$w did not answer"
    measure slotproxy "$port" "$pid" "$w"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    if [ -n "$peer_name" ]; then
        free_port 25000; pport=$free_port_out
        pdir=$bench_tmp/peer-$w; mkdir -p "$pdir"
        sub() {
            local s=$1
            s=${s//\{port\}/$pport}; s=${s//\{workers\}/$w}
            s=${s//\{dir\}/$pdir}; s=${s//\{conf\}/$pdir/conf}
            s=${s//\{seeds\}/$seeds}; s=${s//\{seeds_space\}/${seeds//,/ }}
            printf '%s\n' "$s"
        }
        [ -z "$peer_conf" ] || sub "$(cat "$peer_conf")" >"$pdir/conf"
        (cd "$pdir" && exec taskset -c "$pcpus" bash -c "exec $(sub "$peer_cmd")") \
            >"$pdir/log" 2>&1 &
        ppid=$!
        bench_pids+=("$ppid")
        wait_port "$pport" "$ppid" 100 || die "peer $peer_name W=$w did not listen"
        measure "$peer_name" "$pport" "$ppid" "$w"
        kill "$ppid"; wait "$ppid" 2>/dev/null || true
    fi
done

# Per-worker CPU with few long-lived connections: slotproxy's acceptor
# hands each to the worker with the fewest; a peer's SO_REUSEPORT hash
# can give one worker more of them than another.
balance_line=
if [ "$balance" -gt 0 ]; then
    w=$maxw
    pcpus=0-$((w - 1))
    [ "$layout" = "${layout#shared}" ] || pcpus=0-$((ncpu - 1))
    free_port 24000; port=$free_port_out
    write_proxy_conf "$bench_tmp/sp-b.yml" "$port" "$w"
    taskset -c "$pcpus" "$bench_tmp/slotproxy" -c "$bench_tmp/sp-b.yml" \
        >"$bench_tmp/sp-b.log" 2>&1 &
    pid=$!
    bench_pids+=("$pid")
    wait_ping "$port" "$pid" 100 || die "slotproxy (balance) did not answer"
    # Worker threads are named sp-w0, sp-w1 ...
    ticks() {
        local t
        for t in /proc/"$pid"/task/*; do
            grep -q '^sp-w' "$t/comm" 2>/dev/null || continue
            printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{ print $14 + $15 }' "$t/stat")"
        done | sort
    }
    before=$(ticks)
    taskset -c "$bench_cpus" redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" \
        -n "$requests" -c "$balance" -P "$pipeline" -d 64 -r 100000 \
        --threads "$(( balance < bthreads ? balance : bthreads ))" -q >/dev/null 2>&1
    after=$(ticks)
    balance_line=$(join <(echo "$before") <(echo "$after") | awk -v n="$balance" '
        { d = $3 - $2; s = s " " $1 "=" d; sum += d; if (d > mx) mx = d; k++ }
        END { printf "balance: %d connections over %d workers: CPU ticks%s; max/mean %.2f", n, k, s, mx / (sum / k) }')
    say "$balance_line"
    kill "$pid"; wait "$pid" 2>/dev/null || true
fi

echo
echo "# scale: $test -P $pipeline, $clients clients, $requests requests x $rounds rounds, $masters masters, redis-benchmark --threads $bthreads"
echo "# machine: $ncpu cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)); $layout"
printf '%-12s %3s %12s %10s %9s %12s\n' target W "ops/s" "us CPU/req" speedup "CPU vs W=1"
for line in "${results[@]}"; do
    set -- $line
    base=$(printf '%s\n' "${results[@]}" | awk -v n="$1" '$1 == n { print $3, $4; exit }')
    awk -v name="$1" -v w="$2" -v ops="$3" -v cpu="$4" -v b="$base" 'BEGIN {
        split(b, x, " ");
        printf "%-12s %3d %12.0f %10.2f %8.2fx %11.2fx\n", name, w, ops, cpu,
            ops / x[1], cpu / x[2] }'
done
[ -z "$balance_line" ] || echo "# $balance_line"
