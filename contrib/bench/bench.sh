#!/usr/bin/env bash
# slotproxy - BSD-2-Clause
#
# Throughput benchmark: slotproxy against a plain redis-server and any peer
# proxies you name, with redis-benchmark, in interleaved rounds.
#
# Starts a throwaway 3-master Redis Cluster on free 127.0.0.1 ports,
# slotproxy (one worker by default) in front of it, optionally a plain
# single redis-server as a baseline and peer proxies given by command. Each
# round runs every workload against every target (the order of targets
# rotates from round to round); the table shows per workload and target the
# median ops/s over the rounds, the min-max spread, the median p99 latency
# and the ratio to slotproxy. Every process started is stopped by PID at
# exit and the temporary directory is removed.
#
# Usage: contrib/bench/bench.sh [options]
#   --bin PATH          slotproxy binary (default <repo>/build/src/slotproxy;
#                       copied to the temp dir so a rebuild cannot disturb
#                       the run)
#   --rounds N          rounds (default 3)
#   --seconds S         target length of one run (default 2.5); the number
#                       of requests per workload is calibrated on slotproxy
#   --workloads LIST    comma-separated subset of: set-P1,get-P1,set-P16,
#                       get-P16,mset10-P1,mget10-P1,mset10-P16,mget10-P16
#                       (default: all)
#   --clients N         redis-benchmark -c (default 50)
#   --size N            value size, redis-benchmark -d (default 64)
#   --keyspace N        redis-benchmark -r (default 100000)
#   --workers N         slotproxy workers (default 1)
#   --no-redis          no plain redis-server baseline target
#   --peer NAME=CMD     add a peer started by CMD (run with bash -c 'exec
#                       CMD'); placeholders: {port} (where it must listen),
#                       {stats_port} (a second free port), {seeds} (cluster
#                       masters, host:port comma-separated), {seeds_space}
#                       (space-separated), {seed1} {seed2} {seed3},
#                       {single} (host:port of the plain redis-server),
#                       {dir} (a temp dir for the peer), {conf}
#   --peer-conf NAME=FILE  config template for peer NAME: placeholders are
#                       replaced and the result written to {conf}
#                       (see contrib/bench/peers.md and peers/*.in)
#   --pin               pin slotproxy and peers to --proxy-cpus, the redis
#                       servers and redis-benchmark to --load-cpus (taskset)
#   --proxy-cpus LIST   default 0
#   --load-cpus LIST    default 1
#   --raw FILE          also write every run as CSV to FILE
#   -h, --help          this text
#
# Example (twemproxy from Debian's nutcracker package, in front of the plain
# redis-server, as the issue's reference table does):
#   contrib/bench/bench.sh --pin \
#     --peer 'twemproxy=nutcracker -c {conf} -s {stats_port} -v 4' \
#     --peer-conf twemproxy=contrib/bench/peers/nutcracker.yml.in

set -euo pipefail
prog=bench
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(CDPATH='' cd -- "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

bin=$repo/build/src/slotproxy
rounds=3
seconds=2.5
workloads=set-P1,get-P1,set-P16,get-P16,mset10-P1,mget10-P1,mset10-P16,mget10-P16
clients=50
size=64
keyspace=100000
workers=1
with_redis=1
pin=0
proxy_cpus=0
load_cpus=1
raw=
peer_names=()
peer_cmds=()
peer_conf_names=()
peer_conf_files=()


while [ $# -gt 0 ]; do
    case $1 in
    --bin) need "$1" $#; bin=$2; shift ;;
    --rounds) need "$1" $#; rounds=$2; shift ;;
    --seconds) need "$1" $#; seconds=$2; shift ;;
    --workloads) need "$1" $#; workloads=$2; shift ;;
    --clients) need "$1" $#; clients=$2; shift ;;
    --size) need "$1" $#; size=$2; shift ;;
    --keyspace) need "$1" $#; keyspace=$2; shift ;;
    --workers) need "$1" $#; workers=$2; shift ;;
    --no-redis) with_redis=0 ;;
    --peer) need "$1" $#
        case $2 in *=*) ;; *) die "--peer wants NAME=COMMAND" ;; esac
        peer_names+=("${2%%=*}"); peer_cmds+=("${2#*=}"); shift ;;
    --peer-conf) need "$1" $#
        case $2 in *=*) ;; *) die "--peer-conf wants NAME=FILE" ;; esac
        peer_conf_names+=("${2%%=*}"); peer_conf_files+=("${2#*=}"); shift ;;
    --pin) pin=1 ;;
    --proxy-cpus) need "$1" $#; proxy_cpus=$2; shift ;;
    --load-cpus) need "$1" $#; load_cpus=$2; shift ;;
    --raw) need "$1" $#; raw=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
