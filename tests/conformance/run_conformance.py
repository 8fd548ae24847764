#!/usr/bin/python3
"""Runs one conformance scenario natively and under libgonet.so, and diffs what they observed.

A scenario (conf_<name>) prints a deterministic transcript of socket semantics. It passes when the
preloaded run prints the same transcript and ends the same way (exit status or terminating
signal) as the native run. A scenario where gonet deliberately differs from the kernel (close()
of an fd another thread is parked on wakes that thread with EBADF) is run with --expected FILE:
the preloaded transcript must then equal FILE, and the native run must merely end cleanly.

Exit status: 0 pass, 1 fail, 77 skip (libgonet.so not built yet; ctest's SKIP_RETURN_CODE).

  run_conformance.py --builddir B --scenario S --mode threads
  run_conformance.py --builddir B --scenario S --native-runs 5   # determinism check, no gonet
"""

import argparse
import difflib
import os
import signal
import subprocess
import sys

SKIP = 77


class Outcome:
    """How one run of a scenario ended: its transcript and its exit status or signal."""

    def __init__(self, stdout, stderr, returncode, timed_out):
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode
        self.timed_out = timed_out

    def ending(self):
        if self.timed_out:
            return "[timed out: killed by the runner]"
        if self.returncode < 0:
            return "[terminated by %s]" % signal.Signals(-self.returncode).name
        return "[exit status %d]" % self.returncode

    def transcript(self):
        """The transcript plus its ending: the text that is compared."""
        return self.stdout + self.ending() + "\n"

    def clean(self):
        return not self.timed_out and self.returncode == 0


def run(binary, env, timeout_s):
    # A new session, so that a hang kills forked children too (prefork, fork scenarios).
    proc = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        return Outcome(out.decode(errors="replace"), err.decode(errors="replace"),
                       proc.returncode, False)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        return Outcome(out.decode(errors="replace"), err.decode(errors="replace"),
                       proc.returncode, True)


def native_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONET_")}
    env.pop("LD_PRELOAD", None)
    return env


def preload_env(lib, mode, extra):
    env = native_env()
    env.update(extra)
    env["LD_PRELOAD"] = lib
    # "threads-netpoller": threads mode on the netpoller path instead of the kernel wait.
    if mode == "threads-netpoller":
        env["GONET_MODE"] = "threads"
        env["GONET_THREADS_WAIT"] = "netpoller"
    else:
        env["GONET_MODE"] = mode
    return env


def diff(expected, actual, expected_name, actual_name):
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                        expected_name, actual_name))


def show_stderr(label, outcome):
    if outcome.stderr.strip():
        sys.stdout.write("--- stderr of the %s run ---\n%s" % (label, outcome.stderr))
        if not outcome.stderr.endswith("\n"):
            sys.stdout.write("\n")


def check_determinism(binary, runs, timeout_s):
    first = run(binary, native_env(), timeout_s)
    for i in range(1, runs):
        again = run(binary, native_env(), timeout_s)
        if again.transcript() != first.transcript():
            sys.stdout.write(diff(first.transcript(), again.transcript(), "native run 1",
                                  "native run %d" % (i + 1)))
            return 1
    sys.stdout.write(first.transcript())
    print("native transcript identical over %d runs" % runs)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--mode", default="threads")
    ap.add_argument("--expected", help="the preloaded transcript where gonet deliberately "
                    "differs from the kernel (<scenario>.gonet.expected)")
    ap.add_argument("--timeout", type=float, default=20.0,
                    help="seconds per run (scenarios take a few seconds natively)")
    ap.add_argument("--preload", help="LD_PRELOAD for the preloaded run instead of "
                    "BUILDDIR/libgonet.so, e.g. an ASan runtime followed by an ASan-built "
                    "libgonet.so (scripts/test.sh)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra variable for the preloaded run (GONET_WORKERS=1)")
    ap.add_argument("--native-runs", type=int, default=0,
                    help="only run natively this many times and require identical transcripts")
    args = ap.parse_args()

    binary = os.path.join(args.builddir, "conformance", "conf_" + args.scenario)
    if not os.access(binary, os.X_OK):
        print("scenario binary %s is missing: build it first" % binary)
        return 1
    if args.native_runs > 0:
        return check_determinism(binary, args.native_runs, args.timeout)

    lib = os.path.join(os.path.abspath(args.builddir), "libgonet.so")
    if not os.path.exists(lib):
        print("SKIP: %s is not built yet" % lib)
        return SKIP

    native = run(binary, native_env(), args.timeout)
    extra = dict(kv.split("=", 1) for kv in args.env)
    preloaded = run(binary, preload_env(args.preload or lib, args.mode, extra), args.timeout)
    preloaded_name = " ".join(["LD_PRELOAD=libgonet.so", "GONET_MODE=%s" % args.mode] + args.env)

    if args.expected:
        with open(args.expected) as f:
            expected = f.read()
        failed = False
        if not native.clean():
            print("FAIL: the native run did not end cleanly: %s" % native.ending())
            sys.stdout.write(native.stdout)
            show_stderr("native", native)
            failed = True
        if preloaded.transcript() != expected:
            print("FAIL: %s differs from %s (where gonet deliberately differs from the kernel)"
                  % (preloaded_name, os.path.basename(args.expected)))
            sys.stdout.write(diff(expected, preloaded.transcript(),
                                  os.path.basename(args.expected), preloaded_name))
            show_stderr("preloaded", preloaded)
            failed = True
        if failed:
            return 1
        print("PASS: %s %s matches %s (native run ended cleanly)"
              % (args.scenario, args.mode, os.path.basename(args.expected)))
        return 0

    if preloaded.transcript() != native.transcript():
        print("FAIL: %s under %s differs from the native run" % (args.scenario, preloaded_name))
        sys.stdout.write(diff(native.transcript(), preloaded.transcript(), "native",
                              preloaded_name))
        show_stderr("native", native)
        show_stderr("preloaded", preloaded)
        return 1
    if native.timed_out:
        # Both hung: the scenario is broken, not gonet; never let that pass.
        print("FAIL: the scenario hangs natively too")
        return 1
    print("PASS: %s %s (%d transcript lines, %s)"
          % (args.scenario, args.mode, native.stdout.count("\n"), native.ending()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
