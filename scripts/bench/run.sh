#!/usr/bin/env bash
# gonet's benchmark (`make bench`): the same unmodified thread-per-connection servers natively
# and under each gonet mode, beside the references they are judged against (a hand-written epoll
# loop, the ceiling; a goroutine-per-connection Go server, the target), side by side in one run.
#
# Usage: scripts/bench/run.sh BUILD_DIR
#   BENCH_QUICK=1          2 s cells at 1/100/1000 connections (checks the harness end to end)
#   BENCH_CONNS="1 100"    connection counts of the echo cells (default 1 100 1000 10000)
#   BENCH_DURATION=5       seconds measured per cell (after a warm-up)
#   BENCH_SIZE=64          echo message bytes
#   BENCH_HTTP_CONNS=500   wrk connections of the HTTP cells
#   BENCH_ROUNDS=3         rounds of every cell (1 with BENCH_QUICK); each row reports the median
#   BENCH_DEEP_IDLE_CONNS  connections of the idle-after-a-deep-request section (deep_idle.sh;
#                          default 10000, 1000 with BENCH_QUICK)
#
# Rounds: this machine is shared, and its speed drifts by 10-30% over minutes. One 5 s window per
# server let a ratio between two rows swing with whoever else was running when each row ran.
# So the whole sequence of cells runs ROUNDS times, each round starting the servers of a
# connection count in a rotated order; a row reports the median of its rounds' req/s and
# latencies (its peak RSS and threads: the highest), and its req/s range over the rounds. The
# medians of one run are still side by side: every server saw the same stretch of time.
#
# Every cell starts its server fresh with the server pinned to CPU 0 and the load (loadgen, wrk)
# pinned to CPU 1, health-checks it, samples its peak RSS (VmHWM) and thread count from
# /proc/PID/status while the load runs, and stops it. Results: bench/results/latest.{md,csv,png};
# the table is printed at the end. Loopback only. Nothing outlives the script.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESULTS=$ROOT/bench/results

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  DURATION=${BENCH_DURATION:-2}
  CONNS=${BENCH_CONNS:-"1 100 1000"}
  WARMUP=0.5
  ROUNDS=${BENCH_ROUNDS:-1}
else
  DURATION=${BENCH_DURATION:-5}
  CONNS=${BENCH_CONNS:-"1 100 1000 10000"}
  WARMUP=1
  ROUNDS=${BENCH_ROUNDS:-3}
fi
SIZE=${BENCH_SIZE:-64}
HTTP_CONNS=${BENCH_HTTP_CONNS:-500}
SERVER_CPU=0
LOAD_CPU=1

LOADGEN=$BUILD/loadgen
PRELOAD=$BUILD/libgonet.so
for tool in "$LOADGEN" "$BUILD/epoll_echo"; do
  [[ -x $tool ]] || { echo "bench: $tool is missing; build first (make build)" >&2; exit 1; }
done

# shellcheck source=server_control.sh
. "$ROOT/scripts/bench/server_control.sh"

bench_workdir bench

PIN_SERVER=(taskset -c "$SERVER_CPU")
PIN_LOAD=(taskset -c "$LOAD_CPU")
NOTES=()
if (($(nproc) < 2)); then
  PIN_SERVER=()
  PIN_LOAD=()
  NOTES+=("only $(nproc) CPU available: server and load were not pinned apart")
fi

log() { printf 'bench: %s\n' "$*" >&2; }

# --- the servers --------------------------------------------------------------------------
# A variant is how a program is run: natively, or preloaded with one gonet mode.
variant_env() {  # variant_env VARIANT: prints the environment words for `env`
  case $1 in
    native | ref) ;;
    gonet-threads) echo "LD_PRELOAD=$PRELOAD GONET_MODE=threads" ;;
    # threads mode on the netpoller path instead of the kernel wait (README: two ways to wait)
    gonet-threads-np) echo "LD_PRELOAD=$PRELOAD GONET_MODE=threads GONET_THREADS_WAIT=netpoller" ;;
    gonet-passthrough) echo "LD_PRELOAD=$PRELOAD GONET_MODE=passthrough" ;;
    gonet-fibers) echo "LD_PRELOAD=$PRELOAD GONET_MODE=fibers" ;;
  esac
}

