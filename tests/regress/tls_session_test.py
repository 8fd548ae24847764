#!/usr/bin/python3
"""A daemon that keeps each connection's session in thread_local storage (issue 14), under
fibers mode with thousands of connections, every reply checked.

examples/tls_session_echo.cc reads its connection's socket back from a thread_local after every
blocking recv, so a reply reaches the right client only if each fiber has its own copy; its
session object is a C++ thread_local with a constructor and a destructor, so the numbers of
sessions it reports at exit say how many copies were made and destroyed: once loadgen has closed
its connections, every one constructed must have been destroyed exactly once (the daemon waits
for its connection threads to finish before it counts). loadgen (scripts/bench/loadgen.cc) opens the connections,
keeps each one in ping-pong and verifies every byte.

    tls_session_test.py CHECK --build DIR

Registered with ctest in tests/regress/CMakeLists.txt as regress.tls_session.CHECK. Exit 0:
passed; 1: failed; 77: skipped.
"""

import argparse
import json
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Daemon, Failure, Mode, become_subreaper, run_check, run_program  # noqa

CONNS = 2000
WORKERS = "2"


class FibersMode(Mode):
    """Fibers mode with extra GONET_* settings."""

    def __init__(self, preload, **extra):
        super().__init__("fibers", preload)
        self.extra = extra

    def env(self, extra=None):
        return super().env(dict(self.extra, **(extra or {})))


def load(ctx, daemon):
    """Runs loadgen against the daemon; returns (rc, its JSON result or None, stderr)."""
    cmd = [ctx.loadgen, "--port", str(daemon.port), "--conns", str(CONNS), "--size", "64",
           "--duration", "1", "--connect-burst", "200", "--json"]
    rc, out, err = run_program(cmd, Mode("native", None).env(), limit_s=120)
    try:
        result = json.loads(out)
    except ValueError:
        result = None
    return rc, result, err


def stop_and_count(daemon):
    """Stops the daemon; returns how many sessions it reports having opened and closed."""
    daemon.stop()
    line = daemon.proc.stdout.read().decode().strip().splitlines()[-1]
    if not line.startswith("sessions opened "):
        raise Failure(f"expected 'sessions opened N closed M', got {line!r}")
    return int(line.split()[2]), int(line.split()[4])


def check_every_reply_reaches_its_own_connection(ctx):
    """2,000 connections on 2 workers: every byte comes back to the connection that sent it, and
    the server constructed one session per connection and destroyed each exactly once (a leaked
    or doubly destroyed per-fiber thread_local shows as closed != opened)."""
    mode = FibersMode(ctx.lib, GONET_WORKERS=WORKERS)
    with Daemon(ctx.build, mode, "tls_session_echo") as daemon:
        rc, result, err = load(ctx, daemon)
        if rc != 0 or result is None:
            raise Failure(f"loadgen exit {rc}: {result or err!r}; daemon stderr: "
                          f"{daemon.stderr_text()}")
        if result.get("requests", 0) < CONNS:
            raise Failure(f"fewer answers than connections: {result}")
        opened, closed = stop_and_count(daemon)
        if opened != CONNS:
            raise Failure(f"{opened} sessions constructed for {CONNS} connections")
        if closed != opened:
            raise Failure(f"{closed} sessions destroyed, {opened} constructed (every one must "
                          f"be destroyed once, at its fiber's exit)")


def check_shared_tls_sends_replies_to_the_wrong_connection(ctx):
    """The same run with GONET_FIBER_TLS=shared (one copy per worker, as before issue 14) fails:
    the check above can tell."""
    mode = FibersMode(ctx.lib, GONET_WORKERS=WORKERS, GONET_FIBER_TLS="shared",
                      GONET_QUIET_TLS="1")
    with Daemon(ctx.build, mode, "tls_session_echo") as daemon:
        rc, result, _ = load(ctx, daemon)
        if rc == 0:
            raise Failure(f"loadgen saw every reply right with shared TLS: {result}")


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items()
          if name.startswith("check_")}


class Ctx:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.lib = os.path.join(self.build, "libgonet.so")
        self.loadgen = os.path.join(self.build, "loadgen")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=sorted(CHECKS))
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    ctx = Ctx(args.build)
    for path in (ctx.lib, ctx.loadgen, os.path.join(ctx.build, "tls_session_echo")):
        if not os.path.exists(path):
            print(f"SKIP: {path} is not built")
            return SKIP
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * CONNS + 100:
        print(f"SKIP: RLIMIT_NOFILE hard limit {hard} is below {2 * CONNS + 100}")
        return SKIP
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    become_subreaper()
    return run_check(CHECKS, args.check, ctx)


if __name__ == "__main__":
    sys.exit(main())
