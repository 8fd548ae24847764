#!/usr/bin/env bash
# Runs every suite and ends with one summary line over all of them:
#   N passed, N failed
# Suites: the release build's ctest (unit, conformance, regression), then core's
# unit tests under ThreadSanitizer and under AddressSanitizer+UBSan.
set -uo pipefail
build=${1:-build}
jobs=$(nproc)
passed=0
failed=0
skipped=0
failed_suites=()

# count_ctest LOG: adds ctest's "N tests failed out of M" to the totals.
count_ctest() {
  local line total bad
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n 1)
  if [[ -z "$line" ]]; then
    failed=$((failed + 1))
    return 1
  fi
  bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  # ctest counts a skipped test (SKIP_RETURN_CODE) as not failed: count it apart.
  local skip
  skip=$(grep -cE '\(Skipped\)$' "$1" || true)
  skipped=$((skipped + skip))
  passed=$((passed + total - bad - skip))
  failed=$((failed + bad))
  ((bad == 0))
}

run_suite() {  # NAME BUILD_DIR [ctest args...]
  local name=$1 dir=$2
  shift 2
  local log="$dir/ctest-$name.log"
  echo "=== suite: $name ($dir)"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300 "$@") 2>&1 | tee "$log" | \
    grep -E '^(\s*[0-9]+/[0-9]+ Test|.*tests passed|.*\*\*\*Failed|.*Timeout|.*Exception)' || true
  count_ctest "$log" || { failed_suites+=("$name"); print_failures "$log"; }
}

# print_failures LOG: what each failed test printed (ctest --output-on-failure puts it right after
# the test's status line), at most 60 lines each, so a CI log names the cause of a rare failure.
print_failures() {
  awk '/\*\*\*(Failed|Timeout|Exception)/ { show = 1; n = 0; print "--- output of" $0; next }
       /^ *[0-9]+\/[0-9]+ Test|^ *Start +[0-9]+:|tests passed, / { show = 0 }
       show && n++ < 60 { print "    " $0 }' "$1"
}

run_suite main "$build"

for san in thread address; do
  dir="build-${san/thread/tsan}"
  dir="${dir/address/asan}"
  echo "=== building core under -fsanitize=$san in $dir"
  if cmake -S . -B "$dir" -DGONET_CORE_ONLY=ON -DGONET_SANITIZE=$san \
       -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && \
     cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
      run_suite "core-$san" "$dir"
  else
    tail -n 30 "$dir.build.log" 2>/dev/null
    failed=$((failed + 1))
    failed_suites+=("core-$san (build)")
  fi
done

# --- reliability (tests/soak, tests/fuzz): ASan-built libgonet.so under the conformance
# scenarios, and a short run of every libFuzzer target. One pass/fail per scenario and target.
# What an ASan-built shim needs: ASan's runtime must come first in the initial library list,
# ahead of the program's own libraries (else ASan aborts at start-up, "ASan runtime does not
# come first"), so LD_PRELOAD names libasan.so before libgonet.so; verify_asan_link_order=0
# covers programs that dlopen or re-exec; detect_leaks=0 because the leak report would be about
# the host programs, not about gonet. Fibers mode under ASan relies on two things (README): a
# sanitizer's pthread key is per fiber but gonet never runs its destructor at fiber exit
# (core/fibers/key_kind.h), and gonet's own threads clear their stack's shadow (sanitizer_thread_start.h).
asan_dir=build-asan-shim
# scenario_flag NAME FLAG: tests/conformance/CMakeLists.txt registers NAME with FLAG
# (THREAD_SPECIFIC: not run in fibers mode; ONE_WORKER: fibers mode on one worker).
scenario_flag() {
  grep -E "^conformance_scenario\($1[ )]" tests/conformance/CMakeLists.txt | grep -qw "$2"
}
echo "=== conformance (threads, fibers) with ASan-built libgonet.so in $asan_dir"
if cmake -S . -B "$asan_dir" -DGONET_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo \
     >/dev/null && cmake --build "$asan_dir" -j "$jobs" --target gonet_preload \
     conformance_scenarios >"$asan_dir.build.log" 2>&1; then
  asan_preload="$(gcc -print-file-name=libasan.so):$PWD/$asan_dir/libgonet.so"
  for mode in threads fibers; do
    start=$SECONDS
    for bin in "$asan_dir"/conformance/conf_*; do
      name=${bin##*/conf_}
      # Scenarios whose ASan-built binary cannot run natively, so that there is nothing to compare
      # (two broken transcripts would "match"). Counted as skipped:
      # - thread_stacks_exhausted_returns_eagain: its 512 MiB RLIMIT_AS cannot hold ASan's shadow
      #   reservation; it dies at start-up.
      # - signals_reach_a_thread_that_computes: asynchronous cancellation unwinds from a signal
      #   handler, where gcc 12's ASan fails its own check in __asan_handle_no_return.
      # - cancel_at_every_cancellation_point: UBSan reports catch (abi::__forced_unwind&) as a
      #   reference bound to null (a forced unwind carries no C++ object) and the run stops there.
      if [[ $name == thread_stacks_exhausted_returns_eagain ||
            $name == signals_reach_a_thread_that_computes ||
            $name == cancel_at_every_cancellation_point ]]; then
        skipped=$((skipped + 1))
        continue
      fi
      args=()
      [[ -f tests/conformance/$name.gonet.expected ]] &&
        args+=(--expected "tests/conformance/$name.gonet.expected")
      if [[ $mode == fibers ]]; then
        scenario_flag "$name" THREAD_SPECIFIC && continue
        scenario_flag "$name" ONE_WORKER && args+=(--env GONET_WORKERS=1)
      fi
      if ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:abort_on_error=0 \
           python3 tests/conformance/run_conformance.py --builddir "$asan_dir" \
           --scenario "$name" --mode "$mode" --preload "$asan_preload" "${args[@]}" \
           >"$asan_dir/$name.$mode.log" 2>&1
      then
        passed=$((passed + 1))
      else
        failed=$((failed + 1))
        failed_suites+=("asan-shim.$name.$mode")
        echo "FAIL asan-shim.$name.$mode (log: $asan_dir/$name.$mode.log)"
      fi
    done
    echo "asan-shim $mode: $((SECONDS - start)) s"
  done
else
  tail -n 30 "$asan_dir.build.log" 2>/dev/null
  failed=$((failed + 1))
  failed_suites+=("asan-shim (build)")
fi
echo "=== fuzz (scripts/fuzz.sh short, ${FUZZ_SECONDS:-10} s per target)"
while read -r line; do
  echo "$line"
  case $line in
    "fuzz "*": ok"*) passed=$((passed + 1)) ;;
    "fuzz "*": FAIL"*) failed=$((failed + 1)); failed_suites+=("${line%%:*}") ;;
    "fuzz: build failed"*) failed=$((failed + 1)); failed_suites+=("fuzz (build)") ;;
  esac
done < <(scripts/fuzz.sh short 2>&1)
# --- end of reliability block

if ((${#failed_suites[@]})); then
  echo "failing suites: ${failed_suites[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
