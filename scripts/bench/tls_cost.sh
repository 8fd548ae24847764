#!/usr/bin/env bash
# What per-fiber TLS costs a fibers-mode echo server (issue 14): echo_threads (no TLS of its own)
# under GONET_MODE=fibers, alone, with 256 bytes of TLS preloaded beside it (libtls_ballast.so:
# copied on every switch), and with the same bytes shared (GONET_FIBER_TLS=shared: not copied).
# Server pinned to CPU 0, loadgen to CPU 1; ROUNDS interleaved rounds. Each cell prints req/s and
# the server's CPU time per request (utime + stime from /proc/PID/stat over the measured window,
# no warm-up), which drifts less than throughput on a shared machine.
#
# Usage: scripts/bench/tls_cost.sh BUILD_DIR   (TLS_COST_CONNS="100 1000" ROUNDS=3 DURATION=3)
set -euo pipefail
BUILD=$(cd "$1" && pwd)
CONNS=${TLS_COST_CONNS:-"100 1000"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
ulimit -n "$(ulimit -Hn)"

cpu_ticks() {  # utime + stime of a process, in clock ticks
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

cell() {  # name, conns, extra preload, extra env...
  local name=$1 conns=$2 preload=$3
  shift 3
  local out
  out=$(mktemp)
  env "$@" GONET_MODE=fibers GONET_WORKERS=1 GONET_QUIET_TLS=1 \
    LD_PRELOAD="$BUILD/libgonet.so${preload:+ $preload}" \
    taskset -c 0 "$BUILD/echo_threads" --port 0 --backlog 4096 >"$out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.05; done
  local port
  port=$(awk '/listening/{print $3}' "$out")
  local t0 t1 json
  t0=$(cpu_ticks "$pid")
  json=$(taskset -c 1 "$BUILD/loadgen" --port "$port" --conns "$conns" --size 64 \
    --duration "$DURATION" --connect-burst 200 --json)
  t1=$(cpu_ticks "$pid")
  python3 -c "import json,os; d=json.loads('$json'); t=($t1-$t0)/os.sysconf('SC_CLK_TCK');
print(f'$name conns=$conns rps={d[\"rps\"]:.0f} cpu_us_per_req={t*1e6/max(d[\"requests\"],1):.2f} ok={d[\"ok\"]}')"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -f "$out"
}

for round in $(seq "$ROUNDS"); do
  for conns in $CONNS; do
    cell "no-tls        " "$conns" ""
    cell "256B-per-fiber" "$conns" "$BUILD/libtls_ballast.so"
    cell "256B-shared   " "$conns" "$BUILD/libtls_ballast.so" GONET_FIBER_TLS=shared
  done
done
