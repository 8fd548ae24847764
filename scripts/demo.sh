#!/usr/bin/env bash
# `make run`: a one-minute look at gonet. Runs an unmodified thread-per-connection sample server
# (http_threads, or echo_threads without it) natively, then under gonet with its stats on, puts
# each under the same load (loadgen, 100 connections, ~3 s, every answer verified), and prints
# native vs gonet side by side followed by the summary the gonet runtime printed at exit.
#
# Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNS=100
SECONDS_LOADED=3

# shellcheck source=bench/server_control.sh
. "$ROOT/scripts/bench/server_control.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gonet-demo.XXXXXX")
SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -x $BUILD/http_threads ]]; then
  server=http_threads mode=http
elif [[ -x $BUILD/echo_threads ]]; then
  server=echo_threads mode=echo
else
  echo "demo: neither http_threads nor echo_threads is in $BUILD; build first" >&2
  exit 1
fi
for need in "$BUILD/loadgen" "$BUILD/libgonet.so"; do
  [[ -e $need ]] || { echo "demo: $need is missing; build first" >&2; exit 1; }
done

# Through the launcher when it works, as a user would run it; else the preload it would set up.
if [[ -x $BUILD/gonet ]] && timeout 10 "$BUILD/gonet" run --stats -- true >/dev/null 2>&1; then
  under_gonet=("$BUILD/gonet" run --stats --)
  how="gonet run --stats -- $server"
else
  under_gonet=(env LD_PRELOAD="$BUILD/libgonet.so" GONET_STATS=1)
  how="LD_PRELOAD=libgonet.so GONET_STATS=1 $server"
fi

pin_server=() pin_load=()
if (($(nproc) >= 2)); then
  pin_server=(taskset -c 0) pin_load=(taskset -c 1)
fi

# run_one NAME COMMAND...: serve under load, stop the server (which prints gonet's stats as it
# exits), and leave loadgen's JSON in $WORK/NAME.json and the server's stderr in $WORK/NAME.err.
run_one() {
  local name=$1
  shift
  echo "demo: $name: $* (load: $CONNS connections, ${SECONDS_LOADED} s)" >&2
  if ! start_server "$WORK/$name.out" "$WORK/$name.err" "${pin_server[@]}" "$@" --port 0; then
    echo "demo: $name did not start:" >&2
    head -20 "$WORK/$name.err" >&2
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    return 1
  fi
  "${pin_load[@]}" "$BUILD/loadgen" --mode "$mode" --port "$SERVER_PORT" --conns "$CONNS" \
    --duration "$SECONDS_LOADED" --warmup 0.5 --json >"$WORK/$name.json" 2>"$WORK/$name.lerr" ||
    true
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}

field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$WORK/$2.json"; }

run_one native "$BUILD/$server" || exit 1
gonet_ok=1
run_one gonet "${under_gonet[@]}" "$BUILD/$server" || gonet_ok=0

echo
echo "$server, $CONNS keep-alive connections, ${SECONDS_LOADED} s of ping-pong load each:"
echo
printf '  %-8s %12s %12s %10s   %s\n' run "req/s" "p99 us" "vs native" verified
native_rps=$(field rps native)
for name in native gonet; do
  rps=$(field rps "$name") p99=$(field p99_us "$name") ok=$(field ok "$name")
  [[ -n $rps ]] || { printf '  %-8s %12s\n' "$name" "did not run"; continue; }
  ratio=$(awk -v a="$rps" -v b="$native_rps" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')
  verdict="all bytes"
  [[ $ok == true ]] || verdict="FAILED: $(head -c 160 "$WORK/$name.lerr" | tr '\n' ' ')"
  printf '  %-8s %12.0f %12s %10s   %s\n' "$name" "$rps" "$p99" "$ratio" "$verdict"
done
echo
echo "What the gonet runtime printed at exit ($how):"
if [[ -s $WORK/gonet.err ]]; then
  head -60 "$WORK/gonet.err" | sed 's/^/  | /'
else
  echo "  (nothing: this libgonet.so prints no stats summary yet)"
fi
echo
gonet_rps=$(field rps gonet)
if ((gonet_ok)) && [[ -n $gonet_rps ]]; then
  counters="with the runtime's own counters above"
  [[ -s $WORK/gonet.err ]] || counters="(this libgonet.so printed no counters)"
  echo "Shown: the same unmodified blocking $server binary, serving $CONNS connections natively" \
    "and then under gonet (default threads mode), answered every request correctly at" \
    "$(awk -v a="$gonet_rps" -v b="$native_rps" 'BEGIN { printf "%.2f", a / b }')x native" \
    "throughput, $counters."
else
  echo "Shown: $server natively; under gonet it did not start (its stderr is above)."
fi
