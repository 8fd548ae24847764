#!/usr/bin/env bash
# What threads mode costs per request (issue 16): echo_threads natively, under gonet's threads
# mode and under passthrough (which loads the library but does no per-call work), in interleaved
# rounds, so that this shared machine's drift hits every variant alike. With OLD_PRELOAD set, a
# saved libgonet.so runs as a fourth variant ("threads-old"): the only fair before/after
# comparison of a change on this machine is old and new in the same run.
#
# Usage: scripts/bench/threads_overhead.sh BUILD_DIR [ROUNDS] [CONNS...]
#   defaults: 5 rounds at 1000 and 1 connections.
#   BENCH_DURATION=5   seconds measured per cell (after a 1 s warm-up, as run.sh)
#   BENCH_SIZE=64      echo message bytes
#   OLD_PRELOAD=PATH   an older libgonet.so to run as "threads-old"
#   VARIANTS="native threads passthrough"   the variants (threads-old is added by OLD_PRELOAD)
#
# Server pinned to CPU 0 and loadgen to CPU 1, started fresh per cell, as run.sh does. Besides
# req/s, the server's user and system CPU per request (utime/stime from /proc/PID/stat, as
# cpu_per_request.sh) over the middle of the measured window: a sampler on the load CPU reads
# them 0.5 s after the warm-up and 0.5 s before the end, and the requests in between are
# req/s x that span. Each round starts its variants in a rotated order. Prints one line per cell
# as it goes, then per connection count the median req/s, the ratio to native's median, the
# req/s range and the median CPU per request.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [ROUNDS] [CONNS...]" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
ROUNDS=${2:-5}
shift $(($# >= 2 ? 2 : 1))
CONNS=("$@")
((${#CONNS[@]} > 0)) || CONNS=(1000 1)
DURATION=${BENCH_DURATION:-5}
SIZE=${BENCH_SIZE:-64}
WARMUP=1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=server_control.sh
. "$ROOT/scripts/bench/server_control.sh"

read -r -a VARS <<<"${VARIANTS:-native threads passthrough}"
[[ -n ${OLD_PRELOAD:-} ]] && VARS+=(threads-old)
for tool in "$BUILD/loadgen" "$BUILD/echo_threads" "$BUILD/libgonet.so"; do
  [[ -e $tool ]] || { echo "threads_overhead: $tool is missing; build first" >&2; exit 1; }
done

bench_workdir threads-overhead
TICKS=$(getconf CLK_TCK)
PIN_LOAD=(taskset -c 1)  # start_sampler's pinning (server_control.sh)
LOAD_CPU=1

variant_env() {
  case $1 in
    native) ;;
    threads) echo "LD_PRELOAD=$BUILD/libgonet.so GONET_MODE=threads" ;;
    threads-old) echo "LD_PRELOAD=$OLD_PRELOAD GONET_MODE=threads" ;;
    passthrough) echo "LD_PRELOAD=$BUILD/libgonet.so GONET_MODE=passthrough" ;;
    *) echo "threads_overhead: unknown variant $1" >&2; exit 2 ;;
  esac
}

cpu_ticks() {  # cpu_ticks PID: "utime stime" in clock ticks
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  read -r -a f <<<"$stat"
  echo "${f[11]} ${f[12]}"
}

CSV=$WORK/cells.csv
: >"$CSV"
printf '%-5s %-12s %6s %10s %9s %9s\n' round variant conns req/s user_us sys_us
for ((r = 1; r <= ROUNDS; r++)); do
  for conns in "${CONNS[@]}"; do
    n=${#VARS[@]}
    for ((i = 0; i < n; i++)); do
      v=${VARS[$(((i + r - 1) % n))]}
      # shellcheck disable=SC2046  # NAME=VALUE words without spaces
      if ! start_server "$WORK/out" "$WORK/err" taskset -c 0 env $(variant_env "$v") \
        "$BUILD/echo_threads" --port 0 --backlog 4096; then
        echo "threads_overhead: $v did not start: $(head -c 200 "$WORK/err")" >&2
        exit 1
      fi
      # The sampler: ticks 0.5 s into the measured window and 0.5 s before its end. The
      # warm-up lasts at least WARMUP (longer only until every connection has been answered).
      pid=$SERVER_PID
      (
        taskset -cp 1 "$BASHPID" >/dev/null
        sleep "$(awk -v w=$WARMUP 'BEGIN { print w + 0.5 }')"
        cpu_ticks "$pid"
        sleep "$((DURATION - 1))"
        cpu_ticks "$pid"
      ) >"$WORK/ticks" &
      SAMPLER_PID=$!
      json=$(taskset -c 1 "$BUILD/loadgen" --port "$SERVER_PORT" --conns "$conns" \
        --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" --json 2>"$WORK/load.err") ||
        { echo "threads_overhead: loadgen failed for $v: $(head -c 200 "$WORK/load.err")" >&2; }
      wait "$SAMPLER_PID" || true
      SAMPLER_PID=""
      stop_pid "$SERVER_PID"
      SERVER_PID=""
      rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<<"$json")
      read -r u0 s0 u1 s1 < <(tr '\n' ' ' <"$WORK/ticks"; echo)
      awk -v r="$r" -v v="$v" -v c="$conns" -v rps="${rps:-0}" -v t="$TICKS" \
        -v u="$((${u1:-0} - ${u0:-0}))" -v k="$((${s1:-0} - ${s0:-0}))" -v span="$((DURATION - 1))" \
        'BEGIN {
          n = rps * span; us = n > 0 ? 1e6 / t / n : 0
          printf "%-5s %-12s %6d %10.0f %9.3f %9.3f\n", r, v, c, rps, u * us, k * us
        }' | tee -a "$CSV"
    done
  done
done

echo
printf '%-12s %6s %10s %8s %17s %9s %9s %9s\n' variant conns "med req/s" "vs nat" range user_us \
  sys_us total_us
awk '
  function median(list,   a, k, n, t, i, j) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    key = $2 " " $3
    if (!(key in seen)) { seen[key] = 1; order[++m] = key }
    rps[key] = rps[key] " " $4; u[key] = u[key] " " $5; s[key] = s[key] " " $6
    tot[key] = tot[key] " " ($5 + $6)
    if (!(key in lo) || $4 + 0 < lo[key]) lo[key] = $4 + 0
    if (!(key in hi) || $4 + 0 > hi[key]) hi[key] = $4 + 0
  }
  END {
    for (i = 1; i <= m; i++) { k = order[i]; split(k, p, " "); if (p[1] == "native") base[p[2]] = median(rps[k]) }
    for (i = 1; i <= m; i++) {
      k = order[i]; split(k, p, " ")
      med = median(rps[k]); b = base[p[2]]
      printf "%-12s %6d %10.0f %8s %17s %9.3f %9.3f %9.3f\n", p[1], p[2], med,
             (b > 0 ? sprintf("%.3f", med / b) : "-"), sprintf("%.0f-%.0f", lo[k], hi[k]),
             median(u[k]), median(s[k]), median(tot[k])
    }
  }' "$CSV" | sort -k2,2n -k1,1
