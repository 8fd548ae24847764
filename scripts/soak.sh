#!/usr/bin/env bash
# make soak: every sample daemon, natively and under each gonet mode, under thousands of
# connections with injected resets, delays and refused connects (tests/soak/run_soak.py says
# what each cell checks). Loopback only; stops by itself after about
# cells x (SOAK_SECONDS + a few seconds). Not part of make test.
#   SOAK_SECONDS  per cell, default 15 (15 cells: about 5 minutes; 120 for a 30-minute soak)
#   SOAK_CONNS    concurrent client threads, default 64
#   SOAK_CELLS    comma-separated filters, e.g. "echo_threads/threads,prefork/native"
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
# The load client is built here rather than by CMake so the soak needs nothing from the
# top-level build beyond libgonet.so and the examples.
g++ -std=c++20 -O2 -Wall -Wextra -Werror -pthread "$here/tests/soak/soak_client.cc" \
  -o "$build/soak_client"
exec /usr/bin/python3 "$here/tests/soak/run_soak.py" "$build"
