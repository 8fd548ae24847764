#!/usr/bin/env bash
# Runs loadgen (10 connections, 1 s) against epoll_echo and checks loadgen's verdict.
# Usage: loadgen_against_epoll_echo.sh EPOLL_ECHO LOADGEN pass|fail [epoll_echo args...]
#   pass: loadgen must exit 0 (every byte verified, every connection up).
#   fail: loadgen must exit 1 (the server was told to corrupt its echo).
set -euo pipefail
server_bin=$1 loadgen_bin=$2 expect=$3
shift 3
# shellcheck source=server_control.sh
. "$(dirname "$0")/server_control.sh"

tmp=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
  rm -rf "$tmp"
}
trap cleanup EXIT

# --lifetime bounds the server even if this script is killed before its trap runs.
if ! start_server "$tmp/out" "$tmp/err" "$server_bin" --port 0 --lifetime 60 "$@"; then
  echo "epoll_echo did not start listening:" >&2
  cat "$tmp/err" >&2
  exit 1
fi

set +e
"$loadgen_bin" --port "$SERVER_PORT" --conns 10 --size 64 --duration 1
rc=$?
set -e
case "$expect:$rc" in
  pass:0 | fail:1) echo "loadgen exit $rc, as expected ($expect)" ;;
  *) echo "loadgen exit $rc, expected $expect" >&2; exit 1 ;;
esac
