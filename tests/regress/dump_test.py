#!/usr/bin/python3
"""`gonet dump` of waiters that park (issue 6): threads parked on the netpoller path and fibers,
each listed with what it waits on and a backtrace, in a running sample daemon that must not
notice. Driven from outside with the real `gonet` binary, as an operator would.

Usage: dump_test.py BEHAVIOUR --build DIR. Each behaviour is one ctest test (dump.BEHAVIOUR).
Every wait is for an observable state (a counter, a listed waiter), bounded by a safety net;
every process is killed in finally (ops_test.Target).
"""

import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP  # noqa: E402
from ops_test import (Context, Target, check, parked, run_behaviours,  # noqa: E402
                      wait_for)

CONNS = 5


def entries(dump_stdout):
    """The dump's entries: blank-line separated blocks after the header."""
    return [b for b in dump_stdout.split("\n\n")[1:] if b.strip()]


def entry_for_port(result, port):
    mine = [b for b in entries(result.stdout) if re.search(rf"peer 127\.0\.0\.1:{port}\n", b)]
    check(len(mine) == 1, f"one entry for the connection from port {port}", result)
    return mine[0]


def echo_still_works(t):
    """The dump must not have disturbed anything: every parked call still gets its bytes."""
    for i, c in enumerate(t.clients):
        payload = f"after dump {i}".encode()
        c.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = c.recv(64)
            check(chunk, f"connection {i} still open after the dump")
            got += chunk
        check(got == payload, f"connection {i} echoes the same bytes after the dump: {got!r}")
    t.connect(1)


def stop_cleanly(t):
    check(t.stop() == 0, "daemon exits 0 after being dumped")
    check(not t.stderr_text().strip(), f"daemon reported nothing: {t.stderr_text()!r}")


def dump_parked(ctx, t, who):
    """Opens CONNS idle connections, waits until they and the accept loop are parked (gonet stats
    alongside), dumps, and checks each connection's entry. Returns the dump."""
    ports = t.connect(CONNS)
    s = parked(ctx, t.pid, CONNS + 1)
    check(s["counters"]["threads_parked"] >= CONNS + 1, f"gonet stats shows the parked waiters: {s}")
    r = ctx.gonet_cmd("dump", t.pid)
    check(r.returncode == 0, "gonet dump succeeds", r)
    for port in ports:
        b = entry_for_port(r, port)
        check(re.search(rf"^{who}: fd \d+, op r \(recv\), waiting \d", b, re.M),
              f"entry names the waiter, its fd, op r and how long: {b}", r)
        check(re.search(r"^  local 127\.0\.0\.1:\d+  peer ", b, re.M), f"local address: {b}", r)
        check(re.search(r"ServeEcho.*/echo_threads\+0x[0-9a-f]+$", b, re.M),
              f"backtrace names echo_threads' ServeEcho frame: {b}", r)
    accept = [b for b in entries(r.stdout) if "op a (accept)" in b]
    check(len(accept) == 1 and re.search(r"\bmain\+0x[0-9a-f]+\s+\S*/echo_threads\+0x",
                                         accept[0], re.M),
          "the accept loop (the main thread) is listed with main in its backtrace", r)
    # gonet stats still reads the same program after the dump.
    check(ctx.stats_json(t.pid)["pid"] == t.pid, "gonet stats works after the dump")
    return r


# ---- behaviours ----

def dump_lists_each_parked_fiber_with_backtrace(ctx):
    with Target(ctx, "echo_threads", run_options=("--mode", "fibers")) as t:
        r = dump_parked(ctx, t, r"fiber \d+")
        check("mode fibers" in r.stdout and "fiber(s) waiting" in r.stdout, "header", r)
        fibers = re.findall(r"^fiber (\d+): fd", r.stdout, re.M)
        check(len(set(fibers)) == CONNS, f"{CONNS} distinct fibers in recv", r)
        echo_still_works(t)
        stop_cleanly(t)


def dump_lists_each_thread_parked_on_netpoller(ctx):
    env = ctx.env(GONET_THREADS_WAIT="netpoller")
    with Target(ctx, "echo_threads", env=env) as t:
        dump_parked(ctx, t, r"thread \d+ \"echo_threads\"")
        echo_still_works(t)
        stop_cleanly(t)


def repeated_dumps_leave_deadline_policy_waits_alone(ctx):
    # A deadline policy parks data calls on a timed futex wait, which a signal always interrupts
    # (EINTR whatever SA_RESTART says): the dump's own interruption must stay invisible, and
    # must neither end the wait early nor count as a signal or a timeout.
    with Target(ctx, "echo_threads", run_options=("--read-timeout", "2m")) as t:
        ports = t.connect(CONNS)
        parked(ctx, t.pid, CONNS + 1)
        for _ in range(3):
            r = ctx.gonet_cmd("dump", t.pid)
            check(r.returncode == 0, "gonet dump succeeds", r)
            for port in ports:
                b = entry_for_port(r, port)
                check(re.search(r"op r \(recv\), waiting .*\n(.*\n)*  #.*ServeEcho", b),
                      f"parked recv listed with its backtrace: {b}", r)
        c = ctx.stats_json(t.pid)["counters"]
        check(c["wakes_signal"] == 0 and c["deadline_policy_timeouts"] == 0 and
              c["wakes_timeout"] == 0, f"no wake-up by signal or timeout was counted: {c}")
        echo_still_works(t)
        stop_cleanly(t)