# launch VARIANT PROGRAM ARGS...: starts the program pinned to the server CPU with the variant's
# environment; see start_server.
launch() {
  local variant=$1
  shift
  # shellcheck disable=SC2046  # variant_env's words are NAME=VALUE pairs without spaces
  start_server "$WORK/server.out" "$WORK/server.err" \
    "${PIN_SERVER[@]}" env $(variant_env "$variant") "$@"
}

stop_server() {
  [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
  SERVER_PID=""
}

server_stderr() {  # the first lines the server wrote to stderr, on one line, for a note
  head -c 300 "$WORK/server.err" | tr '\n' ' '
}

# --- the cells ----------------------------------------------------------------------------
CSV=$WORK/results.csv  # one row per cell and round; the report aggregates it
echo "suite,server,conns,rps,p50_us,p99_us,p999_us,peak_rss_kb,peak_threads,status,round" >"$CSV"

json_field() {  # json_field NAME JSON: the value of a flat JSON object's field
  sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"
}

wrk_field() {  # wrk_field NAME LINE: the value of NAME=VALUE in wrk_report.lua's line
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# health_check MODE: a few verified round trips on one connection
health_check() {
  "$LOADGEN" --mode "$1" --port "$SERVER_PORT" --conns 1 --duration 2 --max-requests 20 \
    --json >/dev/null 2>"$WORK/health.err"
}

# run_cell SUITE LABEL VARIANT CONNS PROGRAM ARGS...: one server, one load, one CSV row.
run_cell() {
  local suite=$1 label=$2 variant=$3 conns=$4
  shift 4
  local mode=echo
  [[ $suite == http ]] && mode=http
  log "$suite $label, $conns connections"
  if ! launch "$variant" "$@"; then
    echo "$suite,$label,$conns,,,,,,,no listening line: $(server_stderr | tr ',' ';'),$ROUND" >>"$CSV"
    stop_server
    return
  fi
  if ! health_check "$mode"; then
    echo "$suite,$label,$conns,,,,,,,failed health check: $(head -c 200 "$WORK/health.err" |
      tr '\n,' ' ;'),$ROUND" >>"$CSV"
    stop_server
    return
  fi
  : >"$WORK/sample"
  start_sampler "$SERVER_PID" "$WORK/sample"
  local rps p50 p99 p999 status=ok out rc=0
  if [[ $suite == http ]]; then
    out=$("${PIN_LOAD[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" \
      -s "$ROOT/scripts/bench/wrk_report.lua" "http://127.0.0.1:$SERVER_PORT/" \
      2>"$WORK/load.err") || rc=$?
    out=$(grep '^GONET_WRK' <<<"$out" || true)
    rps=$(wrk_field rps "$out") p50=$(wrk_field p50_us "$out")
    p99=$(wrk_field p99_us "$out") p999=$(wrk_field p999_us "$out")
    if [[ $rc -ne 0 || -z $out ]]; then
      status="wrk exit $rc"
    elif [[ $(wrk_field errors "$out") != 0 || $(wrk_field non2xx "$out") != 0 ]]; then
      status="wrk: $(wrk_field errors "$out") socket errors; $(wrk_field non2xx "$out") non-2xx"
    fi
  else
    out=$("${PIN_LOAD[@]}" "$LOADGEN" --port "$SERVER_PORT" --conns "$conns" --size "$SIZE" \
      --duration "$DURATION" --warmup "$WARMUP" --json 2>"$WORK/load.err") || rc=$?
    rps=$(json_field rps "$out") p50=$(json_field p50_us "$out")
    p99=$(json_field p99_us "$out") p999=$(json_field p999_us "$out")
    if [[ $rc -ne 0 ]]; then
      status="loadgen exit $rc: $(json_field connect_failed "$out") connect failures;"
      status+=" $(json_field dropped "$out") dropped; $(json_field verify_errors "$out") corrupt"
    elif [[ $(json_field stalled "$out") != 0 ]]; then
      # Connected, but never answered while measured: typically still in the accept queue.
      status="ok; $(json_field stalled "$out") connections unanswered in the window"
    fi
  fi
  # A last look before the server goes (VmHWM only grows, so this one is its peak), then the
  # highest thread count of all samples.
  read_status "$SERVER_PID" >>"$WORK/sample"
  stop_sampler
  local hwm threads
  read -r hwm threads < <(awk '$1 > h { h = $1 } $2 > t { t = $2 } END { print h + 0, t + 0 }' \
    "$WORK/sample")
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    status="server died: $(server_stderr)"
  fi
  stop_server
  echo "$suite,$label,$conns,$rps,$p50,$p99,$p999,$hwm,$threads,$(tr ',' ';' <<<"$status"),$ROUND" \
    >>"$CSV"
}

# --- which variants can run ---------------------------------------------------------------
VARIANTS=(native)
if [[ -r $PRELOAD ]]; then
  VARIANTS+=(gonet-threads gonet-threads-np gonet-passthrough)
  # Fibers mode is opt-in and young: give it one quick round before trusting it with cells.
  if [[ -x $BUILD/echo_threads ]] && launch gonet-fibers "$BUILD/echo_threads" --port 0 &&
    "$LOADGEN" --port "$SERVER_PORT" --conns 10 --duration 2 --max-requests 1000 \
      >/dev/null 2>"$WORK/probe.err"; then
    VARIANTS+=(gonet-fibers)
  else
    NOTES+=("gonet-fibers skipped: the probe (echo_threads, 10 connections, 1000 requests) failed:"
      "$(server_stderr) $(head -c 200 "$WORK/probe.err" 2>/dev/null | tr '\n' ' ')")
  fi
  stop_server
else
  NOTES+=("gonet variants skipped: $PRELOAD is missing")
fi

GO_ECHO=$BUILD/go_echo
if command -v go >/dev/null &&
  (cd "$ROOT/scripts/bench/go_echo" && GOCACHE=$BUILD/go-cache GOPATH=$BUILD/go-path \
    GOPROXY=off GOFLAGS= go build -o "$GO_ECHO" . 2>"$WORK/go.err"); then
  :
else
  GO_ECHO=""
  NOTES+=("go_echo skipped: go build failed: $(head -c 200 "$WORK/go.err" 2>/dev/null)")
fi

# --- the run ------------------------------------------------------------------------------
# echo_cell NAME CONNS: one echo cell by its row name ("echo_threads VARIANT" or a reference)
echo_cell() {
  case $1 in
    "epoll_echo (ref)") run_cell echo "$1" ref "$2" "$BUILD/epoll_echo" --port 0 ;;
    "go_echo (ref)") run_cell echo "$1" ref "$2" "$GO_ECHO" -port 0 ;;
    *) run_cell echo "$1" "${1#echo_threads }" "$2" "$BUILD/echo_threads" --port 0 --backlog 4096 ;;
  esac
}

