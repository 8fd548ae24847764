#!/usr/bin/env bash
# Runs loadgen (10 connections, 1 s) against epoll_echo and checks loadgen's verdict.
# Usage: loadgen_against_epoll_echo.sh EPOLL_ECHO LOADGEN pass|fail [epoll_echo args...]
#   pass: loadgen must exit 0 (every byte verified, every connection up).
#   fail: loadgen must exit 1 (the server was told to corrupt its echo).
set -euo pipefail
server_bin=$1 loadgen_bin=$2 expect=$3
shift 3

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# --lifetime bounds the server even if this script is killed before its trap runs.
"$server_bin" --port 0 --lifetime 60 "$@" >"$tmp/out" 2>"$tmp/err" &
server_pid=$!
port=""
while [[ -z "$port" ]]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "epoll_echo exited before listening:" >&2
    cat "$tmp/err" >&2
    exit 1
  fi
  port=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$tmp/out")
  [[ -n "$port" ]] || sleep 0.05
done

set +e
"$loadgen_bin" --port "$port" --conns 10 --size 64 --duration 1
rc=$?
set -e
case "$expect:$rc" in
  pass:0 | fail:1) echo "loadgen exit $rc, as expected ($expect)" ;;
  *) echo "loadgen exit $rc, expected $expect" >&2; exit 1 ;;
esac
