# Sourced by the benchmarks (run.sh, deep_idle.sh, cpu_per_request.sh, threads_overhead.sh) and
# ../demo.sh: a scratch directory with its clean-up, starting a sample server in the background, learning its
# port, stopping it (or anything else this shell started) without leaving it behind, and
# sampling its peak RSS and thread count while it runs.

# bench_workdir NAME: a scratch directory in WORK, and traps that on exit stop whatever the script
# left running (LOAD_PID, SAMPLER_PID, SERVER_PID, in that order) and remove it; INT and TERM exit
# 130 through them. Also raises the fd limit to the hard one: thread-per-connection servers at
# 10,000 connections need 10,000 fds and do not raise the soft limit themselves.
bench_workdir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/gonet-$1.XXXXXX")
  SERVER_PID=""
  SAMPLER_PID=""
  LOAD_PID=""
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  ulimit -n "$(ulimit -Hn)"
}

bench_cleanup() {
  [[ -n $LOAD_PID ]] && stop_pid "$LOAD_PID"
  [[ -n $SAMPLER_PID ]] && stop_pid "$SAMPLER_PID"
  [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
  rm -rf "$WORK"
}

# stop_pid PID: SIGTERM, up to 3 s of grace, then SIGKILL; reaps it if it is our child.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# start_server OUT ERR COMMAND...: runs COMMAND in the background with stdout in OUT and stderr
# in ERR, and waits up to 10 s for its "listening on PORT" line. Sets SERVER_PID (always) and
# SERVER_PORT; returns 1 if the line never came.
start_server() {
  local out=$1 err=$2 i
  shift 2
  # Truncated here, not by the background job's redirection, so that the loop below can never
  # read the port of a previous server that used the same file.
  : >"$out"
  "$@" >"$out" 2>"$err" &
  SERVER_PID=$!
  SERVER_PORT=""
  for ((i = 0; i < 200; i++)); do
    SERVER_PORT=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$out")
    [[ -n $SERVER_PORT ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  return 1
}

# start_sampler PID OUT: appends "VmHWM Threads" from /proc/PID/status to OUT every 100 ms, with
# shell builtins only: it waits with `read -t` on a pipe nobody writes, so no sleep child outlives
# it. It runs on the load CPU (the caller's LOAD_CPU, when its PIN_LOAD array is not empty): on
# the server's CPU it would queue behind thousands of runnable server threads and miss the peak.
# Sets SAMPLER_PID; stop_sampler ends it.
start_sampler() {
  local pid=$1 out=$2
  (
    ((${#PIN_LOAD[@]} == 0)) || taskset -cp "$LOAD_CPU" "$BASHPID" >/dev/null
    exec 3<> <(:)
    while [[ -r /proc/$pid/status ]]; do
      read_status "$pid" >>"$out"
      read -r -t 0.1 -u 3 _ || true
    done
  ) &
  SAMPLER_PID=$!
}

read_status() {  # read_status PID: prints "VmHWM_KB THREADS" of a live process
  local key value _ hwm=0 threads=0
  while read -r key value _; do
    case $key in
      VmHWM:) hwm=$value ;;
      Threads:) threads=$value ;;
    esac
  done <"/proc/$1/status" 2>/dev/null || true
  echo "$hwm $threads"
}

stop_sampler() {
  [[ -n $SAMPLER_PID ]] && stop_pid "$SAMPLER_PID"
  SAMPLER_PID=""
}
