#!/usr/bin/env bash
# Idle connections after a deep first request (issue 16, memory): what each connection costs a
# server whose connections once ran a deep call (a TLS handshake, a parser) and now sit idle in a
# blocking recv. Natively, the connection thread keeps every stack page it ever touched; under
# gonet's fibers mode a fiber parked for a second or two gives its pages below the stack pointer
# back to the kernel (core/fibers/stack_release.cc); Go shrinks idle goroutine stacks at GC.
#
# Usage: scripts/bench/deep_idle.sh BUILD_DIR   (a markdown table on stdout, progress on stderr)
#   DEEP_IDLE_CONNS=2000    connections (make bench: 10000)
#   DEEP_IDLE_SECONDS=3     idle time before RSS is read
#   DEEP_IDLE_DEPTH=64      KiB of the first request's deep call (deep_idle_echo --depth)
#   DEEP_IDLE_CSV=FILE      also write the rows as CSV
#
# Per server, started fresh and pinned to CPU 0 (loadgen on CPU 1): RSS before any connection
# (VmRSS, baseline), then loadgen --one-request opens every connection, each sends one 64-byte
# message and reads the echo (the server's deep call runs), and all of them stay open and idle;
# DEEP_IDLE_SECONDS after the last answer the server's VmRSS is read again. RSS/conn is
# (idle RSS - baseline) / connections: the stacks, kernel-side nothing (socket buffers are not
# in RSS), the runtime's per-connection records. "vs native" is that over the native row's.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${DEEP_IDLE_CONNS:-2000}
IDLE=${DEEP_IDLE_SECONDS:-3}
DEPTH=${DEEP_IDLE_DEPTH:-64}
SERVER_CPU=0
LOAD_CPU=1
LOADGEN=$BUILD/loadgen
PRELOAD=$BUILD/libgonet.so
for tool in "$LOADGEN" "$BUILD/deep_idle_echo"; do
  [[ -x $tool ]] || { echo "deep_idle: $tool is missing; build first (make build)" >&2; exit 1; }
done

# shellcheck source=server_control.sh
. "$ROOT/scripts/bench/server_control.sh"

bench_workdir deep-idle

PIN_SERVER=(taskset -c "$SERVER_CPU")
PIN_LOAD=(taskset -c "$LOAD_CPU")
if (($(nproc) < 2)); then
  PIN_SERVER=()
  PIN_LOAD=()
fi
log() { printf 'deep_idle: %s\n' "$*" >&2; }

vm() {  # vm PID FIELD: the kB value of FIELD (VmRSS, VmHWM, Threads) in /proc/PID/status
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

CSV=$WORK/rows.csv
echo "server,conns,baseline_kb,idle_kb,per_conn_kb,threads,status" >"$CSV"

# row LABEL ENV... -- PROGRAM ARGS...: one server, one idle load, one CSV row.
row() {
  local label=$1 status=ok
  shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  log "$label, $CONNS connections"
  if ! start_server "$WORK/server.out" "$WORK/server.err" "${PIN_SERVER[@]}" env "${envs[@]}" "$@"; then
    echo "$label,$CONNS,,,,,no listening line: $(head -c 200 "$WORK/server.err" | tr '\n,' ' ;')" \
      >>"$CSV"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    return
  fi
  sleep 0.5  # settle: the runtime's start-up allocations belong to the baseline
  local base idle threads
  base=$(vm "$SERVER_PID" VmRSS)
  : >"$WORK/load.out"
  # Held well past the read below; stopped once the RSS is read.
  "${PIN_LOAD[@]}" "$LOADGEN" --port "$SERVER_PORT" --conns "$CONNS" --one-request \
    --duration $((IDLE + 600)) --connect-timeout 60 --json >"$WORK/load.out" 2>"$WORK/load.err" &
  LOAD_PID=$!
  local i answered=""
  for ((i = 0; i < 1200; i++)); do
    answered=$(sed -n 's/^answered \([0-9]*\)$/\1/p' "$WORK/load.out")
    [[ -n $answered ]] && break
    kill -0 "$LOAD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $answered ]]; then
    status="loadgen never answered: $(head -c 200 "$WORK/load.err" | tr '\n' ' ')"
  elif ((answered != CONNS)); then
    status="only $answered of $CONNS connections answered"
  fi
  sleep "$IDLE"
  idle=$(vm "$SERVER_PID" VmRSS)
  threads=$(vm "$SERVER_PID" Threads)
  kill -0 "$SERVER_PID" 2>/dev/null || status="server died: $(head -c 200 "$WORK/server.err")"
  stop_pid "$LOAD_PID"
  LOAD_PID=""
  stop_pid "$SERVER_PID"
  SERVER_PID=""
  local per
  per=$(awk -v b="$base" -v i="$idle" -v n="$CONNS" 'BEGIN { printf "%.1f", (i - b) / n }')
  echo "$label,$CONNS,$base,$idle,$per,$threads,$(printf %s "$status" | tr ',\n' '; ')" >>"$CSV"
}

SERVER=("$BUILD/deep_idle_echo" --port 0 --backlog 4096 --depth "$DEPTH")
row "deep_idle_echo native" -- "${SERVER[@]}"
if [[ -r $PRELOAD ]]; then
  row "deep_idle_echo gonet-threads" "LD_PRELOAD=$PRELOAD" GONET_MODE=threads -- "${SERVER[@]}"
  row "deep_idle_echo gonet-fibers" "LD_PRELOAD=$PRELOAD" GONET_MODE=fibers -- "${SERVER[@]}"
fi
# Built here too (go's cache makes it cheap): a go_echo from before -deep existed would fail.
GO_ECHO=$BUILD/go_echo
if ! command -v go >/dev/null ||
  ! (cd "$ROOT/scripts/bench/go_echo" && GOCACHE=$BUILD/go-cache GOPATH=$BUILD/go-path \
    GOPROXY=off GOFLAGS= go build -o "$GO_ECHO" . 2>"$WORK/go.err"); then
  log "go_echo skipped: $(head -c 200 "$WORK/go.err" 2>/dev/null)"
  GO_ECHO=""
fi
if [[ -n $GO_ECHO ]]; then
  row "go_echo -deep (ref)" -- "$GO_ECHO" -port 0 -deep "$DEPTH"
fi

[[ -n ${DEEP_IDLE_CSV:-} ]] && cp "$CSV" "$DEEP_IDLE_CSV"
echo "Each connection sent one 64-byte message whose first handling ran a ${DEPTH} KiB-deep call," \
  "then stayed open and idle; RSS read ${IDLE} s after the last answer." \
  "RSS/conn = (idle VmRSS - VmRSS before any connection) / ${CONNS}."
echo
echo "| server | conns | RSS before MiB | RSS idle MiB | RSS/conn KiB | vs native | threads | status |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
awk -F, 'NR == 1 { next }
  { n++; l[n] = $1; c[n] = $2; b[n] = $3; i[n] = $4; p[n] = $5; t[n] = $6; s[n] = $7
    if ($1 ~ / native$/) native = $5 }
  END {
    for (k = 1; k <= n; k++) {
      mib_b = b[k] == "" ? "-" : sprintf("%.1f", b[k] / 1024)
      mib_i = i[k] == "" ? "-" : sprintf("%.1f", i[k] / 1024)
      ratio = (native > 0 && p[k] != "") ? sprintf("%.2f", p[k] / native) : "-"
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", l[k], c[k], mib_b, mib_i,
             p[k] == "" ? "-" : p[k], ratio, t[k] == "" ? "-" : t[k], s[k]
    }
  }' "$CSV"