done

for v in rounds clients size keyspace workers; do
    case ${!v} in ''|*[!0-9]*) die "--$v wants a number" ;; esac
done
[ "$rounds" -ge 1 ] || die "--rounds must be at least 1"
case $seconds in ''|*[!0-9.]*) die "--seconds wants a number" ;; esac
for c in redis-server redis-cli redis-benchmark awk sort timeout; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found"
done
[ -x "$bin" ] || die "no slotproxy binary at $bin (build first or --bin)"
if [ "$pin" = 1 ]; then
    command -v taskset >/dev/null 2>&1 || die "--pin needs taskset"
    pcpu=(taskset -c "$proxy_cpus")
    lcpu=(taskset -c "$load_cpus")
    lcpu_list=$load_cpus
else
    pcpu=()
    lcpu=()
    lcpu_list=
fi
for i in "${!peer_conf_names[@]}"; do
    found=0
    for n in "${peer_names[@]}"; do
        [ "$n" = "${peer_conf_names[$i]}" ] && found=1
    done
    [ "$found" = 1 ] || die "--peer-conf ${peer_conf_names[$i]}: no such --peer"
    [ -r "${peer_conf_files[$i]}" ] ||
        die "--peer-conf: cannot read ${peer_conf_files[$i]}"
done

bench_init bench
cp "$bin" "$bench_tmp/slotproxy"
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ------------------------------------------------------------- targets
t_name=()
t_port=()
t_pid=()

say "starting a 3-master cluster"
start_cluster "$lcpu_list"
say "cluster masters: ${cluster_ports[*]}"

