#!/usr/bin/env bash
# `make run`: what gonet is for, in under a minute of load.
#
# One unmodified thread-per-connection sample server (http_threads, run with no idle timeout of
# its own, as many legacy daemons are), three times:
#   1. 2,000 keep-alive connections natively, then under `gonet run --mode fibers`, driven by
#      the bundled load client (loadgen: closed-loop GET /, every answer checked byte for byte):
#      req/s, p99, peak OS threads and peak RSS of the server, side by side;
#   2. a slow client that sends half a request head and stalls: natively it holds its thread
#      (the demo gives up after a few seconds), under `gonet run --read-timeout 2s` the server's
#      own recv times out and it closes the connection;
#   3. `gonet stats` and `gonet dump` of the fibers server while it carries the 2,000
#      connections (taken in the measured window; a dump of 2,000 fibers costs ~0.1 s).
# Then one sentence saying what was shown, and a PNG chart (BUILD_DIR/demo.png).
#
# The server is pinned to CPU 0 and the load to CPU 1 when there are two CPUs.
# Usage: scripts/demo.sh BUILD_DIR      (DEMO_CONNS=2000 DEMO_SECONDS=5 to change the load)
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNS=${DEMO_CONNS:-2000}
SECONDS_LOADED=${DEMO_SECONDS:-5}
WARMUP=1
READ_TIMEOUT=2s
NATIVE_PATIENCE_S=4  # how long the demo watches the native server hold the slow client
CHART=$BUILD/demo.png

# shellcheck source=bench/server_control.sh
. "$ROOT/scripts/bench/server_control.sh"

for need in http_threads loadgen libgonet.so gonet; do
  [[ -e $BUILD/$need ]] || { echo "demo: $BUILD/$need is missing; build first (make run)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gonet-demo.XXXXXX")
