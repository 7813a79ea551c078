#!/usr/bin/env bash
# slotproxy - BSD-2-Clause
#
# slotproxy's resident memory: idle (one SET and GET served, then quiet)
# and with N idle clients connected (each sent one PING and got PONG).
# Reads VmRSS, RssAnon and RssFile from /proc/PID/status, plus the
# largest mappings from /proc/PID/smaps, so a change in what the process
# maps (a library more or less) is visible.
#
# Starts a throwaway 3-master Redis Cluster and slotproxy (workers 1) on
# free 127.0.0.1 ports; stops both by PID at exit.
#
# Usage: contrib/bench/memory.sh [options]
#   --bin PATH      slotproxy binary (default <repo>/build/src/slotproxy)
#   --clients N     idle clients for the second figure (default 10000)
#   --workers N     slotproxy workers (default 1)
#   -h, --help      this text

set -euo pipefail
prog=memory
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(CDPATH='' cd -- "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

bin=$repo/build/src/slotproxy
clients=10000
workers=1


while [ $# -gt 0 ]; do
    case $1 in
    --bin) need "$1" $#; bin=$2; shift ;;
    --clients) need "$1" $#; clients=$2; shift ;;
    --workers) need "$1" $#; workers=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
done
for v in clients workers; do
    case ${!v} in ''|*[!0-9]*) die "--$v wants a number" ;; esac
done
[ -x "$bin" ] || die "no slotproxy binary at $bin (build first or --bin)"
command -v python3 >/dev/null || die "python3 not found"

# The clients need file descriptors on both ends.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((clients + 100)) ] ||
    die "open files limit $(ulimit -n) is too low for $clients clients"

bench_init memory
start_cluster ""
free_port 24500; port=$free_port_out
conf=$bench_tmp/slotproxy.yml
write_proxy_conf "$conf" "$port" "$workers"
"$bin" -c "$conf" >"$bench_tmp/slotproxy.log" 2>&1 &
pid=$!
bench_pids+=("$pid")
wait_ping "$port" "$pid" || die "slotproxy did not answer; see $bench_tmp/slotproxy.log"
redis-cli -p "$port" set memory:k v >/dev/null
redis-cli -p "$port" get memory:k >/dev/null
sleep 2

status() {
    awk '/^(VmRSS|RssAnon|RssFile):/ {
             printf "%s %.2f MB (%d kB)  ", $1, $2 / 1024, $2 }
         END { print "" }' "/proc/$pid/status"
}
mappings() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : "[anon]" }
         /^Rss:/ { if ($2 > 0) kb[name] += $2 }
         END { for (n in kb) printf "%8d kB  %s\n", kb[n], n }' \
        "/proc/$pid/smaps" | sort -rn | head -n 12
}

echo "$("$bin" -v 2>&1 | head -n 1), workers $workers, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "idle:          $(status)"
idle_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
mappings
python3 - "$port" "$clients" "$pid" "$idle_kb" <<'EOF'
import socket, sys, time
port, n, pid, idle = (int(a) for a in sys.argv[1:5])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    socks.append(s)
for s in socks:
    s.sendall(b"PING\r\n")
for s in socks:
    assert s.recv(16) == b"+PONG\r\n"
time.sleep(1)
rss = [l for l in open("/proc/%d/status" % pid) if l.startswith("VmRSS")]
kb = int(rss[0].split()[1])
print("%d idle clients: VmRSS %.1f MB, %.2f KB per client over idle"
      % (n, kb / 1024, (kb - idle) / max(n, 1)))
for s in socks:
    s.close()
EOF
