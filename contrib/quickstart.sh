#!/usr/bin/env bash
# slotproxy - BSD-2-Clause
#
# Quick start: builds slotproxy, starts a throwaway 3-master Redis Cluster on
# 127.0.0.1 and a slotproxy in front of it, and prints how to connect. It runs
# in the foreground; Ctrl-C (or any exit) stops every process it started, by
# PID, and removes its temporary directory.
#
# On a fresh Debian/Ubuntu machine it installs missing build and runtime
# dependencies with apt-get (through sudo when not root).
#
# Usage: contrib/quickstart.sh [--no-install] [--port N] [--build-dir DIR]
#   --no-install     never run apt-get; fail if something is missing
#   --port N         proxy port (default 6380, or the next free one)
#   --build-dir DIR  out-of-tree build directory (default <repo>/build)

set -euo pipefail

die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
install=1
proxy_port=
build_dir=$repo/build

while [ $# -gt 0 ]; do
    case $1 in
    --no-install) install=0 ;;
    --port) [ $# -ge 2 ] || die "--port needs a value"; proxy_port=$2; shift ;;
    --port=*) proxy_port=${1#--port=} ;;
    --build-dir) [ $# -ge 2 ] || die "--build-dir needs a value"
        build_dir=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
done
case $proxy_port in
''|*[!0-9]*) [ -z "$proxy_port" ] || die "--port wants a number" ;;
esac

# ---------------------------------------------------------------- deps
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pc() {
    command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1" ||
        missing+=("$2")
}
need_cmd autoconf autoconf
need_cmd automake automake
need_cmd libtoolize libtool
need_cmd pkg-config pkg-config
need_cmd gcc gcc
need_cmd make make
need_pc libevent libevent-dev
need_pc yaml-0.1 libyaml-dev
need_pc jemalloc libjemalloc-dev
need_pc openssl libssl-dev
need_pc liburing liburing-dev
need_pc check check
need_cmd redis-server redis-server
need_cmd redis-cli redis-tools

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$install" = 0 ]; then
        die "missing packages: ${missing[*]} (--no-install given)"
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages: ${missing[*]} and no apt-get to install them"
    sudo=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo"
        sudo=sudo
    fi
    say "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# --------------------------------------------------------------- build
if [ ! -x "$repo/configure" ]; then
    say "autoreconf -fi"
    (cd "$repo" && autoreconf -fi)
fi
mkdir -p "$build_dir"
if [ ! -f "$build_dir/Makefile" ]; then
    say "configure in $build_dir"
    (cd "$build_dir" && "$repo/configure")
fi
say "make"
make -C "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
bin=$build_dir/src/slotproxy
[ -x "$bin" ] || die "build did not produce $bin"

# --------------------------------------------------------- processes
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slotproxy-quickstart.XXXXXX")
pids=()
cleanup() {
    trap - EXIT INT TERM
    if [ ${#pids[@]} -gt 0 ]; then
        say "stopping PIDs ${pids[*]}"
        kill "${pids[@]}" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            alive=0
            for p in "${pids[@]}"; do
                kill -0 "$p" 2>/dev/null && alive=1
            done
            [ "$alive" = 0 ] && break
            sleep 0.3
        done
        kill -9 "${pids[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True when nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Three node ports p with p and the bus port p+10000 free, from 7000 up.
node_ports=()
p=7000
while [ ${#node_ports[@]} -lt 3 ]; do
    [ "$p" -lt 55000 ] || die "no free ports for the cluster"
    if port_free "$p" && port_free $((p + 10000)); then
        node_ports+=("$p")
    fi
    p=$((p + 1))
done

if [ -z "$proxy_port" ]; then
    proxy_port=6380
    while ! port_free "$proxy_port"; do
        proxy_port=$((proxy_port + 1))
    done
elif ! port_free "$proxy_port"; then
    die "port $proxy_port is in use"
fi
metrics_port=9121
while ! port_free "$metrics_port" || [ "$metrics_port" = "$proxy_port" ]; do
    metrics_port=$((metrics_port + 1))
done

say "starting redis-server on ports ${node_ports[*]} (files in $tmp)"
for p in "${node_ports[@]}"; do
    mkdir -p "$tmp/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file nodes.conf --dir "$tmp/$p" --save "" \
        --appendonly no --daemonize no --cluster-node-timeout 2000 \
        --loglevel warning >"$tmp/$p/redis.log" 2>&1 &
    pids+=("$!")
done
for p in "${node_ports[@]}"; do
    for _ in $(seq 50); do
        [ "$(redis-cli -p "$p" ping 2>/dev/null)" = PONG ] && break
        sleep 0.1
    done
    [ "$(redis-cli -p "$p" ping 2>/dev/null)" = PONG ] ||
        die "redis-server on $p did not start; see $tmp/$p/redis.log"
done

args=()
for p in "${node_ports[@]}"; do args+=("127.0.0.1:$p"); done
redis-cli --cluster create "${args[@]}" --cluster-replicas 0 \
    --cluster-yes >"$tmp/create.log" 2>&1 ||
    die "redis-cli --cluster create failed: $(cat "$tmp/create.log")"
for p in "${node_ports[@]}"; do
    ok=0
    for _ in $(seq 100); do
        if redis-cli -p "$p" cluster info 2>/dev/null |
            grep -q '^cluster_state:ok'; then
            ok=1; break
        fi
        sleep 0.2
    done
    [ "$ok" = 1 ] || die "cluster did not reach state ok (node $p)"
done

conf=$tmp/slotproxy.yml
{
    echo "listen:"
    echo "  - 127.0.0.1:$proxy_port"
    echo "cluster:"
    echo "  seeds:"
    for p in "${node_ports[@]}"; do echo "    - 127.0.0.1:$p"; done
    echo "  request_timeout: 5s"
    echo "log:"
    echo "  level: notice"
    echo "metrics:"
    echo "  listen: [127.0.0.1:$metrics_port]"
} >"$conf"

say "starting slotproxy on 127.0.0.1:$proxy_port"
"$bin" -c "$conf" &
proxy_pid=$!
pids+=("$proxy_pid")
for _ in $(seq 50); do
    [ "$(redis-cli -p "$proxy_port" ping 2>/dev/null)" = PONG ] && break
    kill -0 "$proxy_pid" 2>/dev/null || die "slotproxy exited early"
    sleep 0.1
done
[ "$(redis-cli -p "$proxy_port" ping 2>/dev/null)" = PONG ] ||
    die "slotproxy does not answer on port $proxy_port"

cat <<EOF

slotproxy is up in front of a 3-master Redis Cluster (${node_ports[*]}).
Connect with:

    redis-cli -p $proxy_port

Metrics (Prometheus) and probes:

    curl -s http://127.0.0.1:$metrics_port/metrics
    curl -s http://127.0.0.1:$metrics_port/readyz

Config: $conf
Press Ctrl-C to stop everything.
EOF
wait "$proxy_pid" || true
