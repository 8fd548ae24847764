#!/usr/bin/env python3
"""A fault inside gonet is reported with a backtrace naming the gonet frame, then the program
dies as it would have; faults in the program, and the program's own handlers, are untouched.
Usage: run_crash.py --build DIR --probe PATH --check NAME   (exit 0 pass, 1 fail, 77 skip)"""
import argparse
import os
import signal
import subprocess
import sys


def run(build, probe, what, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONET_")}
    env.update(LD_PRELOAD=os.path.join(build, "libgonet.so"), GONET_MODE="threads",
               GONET_THREADS_WAIT="netpoller")
    env.update(extra)
    return subprocess.run([probe, what], env=env, capture_output=True, text=True, timeout=30)


def native(probe, what):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONET_")}
    env.pop("LD_PRELOAD", None)
    return subprocess.run([probe, what], env=env, capture_output=True, text=True, timeout=30)


# Fibers mode, with the default workers and with one (where a spinning fiber makes the sysmon hand
# the worker to a new OS thread, which must not block the fault signals).
FIBERS = [dict(GONET_MODE="fibers"), dict(GONET_MODE="fibers", GONET_WORKERS="1")]


def same_as_native(build, probe, what, stderr_ok):
    """Each fibers-mode run exits as the native run does, with the same stdout; stderr_ok(text)
    says what gonet may add."""
    n = native(probe, what)
    rs = [run(build, probe, what, **e) for e in FIBERS]
    print(f"native rc {n.returncode} stdout {n.stdout!r}")
    ok = True
    for e, r in zip(FIBERS, rs):
        print(f"{e}: rc {r.returncode}\nstdout {r.stdout!r}\nstderr {r.stderr[-1500:]}")
        ok = ok and r.returncode == n.returncode and r.stdout == n.stdout and stderr_ok(r.stderr)
    return ok, rs[-1]


def at_most_one_note(stderr):
    lines = [l for l in stderr.splitlines() if "gonet" in l]
    return "inside gonet" not in stderr and len(lines) <= 1


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
    elif a.check == "fiber_fault_reaches_program_handler":
        ok, r = same_as_native(a.build, a.probe, "thread_own", lambda e: "gonet" not in e)
        ok = ok and r.returncode == 3
    elif a.check == "fiber_fault_handler_runs_on_fiber_sigaltstack":
        ok, r = same_as_native(a.build, a.probe, "thread_alt", lambda e: "gonet" not in e)
        ok = ok and r.stdout == "handler ran on the sigaltstack\n"
    elif a.check == "every_fault_kind_reaches_fiber_handler_on_its_sigaltstack":
        ok, r = same_as_native(a.build, a.probe, "thread_kinds", lambda e: "gonet" not in e)
        want = ["FPE code 1, on", "ILL code 2, on", "BUS code 2, on", "TRAP code 128, on",
                "ABRT code -6, on"]
        lines = r.stdout.splitlines()
        ok = ok and r.returncode == 0 and [l[:len(w)] for l, w in zip(lines, want)] == want \
            and lines[-1] == "all caught"
    elif a.check == "fiber_program_fault_not_blamed_on_gonet":
        ok, r = same_as_native(a.build, a.probe, "thread_fault", at_most_one_note)
        ok = ok and r.returncode == -signal.SIGSEGV
    elif a.check == "fiber_program_abort_not_blamed_on_gonet":
        ok, r = same_as_native(a.build, a.probe, "thread_abort", at_most_one_note)
        ok = ok and r.returncode == -signal.SIGABRT
    elif a.check == "fiber_fault_in_gonet_is_reported":
        rs = [run(a.build, a.probe, "gonet", **e) for e in FIBERS]
        for r in rs:
            print(f"rc {r.returncode}\nstderr {r.stderr[-800:]}")
        ok = all(r.returncode == -signal.SIGSEGV and "fatal SEGV inside gonet" in r.stderr
                 for r in rs)
        r = rs[-1]
    elif a.check == "no_gonet_thread_blocks_fault_signals":
        # Every thread of a fibers-mode process (workers, the machine a handoff started, the
        # sysmon, an offload helper) leaves the synchronous fault signals unblocked.
        faults = [signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT,
                  signal.SIGTRAP, signal.SIGSYS]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GONET_")}
        env.update(LD_PRELOAD=os.path.join(a.build, "libgonet.so"), GONET_MODE="fibers",
                   GONET_WORKERS="1", GONET_QUIET_TLS="1")
        p = subprocess.Popen([a.probe, "hold"], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            names = {}
            for tid in os.listdir(f"/proc/{p.pid}/task"):
                with open(f"/proc/{p.pid}/task/{tid}/status") as f:
                    st = dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)
                blocked = int(st["SigBlk"], 16)
                names[tid] = (st["Name"].strip(), [s.name for s in faults
                                                   if blocked & (1 << (s - 1))])
        finally:
            p.stdin.close()
            p.wait(timeout=20)
        for tid, (name, bad) in sorted(names.items()):
            print(f"{tid} {name}: fault signals blocked {bad}")
        kinds = {n for n, _ in names.values()}
        ok = (line == "ready\n" and all(not bad for _, bad in names.values())
              and {"gonet-worker", "gonet-sysmon", "gonet-offload"} <= kinds
              and sum(1 for n, _ in names.values() if n == "gonet-worker") >= 2)
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    else:
        print("unknown check")
        return 2
    print(f"rc {r.returncode}\nstdout {r.stdout!r}\nstderr {r.stderr[-1500:]}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
