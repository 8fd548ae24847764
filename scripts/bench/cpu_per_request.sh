#!/usr/bin/env bash
# Where a server's time goes: server CPU per request, split into user and system time, for the
# unmodified echo_threads under gonet's fibers mode beside the hand-written epoll loop and the Go
# server, in alternating rounds (so drift on a shared machine hits every server alike).
# Throughput says which server is faster; this says whether the difference is in the kernel
# (syscalls per request) or in user space (gonet's own code), which is what to work on.
#
# Usage: scripts/bench/cpu_per_request.sh BUILD_DIR [ROUNDS] [CONNS]
#   defaults: 3 rounds, 1000 connections; BENCH_DURATION=5 seconds per cell; BENCH_SIZE=64.
# Server on CPU 0, loadgen on CPU 1, as in run.sh. CPU time is utime and stime of the whole
# process from /proc/PID/stat (kernel ticks, so about +-1% at these durations), divided by the
# requests loadgen completed in the same window (no warm-up: every request is counted).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [ROUNDS] [CONNS]" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
ROUNDS=${2:-3}
CONNS=${3:-1000}
DURATION=${BENCH_DURATION:-5}
SIZE=${BENCH_SIZE:-64}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=server_control.sh
. "$ROOT/scripts/bench/server_control.sh"

bench_workdir cpu
TICKS=$(getconf CLK_TCK)

SERVERS=("gonet-fibers" "epoll_echo")
GO_ECHO=$BUILD/go_echo
[[ -x $GO_ECHO ]] && SERVERS+=("go_echo")  # built by run.sh (make bench)

launch() {  # launch SERVER: starts it on CPU 0
  local cmd
  case $1 in
    gonet-fibers)
      cmd=(env "LD_PRELOAD=$BUILD/libgonet.so" GONET_MODE=fibers GONET_QUIET_TLS=1
        "$BUILD/echo_threads" --port 0 --backlog 4096)
      ;;
    epoll_echo) cmd=("$BUILD/epoll_echo" --port 0) ;;
    go_echo) cmd=("$GO_ECHO" -port 0) ;;
  esac
  start_server "$WORK/out" "$WORK/err" taskset -c 0 "${cmd[@]}"
}

cpu_ticks() {  # cpu_ticks PID: "utime stime" of the process, in clock ticks
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }  # the fields after the command name, which may contain spaces
  read -r -a f <<<"$stat"
  echo "${f[11]} ${f[12]}"  # fields 14 and 15 of proc(5), counted from field 3
}

printf '%-6s %-13s %6s %10s %9s %9s %9s\n' round server conns req/s user_us sys_us total_us
for ((r = 1; r <= ROUNDS; r++)); do
  for s in "${SERVERS[@]}"; do
    if ! launch "$s"; then
      echo "cpu_per_request: $s did not start: $(head -c 200 "$WORK/err")" >&2
      exit 1
    fi
    read -r u0 s0 < <(cpu_ticks "$SERVER_PID")
    json=$(taskset -c 1 "$BUILD/loadgen" --port "$SERVER_PORT" --conns "$CONNS" --size "$SIZE" \
      --duration "$DURATION" --json 2>"$WORK/load.err")
    read -r u1 s1 < <(cpu_ticks "$SERVER_PID")
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<<"$json")
    req=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$json")
    awk -v r="$r" -v s="$s" -v c="$CONNS" -v rps="$rps" -v n="$req" -v t="$TICKS" \
      -v u=$((u1 - u0)) -v k=$((s1 - s0)) 'BEGIN {
        us = 1e6 / t / n
        printf "%-6s %-13s %6d %10.0f %9.3f %9.3f %9.3f\n", r, s, c, rps, u * us, k * us, (u + k) * us
      }'
  done
done