if [ "$with_redis" = 1 ] || [ ${#peer_names[@]} -gt 0 ]; then
    start_single "$lcpu_list"
fi

free_port 24000; proxy_port=$free_port_out
write_proxy_conf "$bench_tmp/slotproxy.yml" "$proxy_port" "$workers"
"${pcpu[@]}" "$bench_tmp/slotproxy" -c "$bench_tmp/slotproxy.yml" \
    >"$bench_tmp/slotproxy.log" 2>&1 &
bench_pids+=("$!")
wait_ping "$proxy_port" "$!" 100 ||
    die "slotproxy did not answer; log: $(cat "$bench_tmp/slotproxy.log")"
t_name+=(slotproxy)
t_port+=("$proxy_port")
t_pid+=("${bench_pids[${#bench_pids[@]} - 1]}")

if [ "$with_redis" = 1 ]; then
    t_name+=(redis-direct)
    t_port+=("$single_port")
    t_pid+=("$single_pid")
fi

subst() {
    local s=$1
    s=${s//\{port\}/$2}
    s=${s//\{stats_port\}/$3}
    s=${s//\{dir\}/$4}
    s=${s//\{conf\}/$4/conf}
    s=${s//\{seeds\}/$(seeds_csv)}
    s=${s//\{seeds_space\}/$(seeds_csv | tr , ' ')}
    s=${s//\{seed1\}/127.0.0.1:${cluster_ports[0]}}
    s=${s//\{seed2\}/127.0.0.1:${cluster_ports[1]}}
    s=${s//\{seed3\}/127.0.0.1:${cluster_ports[2]}}
    s=${s//\{single\}/127.0.0.1:$single_port}
    printf '%s\n' "$s"
}

for i in "${!peer_names[@]}"; do
    name=${peer_names[$i]}
    case $name in ''|*[!A-Za-z0-9_.-]*) die "bad peer name '$name'" ;; esac
    free_port 25000; pport=$free_port_out
    free_port 26000; sport=$free_port_out
    pdir=$bench_tmp/peer-$name
    mkdir -p "$pdir"
    for j in "${!peer_conf_names[@]}"; do
        if [ "${peer_conf_names[$j]}" = "$name" ]; then
            subst "$(cat "${peer_conf_files[$j]}")" "$pport" "$sport" \
                "$pdir" >"$pdir/conf"
        fi
    done
    cmd=$(subst "${peer_cmds[$i]}" "$pport" "$sport" "$pdir")
    say "starting peer $name: $cmd"
    (cd "$pdir" && exec "${pcpu[@]}" bash -c "exec $cmd") \
        >"$pdir/log" 2>&1 &
    bench_pids+=("$!")
    wait_port "$pport" "$!" 150 ||
        die "peer $name does not listen on $pport; log: $(tail -5 "$pdir/log")"
    ok=0
    for _ in $(seq 50); do
        if redis-cli -p "$pport" set bench:probe x >/dev/null 2>&1 &&
            [ "$(redis-cli -p "$pport" get bench:probe 2>/dev/null)" = x ]; then
            ok=1; break
        fi
        sleep 0.2
    done
    [ "$ok" = 1 ] ||
        die "peer $name does not serve SET/GET; log: $(tail -5 "$pdir/log")"
    t_name+=("$name")
    t_port+=("$pport")
    t_pid+=("${bench_pids[${#bench_pids[@]} - 1]}")
done

# ----------------------------------------------------------- workloads
value=$(printf "%0${size}d" 0)
# wl_args NAME: print one argument per line: pipeline, then the command
# (empty command = use -t).
wl_cmd() {
    local k
    case $1 in
    get-P*) printf '%s\n' -t get ;;
    set-P*) printf '%s\n' -t set ;;
    mget10-P*)
        printf '%s\n' mget
        for k in 1 2 3 4 5 6 7 8 9 10; do printf '%s\n' "key:__rand_int__"; done ;;
    mset10-P*)
        printf '%s\n' mset
        for k in 1 2 3 4 5 6 7 8 9 10; do
            printf '%s\n' "key:__rand_int__" "$value"
        done ;;
    *) die "unknown workload $1" ;;
    esac
}

IFS=, read -r -a wl_list <<<"$workloads"
for w in "${wl_list[@]}"; do
    case $w in
    set-P1|get-P1|set-P16|get-P16|mset10-P1|mget10-P1|mset10-P16|mget10-P16) ;;
    *) die "unknown workload '$w'" ;;
    esac
done

# run_bench PORT WORKLOAD N: one redis-benchmark run; prints "rps p50 p99"
# or "fail".
run_bench() {
    local port=$1 w=$2 n=$3 cmd=() line
    local pl=${w##*-P}
    mapfile -t cmd < <(wl_cmd "$w")
    line=$(timeout 120 "${lcpu[@]}" redis-benchmark -h 127.0.0.1 -p "$port" \
        -c "$clients" -d "$size" -r "$keyspace" -P "$pl" -n "$n" --csv \
        "${cmd[@]}" 2>>"$bench_tmp/redis-benchmark.err" | tail -n 1) || true
    # "test","rps","avg","min","p50","p95","p99","max"
    printf '%s\n' "$line" | awk -F'","' '
        NF >= 8 && $2 + 0 > 0 { printf "%.0f %s %s\n", $2, $5, $7; ok = 1 }
        END { if (!ok) print "fail" }'
}

# Prefill every key on every target (so GETs hit 64-byte values) and warm up.
for i in "${!t_name[@]}"; do
    say "prefill ${t_name[$i]} (port ${t_port[$i]})"
    r=$(run_bench "${t_port[$i]}" set-P16 $((keyspace * 3)))
    [ "$r" != fail ] || die "prefill of ${t_name[$i]} failed"
done

# Calibrate -n per workload on slotproxy so one run lasts about --seconds.
declare -A wl_n
for w in "${wl_list[@]}"; do
    case $w in *-P16) cn=200000 ;; mget*|mset*) cn=20000 ;; *) cn=50000 ;; esac
    r=$(run_bench "$proxy_port" "$w" "$cn")
    [ "$r" != fail ] || die "calibration run $w on slotproxy failed"
    rps=${r%% *}
    wl_n[$w]=$(awk -v r="$rps" -v s="$seconds" 'BEGIN {
        n = int(r * s / 1000) * 1000; if (n < 5000) n = 5000; print n }')
    say "calibrated $w: ${rps%.*} ops/s on slotproxy -> -n ${wl_n[$w]}"
done

# ---------------------------------------------------------------- runs
# cpu_ticks PID: user + system clock ticks of the process so far.
cpu_ticks() {
    # Fields after the ")" that ends the command name: utime is the 12th,
    # stime the 13th.
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}
clk_tck=$(getconf CLK_TCK)
results=$bench_tmp/results.txt
: >"$results"
nt=${#t_name[@]}
for ((round = 1; round <= rounds; round++)); do
    say "round $round/$rounds"
    for w in "${wl_list[@]}"; do
        for ((k = 0; k < nt; k++)); do
            i=$(((k + round - 1) % nt))
            c0=$(cpu_ticks "${t_pid[$i]}")
            r=$(run_bench "${t_port[$i]}" "$w" "${wl_n[$w]}")
            c1=$(cpu_ticks "${t_pid[$i]}")
            # CPU time of the target process (all its threads, user +
            # system) per request, in microseconds.
            [ "$r" = fail ] || r="$r $(awk -v a="$c0" -v b="$c1" \
                -v hz="$clk_tck" -v n="${wl_n[$w]}" \
                'BEGIN { printf "%.3f", (b - a) * 1e6 / hz / n }')"
            printf '%s %s %s %s %s\n' "$round" "$w" "${t_name[$i]}" \
                "${wl_n[$w]}" "$r" >>"$results"
            say "  $w ${t_name[$i]}: $r"
        done
    done
done

if [ -n "$raw" ]; then
    {
        echo "round,workload,target,requests,ops_per_s,p50_ms,p99_ms,cpu_us_per_req"
        awk 'NF == 8 { print $1","$2","$3","$4","$5","$6","$7","$8 }
             NF == 5 { print $1","$2","$3","$4",fail,,," }' "$results"
    } >"$raw"
fi

# -------------------------------------------------------------- report
# Shared by the report's awk programs: median of a[1..n] (sorts a), and
# the per-round ratio of a target to slotproxy (by_round, rounds_seen).
awk_median='
    function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) {
            t = a[i]
            for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
            a[j + 1] = t
        }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    # Median over rounds of by_round[t, r] / by_round["slotproxy", r].
    function round_ratio(t,   rd, nr, rr) {
        for (rd in rounds_seen)
            if (((t, rd) in by_round) && (("slotproxy", rd) in by_round) &&
                by_round["slotproxy", rd] > 0)
                rr[++nr] = by_round[t, rd] / by_round["slotproxy", rd]
        return nr ? sprintf("%.2f", median(rr, nr)) : "n/a"
    }'

echo
echo "slotproxy bench: $rounds rounds, -c $clients -d $size -r $keyspace," \
    "workers $workers, pin $([ "$pin" = 1 ] &&
        echo "proxies=$proxy_cpus load=$load_cpus" || echo off)"
echo
echo "target/slotproxy: ratio of the medians; per round: median of the ratios"
echo "within each round (robust when the shared machine slows a whole round)."
echo
echo "| workload | target | median ops/s | min-max ops/s | spread | p99 ms (median) | target/slotproxy | per round |"
echo "|---|---|--:|--:|--:|--:|--:|--:|"
for w in "${wl_list[@]}"; do
    awk -v w="$w" -v order="${t_name[*]}" "$awk_median"'
    $2 == w {
        t = $3
        if ($5 == "fail") { fails[t]++; next }
        cnt[t]++; rps[t, cnt[t]] = $5; p99[t, cnt[t]] = $7
        by_round[t, $1] = $5; rounds_seen[$1] = 1
    }
    END {
        nn = split(order, names, " ")
        for (k = 1; k <= nn; k++) {
            t = names[k]; n = cnt[t]
            if (n == 0) { med[t] = 0; continue }
            lo = hi = rps[t, 1]
            for (i = 1; i <= n; i++) {
                r[i] = rps[t, i]; q[i] = p99[t, i]
                if (r[i] < lo) lo = r[i]
                if (r[i] > hi) hi = r[i]
            }
            med[t] = median(r, n); pm[t] = median(q, n)
            mn[t] = lo; mx[t] = hi
        }
        base = med["slotproxy"]
        for (k = 1; k <= nn; k++) {
            t = names[k]
            f = fails[t] ? sprintf(" (%d failed)", fails[t]) : ""
            if (cnt[t] == 0) {
                printf "| %s | %s | failed | | | | |\n", w, t
                continue
            }
            printf "| %s | %s%s | %.0f | %.0f-%.0f | %.1f%% | %.3f | %s | %s |\n",
                w, t, f, med[t], mn[t], mx[t],
                med[t] ? 100 * (mx[t] - mn[t]) / med[t] : 0, pm[t],
                base ? sprintf("%.2f", med[t] / base) : "n/a",
                round_ratio(t)
        }
    }' "$results"
done
echo
echo "CPU time each target's process spent per request (user + system, all"
echo "threads, from /proc/PID/stat; median over rounds). It does not depend on"
echo "which side of the benchmark is the bottleneck: 1e6 / (us per request) is"
echo "what one core would serve if the proxy alone were saturated."
echo
echo "| workload | target | CPU us per request | requests per CPU-second | target/slotproxy (CPU per request) | per round |"
echo "|---|---|--:|--:|--:|--:|"
for w in "${wl_list[@]}"; do
    awk -v w="$w" -v order="${t_name[*]}" "$awk_median"'
    $2 == w && NF == 8 {
        t = $3; cnt[t]++; cpu[t, cnt[t]] = $8
        by_round[t, $1] = $8; rounds_seen[$1] = 1
    }
    END {
        nn = split(order, names, " ")
        for (k = 1; k <= nn; k++) {
            t = names[k]
            for (i = 1; i <= cnt[t]; i++) c[i] = cpu[t, i]
            med[t] = cnt[t] ? median(c, cnt[t]) : 0
        }
        base = med["slotproxy"]
        for (k = 1; k <= nn; k++) {
            t = names[k]
            if (!cnt[t]) continue
            # (parenthesised: a bare ">" in a print list redirects)
            per_s = (med[t] > 0) ? sprintf("%.0f", 1e6 / med[t]) : "n/a"
            ratio = (base > 0) ? sprintf("%.2f", med[t] / base) : "n/a"
            printf "| %s | %s | %.2f | %s | %s | %s |\n", w, t, med[t], per_s,
                ratio, round_ratio(t)
        }
    }' "$results"
done
echo
echo "load average (1/5/15 min) at start: $load_start;" \
    "at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')" \
    "on $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "requests per run: $(for w in "${wl_list[@]}"; do printf '%s=%s ' "$w" "${wl_n[$w]}"; done)"
if [ -s "$bench_tmp/redis-benchmark.err" ]; then
    sort -u "$bench_tmp/redis-benchmark.err" | head -n 3 |
        sed 's/^/redis-benchmark stderr: /' >&2
fi