ECHO_ROWS=()
if [[ -x $BUILD/echo_threads ]]; then
  for v in "${VARIANTS[@]}"; do ECHO_ROWS+=("echo_threads $v"); done
else
  NOTES+=("echo_threads missing: only the references ran")
fi
ECHO_ROWS+=("epoll_echo (ref)")
[[ -n $GO_ECHO ]] && ECHO_ROWS+=("go_echo (ref)")
HTTP=0
if [[ -x $BUILD/http_threads ]] && command -v wrk >/dev/null; then
  HTTP=1
else
  NOTES+=("HTTP cells skipped: http_threads or wrk missing")
fi

START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for conns in $CONNS; do
    n=${#ECHO_ROWS[@]}
    for ((i = 0; i < n; i++)); do
      echo_cell "${ECHO_ROWS[$(((i + ROUND - 1) % n))]}" "$conns"
    done
  done
  if ((HTTP)); then
    n=${#VARIANTS[@]}
    for ((i = 0; i < n; i++)); do
      v=${VARIANTS[$(((i + ROUND - 1) % n))]}
      run_cell http "http_threads $v" "$v" "$HTTP_CONNS" "$BUILD/http_threads" --port 0 \
        --backlog 4096
    done
  fi
done

# One row per cell: medians over the rounds, rows in round 1's order (which is not rotated).
cp "$CSV" "$WORK/rounds.csv"
awk -F, -v OFS=, '
  function median(list,   a, k, n, t, i, j) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  NR == 1 { print "suite,server,conns,rps,p50_us,p99_us,p999_us,peak_rss_kb,peak_threads,status,rps_min,rps_max,rounds"; next }
  {
    key = $1 SUBSEP $2 SUBSEP $3
    if (!(key in seen)) { seen[key] = 1; order[++n] = key; s[key] = $1; sv[key] = $2; c[key] = $3 }
    if ($4 != "") {
      rps[key] = rps[key] " " $4; p50[key] = p50[key] " " $5; p99[key] = p99[key] " " $6
      p999[key] = p999[key] " " $7; ok[key]++
      if (!(key in lo) || $4 + 0 < lo[key]) lo[key] = $4 + 0
      if (!(key in hi) || $4 + 0 > hi[key]) hi[key] = $4 + 0
    }
    if ($8 + 0 > rss[key]) rss[key] = $8 + 0
    if ($9 + 0 > thr[key]) thr[key] = $9 + 0
    # Unanswered connections are usual at 10,000 (a backlog still draining): one count per round.
    un_n = 0
    if ($10 ~ /^ok; [0-9]+ connections unanswered in the window$/) {
      split($10, w, " "); un_n = w[2]; any_un[key] = 1
    } else if ($10 != "ok") {
      st[key] = st[key] (st[key] == "" ? "" : "; ") "round " $11 ": " $10
    }
    un[key] = un[key] (un[key] == "" ? "" : "/") un_n
    rounds[key]++
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]
      status = st[k] != "" ? st[k] : any_un[k] ? "ok; " un[k] " connections unanswered in the window (per round)" : "ok"
      print s[k], sv[k], c[k], median(rps[k]), median(p50[k]), median(p99[k]), median(p999[k]),
            (rss[k] ? rss[k] : ""), (thr[k] ? thr[k] : ""), status, lo[k], hi[k], rounds[k]
    }
  }' "$WORK/rounds.csv" >"$CSV"