def dump_beyond_its_slots_lists_the_rest_without_backtraces(ctx):
    many = 250  # more than the 192 fibers a dump unwinds (core/observe/dump.h kDumpFiberSlots)
    with Target(ctx, "echo_threads", run_options=("--mode", "fibers")) as t:
        t.connect(many)
        parked(ctx, t.pid, many + 1)
        r = ctx.gonet_cmd("dump", t.pid)
        check(r.returncode == 0, "gonet dump succeeds", r)
        listed = re.findall(r"^fiber \d+: fd \d+, op r \(recv\)", r.stdout, re.M)
        check(len(listed) == many, f"all {many} fibers listed (got {len(listed)})", r)
        bare = r.stdout.count("(no backtrace: a dump unwinds at most 192 fibers)")
        check(bare == many - 192, f"the overflow is said, not hidden ({bare})", r)
        check(re.search(r"^thread \d+ \"echo_threads\": fd \d+, op a \(accept\).*\n.*\n  #0 ",
                        r.stdout, re.M), "the main thread still has its backtrace", r)
        echo_still_works(t)
        stop_cleanly(t)


def dumps_during_traffic_lose_no_byte(ctx):
    # Dumps while fibers and netpoller threads are being parked, woken and pinned all the time:
    # the load generator checks every echoed byte.
    loadgen = os.path.join(ctx.build, "loadgen")
    if not os.path.exists(loadgen):
        return SKIP
    for options, env in ((("--mode", "fibers"), None),
                         ((), ctx.env(GONET_THREADS_WAIT="netpoller"))):
        with Target(ctx, "echo_threads", run_options=options, env=env) as t:
            load = subprocess.Popen([loadgen, "--port", str(t.port), "--conns", "20",
                                     "--duration", "2", "--json"], env=ctx.env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                dumps = 0
                while load.poll() is None or dumps == 0:
                    r = ctx.gonet_cmd("dump", t.pid)
                    check(r.returncode == 0 and "waiting" in r.stdout, "gonet dump succeeds", r)
                    dumps += 1
                out, err = load.communicate(timeout=60)
            finally:
                load.kill()
                load.wait()
            check(load.returncode == 0 and '"verify_errors":0' in out and '"dropped":0' in out,
                  f"{options or 'netpoller'}: every byte echoed intact across {dumps} dumps: "
                  f"{out} {err}")
            stop_cleanly(t)


def dump_names_what_parked_fibers_wait_on(ctx):
    if not os.path.exists(os.path.join(ctx.build, "dump_probe")):
        return SKIP
    # The probe ignores the daemons' --port 0 (Target passes it) and listens where it can.
    with Target(ctx, "dump_probe", run_options=("--mode", "fibers")) as t:
        want = {"fd_accept": r"fd \d+, op a \(accept\)", "mutex": "mutex",
                "cond": "condition variable", "sem": "semaphore", "sleep": "sleep",
                "poll": r"poll \(poll, select or epoll_wait on the netpoller\)",
                "offload": "offloaded call"}
        funcs = {"fd_accept": "ProbeHolder", "mutex": "ProbeLocker", "cond": "ProbeCondWaiter",
                 "sem": "ProbeSemWaiter", "sleep": "ProbeSleeper", "poll": "ProbePoller",
                 "offload": "ProbeReader"}

        def all_listed():
            r = ctx.gonet_cmd("dump", t.pid)
            if r.returncode != 0:
                return None
            fibers = [b for b in entries(r.stdout) if b.startswith("fiber ")]
            found = {k: [b for b in fibers if re.match(rf"fiber \d+: {v}, waiting ", b)]
                     for k, v in want.items()}
            return (r, found) if all(len(v) == 1 for v in found.values()) else None

        r, found = wait_for("each fiber parked on its own reason", all_listed)
        for k, (b,) in found.items():
            check(re.search(rf"\b{funcs[k]}\+0x[0-9a-f]+\s+\S*/dump_probe\+0x", b),
                  f"{k}: backtrace names {funcs[k]}: {b}", r)
        # A connection releases the holder, which lets every fiber finish: the probe exits 0.
        t.clients.append(socket.create_connection(("127.0.0.1", t.port), timeout=30))
        check(t.proc.wait(30) == 0, "the probe finishes once released")
        check(not t.stderr_text().strip(), f"probe reported nothing: {t.stderr_text()!r}")


BEHAVIOURS = {f.__name__: f for f in [
    dump_lists_each_parked_fiber_with_backtrace,
    dump_lists_each_thread_parked_on_netpoller,
    repeated_dumps_leave_deadline_policy_waits_alone,
    dump_beyond_its_slots_lists_the_rest_without_backtraces,
    dumps_during_traffic_lose_no_byte,
    dump_names_what_parked_fibers_wait_on,
]}


def main():
    return run_behaviours(BEHAVIOURS, ("gonet", "libgonet.so", "echo_threads"))


if __name__ == "__main__":
    sys.exit(main())
