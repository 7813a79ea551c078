# shellcheck shell=bash
# slotproxy - BSD-2-Clause
#
# Helpers shared by contrib/bench/bench.sh and contrib/bench/callgrind.sh:
# free loopback ports, a throwaway 3-master Redis Cluster, a plain
# redis-server, slotproxy, and a cleanup trap that stops every process that
# was started here, by PID, and removes the temporary directory.
#
# Sourced, not run. The caller sets `prog` (name used in messages) first.

bench_pids=()
bench_tmp=
cluster_ports=()

die() { printf '%s: %s\n' "${prog:-bench}" "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }
# The calling script's header comment, from its 4th line to the first
# line that is not a comment, is its --help text.
usage() { awk 'NR > 3 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "$0"; }
# need OPTION ARGS-LEFT: die unless the option has a value after it.
need() { [ "$2" -ge 2 ] || die "$1 needs a value"; }

bench_cleanup() {
    trap - EXIT INT TERM
    if [ ${#bench_pids[@]} -gt 0 ]; then
        kill "${bench_pids[@]}" 2>/dev/null || true
        local _ alive p
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            alive=0
            for p in "${bench_pids[@]}"; do
                kill -0 "$p" 2>/dev/null && alive=1
            done
            [ "$alive" = 0 ] && break
            sleep 0.25
        done
        kill -9 "${bench_pids[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    if [ -n "$bench_tmp" ] && [ -z "${BENCH_KEEP_TMP:-}" ]; then
        rm -rf "$bench_tmp"
    fi
}

# bench_init NAME: create the temp dir and install the traps.
bench_init() {
    bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/slotproxy-$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# True when nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports handed out by free_port in this run, so two calls never collide.
_taken_ports=" "
# free_port [START]: set free_port_out to a free port whose cluster bus
# port (+10000) is free too. Not for $(...): it must update _taken_ports.
free_port_out=
free_port() {
    local p=${1:-20000}
    while [ "$p" -lt 55000 ]; do
        case $_taken_ports in
        *" $p "*) ;;
        *)
            if port_free "$p" && port_free $((p + 10000)); then
                _taken_ports="$_taken_ports$p "
                free_port_out=$p
                return 0
            fi ;;
        esac
        p=$((p + 1))
    done
    die "no free loopback port"
}

# wait_ping PORT PID [TRIES]: wait until 127.0.0.1:PORT answers PING.
wait_ping() {
    local port=$1 pid=$2 tries=${3:-100} _
    for _ in $(seq "$tries"); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_port PORT PID [TRIES]: wait until 127.0.0.1:PORT accepts connections
# (for peers that do not answer PING before a backend is connected).
wait_port() {
    local port=$1 pid=$2 tries=${3:-100} _
    for _ in $(seq "$tries"); do
        port_free "$port" || return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_redis PORT CPUS CLUSTER(yes|no): a redis-server in $bench_tmp/PORT;
# returns 1 when it does not come up (port taken meanwhile ...).
start_redis() {
    local port=$1 cpus=$2 cluster=$3 pre=()
    [ -n "$cpus" ] && pre=(taskset -c "$cpus")
    mkdir -p "$bench_tmp/$port"
    "${pre[@]}" redis-server --port "$port" --bind 127.0.0.1 \
        --cluster-enabled "$cluster" --cluster-config-file nodes.conf \
        --dir "$bench_tmp/$port" --save "" --appendonly no --daemonize no \
        --cluster-node-timeout 5000 --loglevel warning \
        >"$bench_tmp/$port/redis.log" 2>&1 &
    bench_pids+=("$!")
    wait_ping "$port" "$!" 100
}

# start_single CPUS: a plain redis-server; sets single_port, single_pid.
single_port=
single_pid=
start_single() {
    local p=23000 _
    for _ in 1 2 3 4 5; do
        free_port "$p"; p=$free_port_out
        if start_redis "$p" "$1" no; then
            # shellcheck disable=SC2034  # read by bench.sh
            single_port=$p
            # shellcheck disable=SC2034
            single_pid=${bench_pids[${#bench_pids[@]} - 1]}
            return 0
        fi
        p=$((p + 1))
    done
    die "redis-server did not start; see $bench_tmp/$p/redis.log"
}

# start_cluster CPUS [MASTERS]: MASTERS masters (default 3), no replicas;
# fills cluster_ports. Ports (and bus ports, +10000) stay below Linux's
# default ephemeral range.
start_cluster() {
    local cpus=$1 want=${2:-3} p=21000 args=() ok _
    cluster_ports=()
    for _ in $(seq $((want + 7))); do
        [ ${#cluster_ports[@]} -lt "$want" ] || break
        free_port "$p"; p=$free_port_out
        if start_redis "$p" "$cpus" yes; then
            cluster_ports+=("$p")
        fi
        p=$((p + 1))
    done
    [ ${#cluster_ports[@]} -eq "$want" ] ||
        die "cluster nodes did not start; see $bench_tmp/*/redis.log"
    for p in "${cluster_ports[@]}"; do args+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${args[@]}" --cluster-replicas 0 \
        --cluster-yes >"$bench_tmp/create.log" 2>&1 ||
        die "redis-cli --cluster create failed: $(cat "$bench_tmp/create.log")"
    for p in "${cluster_ports[@]}"; do
        ok=0
        for _ in $(seq 150); do
            if redis-cli -p "$p" cluster info 2>/dev/null |
                grep -q '^cluster_state:ok'; then
                ok=1; break
            fi
            sleep 0.2
        done
        [ "$ok" = 1 ] || die "cluster did not reach state ok (node $p)"
    done
}

# write_proxy_conf FILE PORT WORKERS: slotproxy config for cluster_ports.
write_proxy_conf() {
    local p
    {
        echo "listen:"
        echo "  - 127.0.0.1:$2"
        echo "workers: $3"
        echo "log:"
        echo "  level: warn"
        echo "cluster:"
        echo "  seeds:"
        for p in "${cluster_ports[@]}"; do echo "    - 127.0.0.1:$p"; done
    } >"$1"
}

# Comma-separated host:port list of the cluster masters.
seeds_csv() {
    local p out=
    for p in "${cluster_ports[@]}"; do out="${out:+$out,}127.0.0.1:$p"; done
    printf '%s\n' "$out"
}