# Fibers mode exists to serve many connections on a few threads; say so when a run shows it did
# not (the mode may fall back to a thread per connection while it is incomplete).
while IFS= read -r row; do
  NOTES+=("$row")
done < <(awk -F, '$2 ~ /gonet-fibers/ && $3 >= 100 && $9 > $3 {
  printf "%s at %s connections peaked at %s threads: not M:N\n", $2, $3, $9 }' "$CSV")

# Memory, not throughput: idle connections after a deep first request (deep_idle.sh).
DEEP_IDLE_MD=$WORK/deep_idle.md
if [[ -x $BUILD/deep_idle_echo ]]; then
  log "idle connections after a deep first request"
  if [[ ${BENCH_QUICK:-0} == 1 ]]; then deep_conns=${BENCH_DEEP_IDLE_CONNS:-1000}; else
    deep_conns=${BENCH_DEEP_IDLE_CONNS:-10000}
  fi
  DEEP_IDLE_CONNS=$deep_conns DEEP_IDLE_CSV=$WORK/deep_idle.csv \
    "$ROOT/scripts/bench/deep_idle.sh" "$BUILD" >"$DEEP_IDLE_MD" ||
    NOTES+=("deep_idle.sh failed: $(tail -c 200 "$DEEP_IDLE_MD" | tr '\n' ' ')")
else
  : >"$DEEP_IDLE_MD"
  NOTES+=("deep_idle_echo missing: no idle-after-a-deep-request section")
fi

