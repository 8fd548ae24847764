#!/usr/bin/env python3
"""A fault inside gonet is reported with a backtrace naming the gonet frame, then the program
dies as it would have; faults in the program, and the program's own handlers, are untouched.
Usage: run_crash.py --build DIR --probe PATH --check NAME   (exit 0 pass, 1 fail, 77 skip)"""
import argparse
import os
import signal
import subprocess
import sys


def run(build, probe, what):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONET_")}
    env.update(LD_PRELOAD=os.path.join(build, "libgonet.so"), GONET_MODE="threads",
               GONET_THREADS_WAIT="netpoller")
    return subprocess.run([probe, what], env=env, capture_output=True, text=True, timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--check", required=True)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.build, "libgonet.so")):
        return 77
    ok = False
    if a.check == "fault_in_gonet_is_reported_then_default_action":
        r = run(a.build, a.probe, "gonet")
        ok = (r.returncode == -signal.SIGSEGV and "fatal SEGV inside gonet" in r.stderr
              and "<- gonet" in r.stderr and "main" in r.stderr)
    elif a.check == "program_fault_is_left_alone":
        r = run(a.build, a.probe, "program")
        ok = r.returncode == -signal.SIGSEGV and "gonet" not in r.stderr
    elif a.check == "program_handler_keeps_working":
        r = run(a.build, a.probe, "own")
        ok = r.returncode == 5 and r.stdout == "own handler ran\n" and "gonet" not in r.stderr
    else:
        print("unknown check")
        return 2
    print(f"rc {r.returncode}\nstdout {r.stdout!r}\nstderr {r.stderr[-1500:]}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
