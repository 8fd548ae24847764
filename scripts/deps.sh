#!/usr/bin/env bash
# Installs the Debian packages gonet needs that are missing, and nothing else.
# Usage: scripts/deps.sh [build|demo|deb|test|bench]...   (default: build)
# Runs `apt-get update` once, and only when something is missing.
set -euo pipefail

build_pkgs=(g++ cmake make pkg-config libboost-context-dev libunwind-dev libgtest-dev
            libgmock-dev libcxxopts-dev)
test_pkgs=(curl python3 socat redis-server strace procps iproute2 file privoxy iperf
           dpkg-dev lintian man-db
           libpython3.11-testsuite libglib2.0-tests dbus-tests apache2-bin stunnel4 openssl)
bench_pkgs=(golang-go wrk gnuplot-nox util-linux)
# make deb: dpkg-shlibdeps (dpkg-dev) for Depends; lintian checks the result.
deb_pkgs=(dpkg-dev lintian)
# make run: taskset (util-linux) pins server and load apart; gnuplot-nox draws the chart.
demo_pkgs=(util-linux procps gnuplot-nox)

want=()
for set in "${@:-build}"; do
  case "$set" in
    build) want+=("${build_pkgs[@]}") ;;
    demo) want+=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
    deb) want+=("${build_pkgs[@]}" "${deb_pkgs[@]}") ;;
    test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    bench) want+=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "deps.sh: unknown set '$set' (build, demo, deb, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
[[ $(id -u) == 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