# --- the report ---------------------------------------------------------------------------
mkdir -p "$RESULTS"
[[ -s $WORK/deep_idle.csv ]] && cp "$WORK/deep_idle.csv" "$RESULTS/latest.deep_idle.csv"
cp "$CSV" "$RESULTS/latest.csv"
cp "$WORK/rounds.csv" "$RESULTS/latest.rounds.csv"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
  echo "# gonet benchmark"
  echo
  echo "$START, commit $commit, $(nproc) x $cpu, Linux $(uname -r)."
  echo "Server pinned to CPU $SERVER_CPU, load to CPU $LOAD_CPU; ${DURATION} s measured per cell" \
    "after a warm-up of at least ${WARMUP} s that lasts until every connection has been answered;" \
    "each server started fresh per cell."
  echo "Echo: loadgen ping-pong with ${SIZE}-byte messages, every byte verified." \
    "HTTP: \`wrk -t1 -c$HTTP_CONNS -d${DURATION}s\` on GET /."
  echo "\"vs native\" is req/s over echo_threads (or http_threads) native at the same" \
    "connection count in this run."
  echo "Each cell ran $ROUNDS time(s), the rounds interleaved (every server in round 1, then in" \
    "round 2, ...); a row gives the median req/s and latencies of its rounds, the req/s range," \
    "and the highest RSS and thread count (per round: latest.rounds.csv)."
  echo
  awk -F, '
    NR == 1 { next }
    { n++; suite[n] = $1; server[n] = $2; conns[n] = $3; rps[n] = $4; p50[n] = $5; p99[n] = $6
      p999[n] = $7; rss[n] = $8; thr[n] = $9; st[n] = $10; lo[n] = $11; hi[n] = $12
      if ($2 ~ / native$/ && $4 != "") base[$1 "/" $3] = $4 }
    function cell(v) { return v == "" ? "-" : v }
    END {
      last = ""
      for (i = 1; i <= n; i++) {
        if (suite[i] != last) {
          last = suite[i]
          printf "\n## %s\n\n", suite[i] == "echo" ? "Echo" : "HTTP"
          printf "| server | conns | req/s | range | vs native | p50 us | p99 us | p999 us |"
          print " peak RSS MiB | peak RSS/conn KiB | peak threads | status |"
          print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        }
        b = base[suite[i] "/" conns[i]]
        ratio = (b != "" && rps[i] != "" && b > 0) ? sprintf("%.2f", rps[i] / b) : "-"
        mib = rss[i] > 0 ? sprintf("%.1f", rss[i] / 1024) : "-"
        # The whole peak over the connections, start-up memory included: comparable within a
        # connection count (the idle section below subtracts a baseline).
        per = rss[i] > 0 && conns[i] > 0 ? sprintf("%.1f", rss[i] / conns[i]) : "-"
        range = lo[i] == "" ? "-" : sprintf("%.0f-%.0f", lo[i], hi[i])
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", server[i],
               conns[i], rps[i] == "" ? "-" : sprintf("%.0f", rps[i]), range, ratio, cell(p50[i]),
               cell(p99[i]), cell(p999[i]), mib, per, (thr[i] > 0 ? thr[i] : "-"), st[i]
      }
    }' "$CSV"
  if [[ -s $DEEP_IDLE_MD ]]; then
    echo
    echo "## Idle connections after a deep first request"
    echo
    echo "\`scripts/bench/deep_idle.sh\` (issue 16): memory a connection costs once idle."
    cat "$DEEP_IDLE_MD"
  fi
  if ((${#NOTES[@]} > 0)); then
    echo
    echo "Notes:"
    for note in "${NOTES[@]}"; do echo "- $note"; done
  fi
} >"$RESULTS/latest.md"

# The chart: echo req/s against connections, one line per server.
if command -v gnuplot >/dev/null; then
  plot=()
  while IFS= read -r server; do
    data=$WORK/plot.$((${#plot[@]})).dat
    awk -F, -v s="$server" '$1 == "echo" && $2 == s && $4 != "" { print $3, $4 }' "$CSV" >"$data"
    [[ -s $data ]] && plot+=("'$data' using 1:2 with linespoints title '$server'")
  done < <(awk -F, 'NR > 1 && $1 == "echo" && !seen[$2]++ { print $2 }' "$CSV")
  if ((${#plot[@]} > 0)); then
    joined=$(printf '%s, ' "${plot[@]}")
    gnuplot <<EOF 2>"$WORK/gnuplot.err" || log "gnuplot failed: $(head -c 200 "$WORK/gnuplot.err")"
set terminal pngcairo size 960,640 noenhanced
set output '$RESULTS/latest.png'
set title 'Echo, ${SIZE}-byte ping-pong: requests/s vs connections (server on 1 core)'
set xlabel 'connections'
set ylabel 'requests/s'
set logscale x
set grid
set key below
set bmargin 8
# Colours that stay apart on white (no yellow).
set linetype 1 lc rgb '#1f77b4' lw 2 pt 7
set linetype 2 lc rgb '#ff7f0e' lw 2 pt 5
set linetype 3 lc rgb '#2ca02c' lw 2 pt 9
set linetype 4 lc rgb '#d62728' lw 2 pt 11
set linetype 5 lc rgb '#9467bd' lw 2 pt 13
set linetype 6 lc rgb '#8c564b' lw 2 pt 3
set linetype 7 lc rgb '#7f7f7f' lw 2 pt 1
set linetype cycle 7
set yrange [0:*]
plot ${joined%, }
EOF
  fi
fi

cat "$RESULTS/latest.md"
log "results in $RESULTS/latest.md, latest.csv, latest.png"