SERVER_PID="" SAMPLER_PID="" LOAD_PID=""
cleanup() {
  [[ -n $LOAD_PID ]] && stop_pid "$LOAD_PID"
  [[ -n $SAMPLER_PID ]] && stop_pid "$SAMPLER_PID"
  [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A thread per connection natively means a socket per connection on each side (the server and
# loadgen both inherit this limit), and neither raises its soft limit to the hard one.
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
ulimit -n "$hard"
if ((hard < CONNS + 64)); then
  echo "demo: the fd limit (ulimit -Hn) is $hard; running $((hard - 64)) connections instead of $CONNS" >&2
  CONNS=$((hard - 64))
fi

PIN_SERVER=() PIN_LOAD=() LOAD_CPU=1
if (($(nproc) >= 2)); then
  PIN_SERVER=(taskset -c 0) PIN_LOAD=(taskset -c "$LOAD_CPU")
fi

SERVER=("$BUILD/http_threads" --port 0 --backlog 4096 --idle-timeout 0)
GONET=("$BUILD/gonet" run)

log() { printf 'demo: %s\n' "$*" >&2; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$WORK/$2.json"; }

# load NAME COMMAND...: starts the server, samples it, puts CONNS connections of load on it for
# SECONDS_LOADED s (after the warm-up), and stops it. With NAME=fibers, also takes gonet stats and
# gonet dump half-way through the measured window. Leaves NAME.json (loadgen), NAME.peak
# ("VmHWM_KB THREADS"), NAME.err (the server's stderr), NAME.lerr (loadgen's).
load() {
  local name=$1
  shift
  log "$name: $CONNS connections, ${SECONDS_LOADED} s: $*"
  if ! start_server "$WORK/$name.out" "$WORK/$name.err" "${PIN_SERVER[@]}" "$@"; then
    log "$name: the server did not start: $(head -c 300 "$WORK/$name.err")"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    return 1
  fi
  : >"$WORK/$name.samples"
  start_sampler "$SERVER_PID" "$WORK/$name.samples"
  "${PIN_LOAD[@]}" "$BUILD/loadgen" --mode http --port "$SERVER_PORT" --conns "$CONNS" \
    --duration "$SECONDS_LOADED" --warmup "$WARMUP" --json >"$WORK/$name.json" \
    2>"$WORK/$name.lerr" &
  LOAD_PID=$!
  if [[ $name == fibers ]]; then
    # loadgen connects everything, then warms up until every connection has been answered; by
    # then the stats show every connection's fiber.
    local i live
    for ((i = 0; i < 200; i++)); do
      sleep 0.1
      "$BUILD/gonet" stats "$SERVER_PID" >"$WORK/stats.txt" 2>&1 || true
      live=$(sed -n 's/^ *fibers_live *\([0-9]*\)$/\1/p' "$WORK/stats.txt")
      ((${live:-0} >= CONNS)) && break
    done
    sleep "$(awk -v w="$WARMUP" -v d="$SECONDS_LOADED" 'BEGIN { print w + d / 2 }')"
    "$BUILD/gonet" stats "$SERVER_PID" >"$WORK/stats.txt" 2>&1 || true
    "$BUILD/gonet" dump "$SERVER_PID" >"$WORK/dump.txt" 2>&1 || true
  fi
  wait "$LOAD_PID" || true
  LOAD_PID=""
  read_status "$SERVER_PID" >>"$WORK/$name.samples"  # VmHWM only grows: the last is the peak
  stop_sampler
  awk '$1 > h { h = $1 } $2 > t { t = $2 } END { print h + 0, t + 0 }' "$WORK/$name.samples" \
    >"$WORK/$name.peak"
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}

# slow_client NAME PATIENCE_S COMMAND...: starts the server, opens one connection, sends half a
# request head (no blank line ends it) and waits up to PATIENCE_S for the server to close it.
# Writes "closed SECONDS" or "open SECONDS" to NAME.slow. With NAME=gonet, takes a dump while the
# client stalls (for the parked recv and its deadline).
slow_client() {
  local name=$1 patience=$2
  shift 2
  log "$name: one slow client: $*"
  if ! start_server "$WORK/$name.out" "$WORK/$name.err" "${PIN_SERVER[@]}" "$@"; then
    log "$name: the server did not start: $(head -c 300 "$WORK/$name.err")"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    return 1
  fi
  local start end verdict=open
  exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT"
  printf 'GET / HTTP/1.1\r\nHost: demo\r\n' >&3
  start=$EPOCHREALTIME
  # read returns 1 at EOF (the server closed the connection) and >128 when the time is up.
  local rc=0 _reply
  read -r -t "$patience" -u 3 _reply || rc=$?
  end=$EPOCHREALTIME
  ((rc == 1)) && verdict=closed
  exec 3>&-
  echo "$verdict $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" \
    >"$WORK/$name.slow"
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}

load native "${SERVER[@]}" || exit 1
fibers_ok=1
load fibers "${GONET[@]}" --mode fibers -- "${SERVER[@]}" || fibers_ok=0
slow_client native "$NATIVE_PATIENCE_S" "${SERVER[@]}" || exit 1
slow_client gonet 10 "${GONET[@]}" --mode fibers --read-timeout "$READ_TIMEOUT" -- "${SERVER[@]}" ||
  true

# --- the report -----------------------------------------------------------------------------
row() {  # row NAME LABEL: one line of the table, and NAME's numbers in globals for the summary
  local name=$1 label=$2 rps p99 ok hwm threads verdict
  if [[ ! -s $WORK/$name.json ]]; then
    printf '  %-22s %s\n' "$label" "did not run: $(head -c 200 "$WORK/$name.err" | tr '\n' ' ')"
    return
  fi
  rps=$(field rps "$name") p99=$(field p99_us "$name") ok=$(field ok "$name")
  read -r hwm threads <"$WORK/$name.peak"
  verdict="all bytes verified"
  if [[ $ok != true ]]; then
    verdict="FAILED: $(field connect_failed "$name") connect failures, $(field dropped "$name")"
    verdict+=" dropped, $(field verify_errors "$name") wrong answers"
  fi
  printf '  %-22s %9.0f %9.1f %11s %13.1f %10s   %s\n' "$label" "$rps" \
    "$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" "$threads" \
    "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" \
    "$(awk -v a="$rps" -v b="$(field rps native)" 'BEGIN { printf "%.2fx", a / b }')" "$verdict"
  printf '%s %s %s %s %s\n' "$rps" "$p99" "$threads" "$hwm" "$ok" >"$WORK/$name.row"
}

echo
echo "http_threads (one blocking thread per connection, unmodified), $CONNS keep-alive"
echo "connections, ${SECONDS_LOADED} s of GET / each, server on CPU 0, loadgen on CPU 1:"
echo
printf '  %-22s %9s %9s %11s %13s %10s   %s\n' "" "req/s" "p99 ms" "OS threads" "peak RSS MiB" \
  "vs native" "answers"
row native "native"
row fibers "gonet --mode fibers"
echo
slow_line() {
  local name=$1 label=$2 verdict seconds
  read -r verdict seconds <"$WORK/$name.slow" 2>/dev/null || { printf '  %-28s did not run\n' "$label"; return; }
  if [[ $verdict == closed ]]; then
    printf '  %-28s closed by the server after %s s\n' "$label" "$seconds"
  else
    printf '  %-28s still open after %s s: its thread waits forever (the demo gave up)\n' \
      "$label" "$seconds"
  fi
}
echo "A slow client sends 'GET / HTTP/1.1\\r\\nHost: demo\\r\\n' and stalls:"
slow_line native "native"
slow_line gonet "gonet --read-timeout $READ_TIMEOUT"

strip() { sed "s#$BUILD/##g; s/^/  | /"; }
if [[ -s $WORK/stats.txt ]]; then
  echo
  echo "gonet stats PID, during the load (excerpt):"
  grep -E '^gonet stats|^ *(parks|wakes_io|epoll_waits|fds_armed|threads_parked|fibers_live|drained_parks) ' \
    "$WORK/stats.txt" | strip
fi
if [[ -s $WORK/dump.txt ]]; then
  echo
  echo "gonet dump PID, during the load (excerpt: its first line and one connection's fiber):"
  { head -1 "$WORK/dump.txt"; echo; awk '/^fiber /{ n++ } n == 1 && !/^$/' "$WORK/dump.txt" |
    head -10; } | strip
fi

# --- the chart --------------------------------------------------------------------------------
if [[ -s $WORK/native.row && -s $WORK/fibers.row ]] && command -v gnuplot >/dev/null; then
  {
    read -r n_rps n_p99 n_thr n_hwm _ <"$WORK/native.row"
    read -r f_rps f_p99 f_thr f_hwm _ <"$WORK/fibers.row"
    printf '0 native %s %s %s %s\n' "$n_rps" "$(awk -v u="$n_p99" 'BEGIN { print u / 1000 }')" \
      "$n_thr" "$(awk -v k="$n_hwm" 'BEGIN { print k / 1024 }')"
    printf '1 "gonet fibers" %s %s %s %s\n' "$f_rps" "$(awk -v u="$f_p99" 'BEGIN { print u / 1000 }')" \
      "$f_thr" "$(awk -v k="$f_hwm" 'BEGIN { print k / 1024 }')"
  } >"$WORK/chart.dat"
  if gnuplot <<EOF 2>"$WORK/gnuplot.err"; then
set terminal pngcairo size 1200,420 noenhanced font ',11'
set output '$CHART'
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set xrange [-0.6:1.6]
set grid ytics
unset key
set multiplot layout 1,4 title 'http_threads, $CONNS keep-alive connections: native vs gonet --mode fibers (same binary)'
set title 'requests/s (higher is better)'
plot '$WORK/chart.dat' using 1:3:(\$1 == 0 ? 0x7f7f7f : 0x1f77b4):xtic(2) with boxes lc rgb variable, \\
  '' using 1:3:(sprintf('%.0f', \$3)) with labels offset 0,0.8
set title 'p99 latency, ms'
plot '$WORK/chart.dat' using 1:4:(\$1 == 0 ? 0x7f7f7f : 0x1f77b4):xtic(2) with boxes lc rgb variable, \\
  '' using 1:4:(sprintf('%.1f', \$4)) with labels offset 0,0.8
set title 'OS threads (peak)'
plot '$WORK/chart.dat' using 1:5:(\$1 == 0 ? 0x7f7f7f : 0x1f77b4):xtic(2) with boxes lc rgb variable, \\
  '' using 1:5:(sprintf('%.0f', \$5)) with labels offset 0,0.8
set title 'peak RSS, MiB'
plot '$WORK/chart.dat' using 1:6:(\$1 == 0 ? 0x7f7f7f : 0x1f77b4):xtic(2) with boxes lc rgb variable, \\
  '' using 1:6:(sprintf('%.1f', \$6)) with labels offset 0,0.8
unset multiplot
EOF
    chart_note="chart: $CHART"
  else
    chart_note="chart: gnuplot failed: $(head -c 200 "$WORK/gnuplot.err")"
  fi
else
  chart_note="chart: not drawn (gnuplot-nox is not installed, or a run failed)"
fi

# --- what was shown ---------------------------------------------------------------------------
echo
if ((fibers_ok)) && [[ -s $WORK/native.row && -s $WORK/fibers.row ]]; then
  read -r n_rps n_p99 n_thr n_hwm n_ok <"$WORK/native.row"
  read -r f_rps f_p99 f_thr f_hwm f_ok <"$WORK/fibers.row"
  verified="every answer verified"
  [[ $n_ok == true && $f_ok == true ]] || verified="NOT every answer verified (see the table)"
  slow="a stalled client"
  read -r verdict seconds <"$WORK/gonet.slow" 2>/dev/null || verdict=""
  if [[ $verdict == closed ]]; then
    slow+=" that the native server holds forever was cut after $seconds s by --read-timeout $READ_TIMEOUT"
  else
    slow+=" was NOT cut by --read-timeout $READ_TIMEOUT"
  fi
  awk -v c="$CONNS" -v nr="$n_rps" -v fr="$f_rps" -v nt="$n_thr" -v ft="$f_thr" -v nh="$n_hwm" \
    -v fh="$f_hwm" -v v="$verified" -v s="$slow" 'BEGIN {
      printf "Shown: the same unmodified blocking server served %d connections under gonet'"'"'s fibers mode at %.2fx native req/s on %d OS threads instead of %d, in %.0f MiB instead of %.0f MiB, %s; and %s, without a line of the program changed.\n",
        c, fr / nr, ft, nt, fh / 1024, nh / 1024, v, s }' | fold -s -w 100 | sed 's/ *$//'
else
  echo "Shown: http_threads natively; under gonet --mode fibers it did not run (its stderr is above)."
fi
echo "$chart_note"
