#!/usr/bin/python3
"""Regression runner: one sample daemon under one mode.

  run_regress.py --build BUILD_DIR --daemon echo_threads --mode threads

Modes: 'native' runs everything as is; any other name runs the daemon and its clients with
LD_PRELOAD=<preload> and GONET_MODE=<name>. When the preload library is not built, a preloaded
mode exits 77 (ctest's SKIP_RETURN_CODE for this suite) with a message; once it exists the
scenarios really run. Exit 0 when every check passed, 1 otherwise.
"""

import argparse
import os
import signal
import sys
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import SKIP, Failure, Mode, become_subreaper  # noqa: E402
from scenarios import SCENARIOS, Context  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", required=True, help="build dir holding the sample binaries")
    parser.add_argument("--daemon", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--mode", required=True, help="native, threads, passthrough, fibers, ...")
    parser.add_argument("--preload", help="libgonet.so to preload (default: BUILD/libgonet.so)")
    parser.add_argument("--corrupt", type=int, default=0, metavar="N",
                        help="make the Nth check's expectation wrong, to see that it can fail")
    args = parser.parse_args()

    build = os.path.abspath(args.build)
    preload = os.path.abspath(args.preload or os.path.join(build, "libgonet.so"))
    mode = Mode(args.mode, preload)
    if not mode.native and not os.path.exists(preload):
        print(f"SKIP: {preload} is not built; mode {mode} needs it "
              f"(build it with: cmake --build {build} --target gonet_preload)")
        return SKIP
    for name in ("blocking_client", args.daemon):
        if not os.access(os.path.join(build, name), os.X_OK):
            print(f"FAIL: {os.path.join(build, name)} is not built "
                  f"(build it with: cmake --build {build} --target examples)")
            return 1

    become_subreaper()
    # Daemons run in sessions of their own, so a signal to the runner does not reach them:
    # turn SIGTERM into an exception so that every `with` block kills what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: runner got SIGTERM"))
    ctx = Context(build, mode, Mode("native", preload), args.corrupt)
    print(f"regress.{args.daemon}.{mode}", flush=True)
    try:
        SCENARIOS[args.daemon](ctx)
    except Failure as e:
        print(f"FAIL {e}", flush=True)
        return 1
    except OSError as e:  # a Python-side socket in a scenario failed or timed out
        traceback.print_exc()
        print(f"FAIL regress.{args.daemon}.{mode}: {e!r}", flush=True)
        return 1
    print(f"PASS regress.{args.daemon}.{mode}: {ctx.checks} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
