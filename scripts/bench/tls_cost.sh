#!/usr/bin/env bash
# What per-fiber TLS costs a fibers-mode echo server (issue 14): echo_threads (no TLS of its own)
# under GONET_MODE=fibers, alone, with 256 bytes of TLS preloaded beside it (libtls_ballast.so:
# copied on every switch), and with the same bytes shared (GONET_FIBER_TLS=shared: not copied).
# Server pinned to CPU 0, loadgen to CPU 1; ROUNDS interleaved rounds, each cell's req/s printed.
#
# Usage: scripts/bench/tls_cost.sh BUILD_DIR   (TLS_COST_CONNS="100 1000" ROUNDS=3 DURATION=3)
set -euo pipefail
BUILD=$(cd "$1" && pwd)
CONNS=${TLS_COST_CONNS:-"100 1000"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
ulimit -n "$(ulimit -Hn)"

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
  taskset -c 1 "$BUILD/loadgen" --port "$port" --conns "$conns" --size 64 --duration "$DURATION" \
    --warmup 0.5 --connect-burst 200 --json |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(f'$name conns=$conns rps={d[\"rps\"]:.0f} ok={d[\"ok\"]}')"
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
