#!/usr/bin/env bash
# libFuzzer targets for gonet's parsers and core's socket operations (tests/fuzz/).
#   scripts/fuzz.sh [short|long|build] [TARGET...]
#     build   only build them (clang++ 14, ASan+UBSan) into build-fuzz/
#     short   run each for FUZZ_SECONDS (default 10); prints "fuzz TARGET: ok|FAIL" per target
#     long    run each for FUZZ_SECONDS (default 600)
# Corpora persist in build-fuzz/corpus/TARGET; a crash leaves its input in build-fuzz/ and the
# command that replays it is printed. Exit status: number of failing targets (0: all ok).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-short}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(duration_fuzzer fault_spec_fuzzer config_fuzzer ops_fuzzer)
out="$here/build-fuzz"
case $what in
  short) seconds=${FUZZ_SECONDS:-10} ;;
  long) seconds=${FUZZ_SECONDS:-600} ;;
  build) seconds=0 ;;
  *) echo "usage: scripts/fuzz.sh [short|long|build] [TARGET...]" >&2; exit 2 ;;
esac
mkdir -p "$out"
# See tests/fuzz/CMakeLists.txt: clang refuses core/fibers/fiber.cc's __cxa_get_globals declaration.
fiber_obj="$out/fiber_gcc.o"
if [[ ! -f $fiber_obj || $here/core/fibers/fiber.cc -nt $fiber_obj ]]; then
  g++ -std=c++20 -O1 -g -fPIC -fno-omit-frame-pointer -fsanitize=address -I"$here" \
    -c "$here/core/fibers/fiber.cc" -o "$fiber_obj" >"$out.fiber.log" 2>&1 || fiber_obj=""
fi
if ! cmake -S "$here/tests/fuzz" -B "$out" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGONET_FIBER_OBJECT="$fiber_obj" \
     >"$out.configure.log" 2>&1 ||
   ! cmake --build "$out" -j2 --target "${targets[@]}" >"$out.build.log" 2>&1; then
  tail -n 30 "$out.configure.log" "$out.build.log" 2>/dev/null
  echo "fuzz: build failed (log: $out.build.log)"
  exit ${#targets[@]}
fi
((seconds > 0)) || exit 0
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t"
  log="$out/$t.log"
  # detect_leaks=0: LoadConfigFromEnv keeps its fault rules for the process's life on purpose.
  # -timeout=0: libFuzzer's per-input timer is a SIGALRM, which would interrupt blocking
  # calls with EINTR at random points and make ops_fuzzer's two sides differ; the outer
  # timeout(1) catches a hang instead.
  if (cd "$out" && ASAN_OPTIONS=detect_leaks=0 timeout -s KILL $((seconds * 2 + 120)) \
        ./"$t" -max_total_time="$seconds" -timeout=0 -rss_limit_mb=1024 \
        -print_final_stats=0 "corpus/$t" >"$log" 2>&1); then
    echo "fuzz $t: ok ($(grep -oE '#[0-9]+' "$log" | tail -n 1 | tr -d '#') runs)"
  else
    failed=$((failed + 1))
    echo "fuzz $t: FAIL"
    grep -E 'ERROR|disagree|SUMMARY|Test unit written' "$log" | head -n 8 | sed 's/^/    /'
    crash=$(grep -oE "'\./[^']+'|\./(crash|timeout|leak|oom)-[0-9a-f]+" "$log" | tail -n 1 | tr -d "'")
    [[ -n $crash ]] && echo "    replay: (cd $out && $out/$t $crash)"
  fi
done
exit "$failed"
