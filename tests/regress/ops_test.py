#!/usr/bin/python3
"""Operator tests for `gonet stats` and `gonet dump` (issue 6): real sample daemons started with
`gonet run`, inspected from outside with the real `gonet` binary, as an on-call engineer would.

Usage: ops_test.py BEHAVIOUR --build DIR. Each behaviour is one ctest test (ops.BEHAVIOUR).
Every wait is for an observable state (a counter, a listed connection, a file), bounded by a
safety net so that a broken build fails instead of hanging; every process is killed in finally.
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Failure, SKIP, become_subreaper, kill_group,  # noqa: E402
                     wait_group_empty)

LIMIT_S = 30  # safety net for every wait; a healthy run is far below it


SEGMENT_LINK = "/memfd:gonet-stats (deleted)"  # core/stats/stats_shm.h kSegmentLink


def segment_fd(pid):
    """The fd number through which pid publishes its stats segment (a memfd), or None."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == SEGMENT_LINK:
                    return int(fd)
            except OSError:
                pass
    except OSError:
        pass
    return None


def old_segment_file(pid):
    """Where the segment used to be a file (before issue 17): it must never appear again.
    (leave_no_trace_test.py checks every writable place, in a namespace of its own.)"""
    return os.path.exists(f"/dev/shm/gonet.{pid}")


def wait_for(what, probe, limit_s=LIMIT_S, pause_s=0.02):
    """Polls probe() until it returns a true value, which is returned."""
    deadline = time.monotonic() + limit_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(pause_s)


class Target:
    """A sample daemon started with `gonet run [OPTIONS] -- BUILD/NAME --port 0 ARGS`, in its own
    session; its first stdout line is "listening on PORT". Kills its group on exit."""

    def __init__(self, ctx, name, *args, run_options=(), env=None):
        self.cmd = [ctx.gonet, "run", *run_options, "--", os.path.join(ctx.build, name),
                    "--port", "0", *map(str, args)]
        self.env = env or ctx.env()
        self.proc = None
        self.port = None
        self.stderr = tempfile.TemporaryFile()
        self.clients = []

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=self.stderr, start_new_session=True)
        try:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line.startswith("listening on "):
                raise Failure(f"{self.cmd}: expected 'listening on PORT', got {line!r}; "
                              f"stderr: {self.stderr_text()}")
            self.port = int(line.split()[2])
            return self
        except BaseException:
            self.__exit__(None, None, None)
            raise

    @property
    def pid(self):
        return self.proc.pid

    def connect(self, n):
        """Opens n idle echo connections (each proven served by one echo round trip)."""
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", self.port), timeout=LIMIT_S)
            c.sendall(b"ping")
            if c.recv(16) != b"ping":
                raise Failure("echo round trip failed")
            self.clients.append(c)
        return [c.getsockname()[1] for c in self.clients[-n:]]

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self):
        """SIGTERM, then wait for a normal exit (runs atexit handlers)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(LIMIT_S)
        except subprocess.TimeoutExpired:
            raise Failure(f"{self.cmd} still running {LIMIT_S}s after SIGTERM")

    def __exit__(self, *exc):
        for c in self.clients:
            c.close()
        kill_group(self.proc.pid)
        try:
            self.proc.wait(LIMIT_S)
        finally:
            self.proc.stdout.close()
            wait_group_empty(self.proc.pid)
            self.stderr.close()
        return False


class Context:
    def __init__(self, args, tmp):
        self.build = os.path.abspath(args.build)
        self.gonet = os.path.join(self.build, "gonet")
        self.tmp = tmp

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("GONET_")}
        env.update(extra)
        return env

    def gonet_cmd(self, *args, user=None, limit_s=LIMIT_S):
        """Runs `gonet ARGS` (as user, via setpriv, if given). Returns CompletedProcess."""
        cmd = [self.gonet, *map(str, args)]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}",
                   "--clear-groups", "--", *cmd]
        return subprocess.run(cmd, env=self.env(), capture_output=True, text=True,
                              timeout=limit_s)

    def stats_json(self, pid):
        r = self.gonet_cmd("stats", pid, "--json")
        check(r.returncode == 0, f"gonet stats {pid} --json succeeds", r)
        return json.loads(r.stdout)


def check(cond, what, result=None):
    if not cond:
        detail = ""
        if result is not None:
            detail = (f"\n  command: {result.args}\n  rc: {result.returncode}\n"
                      f"  stdout: {result.stdout}\n  stderr: {result.stderr}")
        raise Failure(what + detail)


def blocked(counters):
    """Threads blocked in a socket call: parked on a pollDesc or waiting in the kernel."""
    return counters["threads_parked"] + counters.get("threads_in_kernel", 0)


def parked(ctx, pid, n):
    """Waits until pid has n threads blocked in socket calls; returns the stats."""
    return wait_for(f"{n} parked threads in pid {pid}",
                    lambda: (lambda s: s if blocked(s["counters"]) >= n else None)(
                        ctx.stats_json(pid)))


# ---- behaviours ----

def stats_shows_parked_connections_of_running_daemon(ctx):
    with Target(ctx, "echo_threads") as t:
        t.connect(3)
        s = parked(ctx, t.pid, 4)  # three connections plus the accept loop
        check(s["pid"] == t.pid and s["mode"] == "threads" and s["uptime_s"] >= 0,
              f"header names the process and its mode: {s}")
        r = ctx.gonet_cmd("stats", t.pid)
        check(r.returncode == 0, "gonet stats succeeds", r)
        check(f"pid {t.pid}, mode threads, uptime " in r.stdout, "text header", r)
        lines = dict(re.findall(r"^  (\w+)\s+(-?\d+)$", r.stdout, re.M))
        check(set(lines) >= {"parks", "threads_parked", "wakes_close", "invariant_failures"},
              "one line per counter", r)
        check(int(lines["threads_parked"]) + int(lines.get("threads_in_kernel", 0)) >= 4,
              "text shows the blocked threads", r)


def stats_watch_prints_deltas_until_program_exits(ctx):
    with Target(ctx, "echo_threads") as t:
        watch = subprocess.Popen([ctx.gonet, "stats", str(t.pid), "--watch", "50ms"],
                                 env=ctx.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        try:
            # The second report is the first with deltas: from then on a connection shows up.
            first = watch.stdout.readline()
            check(first.startswith(f"gonet stats: pid {t.pid}"), f"first report: {first!r}")
            # Reading a line blocks until the next one: no pause between probes.
            wait_for("a report with deltas",
                     lambda: "(+" in watch.stdout.readline(), pause_s=0)
            t.connect(1)
            wait_for("threads_in_kernel rising in a delta",
                     lambda: re.match(r"\s+threads_in_kernel\s+\d+\s+\(\+[1-9]",
                                      watch.stdout.readline()), pause_s=0)
            check(t.stop() == 0, "daemon exits 0 on SIGTERM")
            out, err = watch.communicate(timeout=LIMIT_S)
            check(watch.returncode == 0 and f"process {t.pid} exited" in err,
                  f"watch ends when the program exits (rc {watch.returncode}, stderr {err!r})")
        finally:
            watch.kill()
            watch.wait()


def dump_lists_each_parked_connection_with_backtrace(ctx):
    with Target(ctx, "echo_threads") as t:
        ports = t.connect(3)
        parked(ctx, t.pid, 4)
        r = ctx.gonet_cmd("dump", t.pid)
        check(r.returncode == 0, "gonet dump succeeds", r)
        blocks = r.stdout.split("\n\n")
        for port in ports:
            mine = [b for b in blocks if re.search(rf"peer 127\.0\.0\.1:{port}\b", b)]
            check(len(mine) == 1, f"one entry for the connection from port {port}", r)
            b = mine[0]
            check(re.search(r"^thread \d+ \"echo_threads\": fd \d+, op r \(recv\), waiting ", b,
                            re.M), f"entry names tid, fd, op r and the wait: {b}", r)
            check(re.search(r"ServeEcho.*/echo_threads\+0x[0-9a-f]+$", b, re.M),
                  f"backtrace names echo_threads' ServeEcho frame: {b}", r)
        accept = [b for b in blocks if "op a (accept)" in b]
        check(len(accept) == 1 and re.search(r"\bmain\+0x[0-9a-f]+\s+\S*/echo_threads\+0x",
                                             accept[0], re.M),
              "the accept loop is listed with main in its backtrace", r)
        # The dump interrupted and restarted every call: the program saw nothing.
        for c in t.clients:
            c.sendall(b"after dump")
            check(c.recv(32) == b"after dump", "connections still echo after the dump")
        t.connect(1)
        check(t.stop() == 0, "daemon exits 0 after being dumped")
        check(not t.stderr_text().strip(), f"daemon reported nothing: {t.stderr_text()!r}")


def dump_by_unprivileged_owner_works(ctx):
    if os.getuid() != 0:
        return SKIP  # needs to become another user; as that user this is what every test does
    # Owner and operator are both nobody: no root privilege anywhere on the dump path (the
    # threads' /proc syscall files, the signal, the segment).
    gonet = os.path.join(ctx.tmp, "gonet")
    shutil.copy(ctx.gonet, gonet)
    os.chmod(ctx.tmp, 0o755)
    os.chmod(gonet, 0o755)
    lib = ("--lib", os.path.join(ctx.build, "libgonet.so"))
    target = Target(ctx, "echo_threads", run_options=lib)
    target.cmd = ["setpriv", "--reuid=nobody", f"--regid={pwd.getpwnam('nobody').pw_gid}",
                  "--clear-groups", "--", *target.cmd]
    ctx.gonet = gonet
    with target as t:
        ports = t.connect(2)
        def parked_as_nobody():
            r = ctx.gonet_cmd("stats", t.pid, user="nobody")
            return r.returncode == 0 and re.search(r"threads_in_kernel\s+([3-9]|\d\d)", r.stdout)
        wait_for("3 parked threads", parked_as_nobody)
        r = ctx.gonet_cmd("dump", t.pid, user="nobody")
        check(r.returncode == 0 and "could not be read" not in r.stdout, "nobody dumps its own", r)
        for port in ports:
            check(re.search(rf"op r \(recv\), waiting .*\n  local \S+  "
                            rf"peer 127\.0\.0\.1:{port}\n(  #.*\n)*  #.*ServeEcho", r.stdout),
                  f"connection from {port} listed with its backtrace", r)


def segment_is_a_memfd_that_goes_with_the_process(ctx):
    with Target(ctx, "echo_threads") as t:
        fd = segment_fd(t.pid)
        check(fd is not None, f"pid {t.pid} holds {SEGMENT_LINK}")
        st = os.stat(f"/proc/{t.pid}/fd/{fd}")
        check(st.st_nlink == 0 and st.st_uid == os.getuid(),
              f"an unnamed segment of the program's user ({st})")
        check(not old_segment_file(t.pid), "no file in /dev/shm")
        t.connect(1)
        check(t.stop() == 0, "daemon exits 0")
    check(not old_segment_file(t.pid), "nothing left")


def killed_program_leaves_nothing_and_is_reported_gone(ctx):
    with Target(ctx, "echo_threads") as t:
        pid = t.pid
        check(ctx.gonet_cmd("stats", pid).returncode == 0, "gonet stats reads the live program")
        t.proc.send_signal(signal.SIGKILL)  # no atexit, no handler: nothing of gonet's runs
        t.proc.wait(LIMIT_S)
        r = ctx.gonet_cmd("stats", pid)
        check(r.returncode == 1 and f"no process {pid}" in r.stderr,
              "gonet stats says the process is gone", r)
        r = ctx.gonet_cmd("stats")
        check(r.returncode == 0 and not re.search(rf"^{pid}\s", r.stdout, re.M) and
              not r.stderr, "the listing neither shows it nor has anything to sweep", r)
    check(not old_segment_file(pid), "nothing left")


def forked_worker_has_its_own_segment(ctx):
    with Target(ctx, "prefork", "--workers", 2) as t:
        def workers():
            kids = [int(p) for p in open(f"/proc/{t.pid}/task/{t.pid}/children").read().split()]
            return kids if len(kids) == 2 and all(segment_fd(k) is not None for k in kids) \
                else None
        kids = wait_for("two prefork workers with segments", workers)
        t.connect(2)
        for k in kids:
            s = ctx.stats_json(k)
            check(s["pid"] == k, f"worker {k} reports its own pid: {s}")
            check(os.stat(f"/proc/{k}/fd/{segment_fd(k)}").st_ino !=
                  os.stat(f"/proc/{t.pid}/fd/{segment_fd(t.pid)}").st_ino,
                  f"worker {k} has a segment of its own, not the parent's")
        # Each worker is blocked in accept or in a connection's recv; the parent only waits for
        # its children, so its own counters show no socket wait.
        wait_for("workers blocked in recv or accept",
                 lambda: sum(blocked(ctx.stats_json(k)["counters"]) for k in kids) >= 2)
        check(blocked(ctx.stats_json(t.pid)["counters"]) == 0,
              "the parent's counters are its own")
        r = ctx.gonet_cmd("stats")
        check(r.returncode == 0 and all(re.search(rf"^{p}\s+threads\s", r.stdout, re.M)
                                        for p in [t.pid, *kids]),
              "gonet stats lists the parent and both workers", r)
        check(t.stop() == 0, "prefork exits 0")
    # The workers die of SIGTERM's default action (prefork.cc), which runs no atexit: their
    # segments went with them all the same.
    r = ctx.gonet_cmd("stats")
    check(r.returncode == 0 and not any(re.search(rf"^{k}\s", r.stdout, re.M) for k in kids)
          and not r.stderr, "no worker listed, nothing to sweep", r)


def other_users_process_refused(ctx):
    if os.getuid() != 0:
        return SKIP  # needs to switch users both ways
    # The CLI must be executable by nobody: copy it out of a build tree nobody may not reach.
    gonet = os.path.join(ctx.tmp, "gonet")
    shutil.copy(ctx.gonet, gonet)
    os.chmod(ctx.tmp, 0o755)
    os.chmod(gonet, 0o755)
    ctx.gonet = gonet
    lib = ("--lib", os.path.join(ctx.build, "libgonet.so"))
    with Target(ctx, "echo_threads", run_options=lib) as t:
        for cmd in ("stats", "dump"):
            r = ctx.gonet_cmd(cmd, t.pid, user="nobody")
            check(r.returncode == 1 and "belongs to root" in r.stderr and
                  "only its own user or root" in r.stderr,
                  f"gonet {cmd} as nobody refuses root's process", r)
        check(segment_fd(t.pid) is not None, "the refused segment is left alone")
        r = ctx.gonet_cmd("stats", t.pid)
        check(r.returncode == 0, "its own user (root) reads it", r)
    # Root may read anyone's: a target running as nobody (setpriv and gonet run exec, so the
    # daemon keeps the pid Popen gave).
    target = Target(ctx, "echo_threads", run_options=lib)
    target.cmd = ["setpriv", "--reuid=nobody", f"--regid={pwd.getpwnam('nobody').pw_gid}",
                  "--clear-groups", "--", *target.cmd]
    with target as t:
        check(os.stat(f"/proc/{t.pid}/fd/{segment_fd(t.pid)}").st_uid ==
              pwd.getpwnam("nobody").pw_uid, "the segment belongs to the program's user")
        r = ctx.gonet_cmd("stats", t.pid)
        check(r.returncode == 0 and f"pid {t.pid}" in r.stdout, "root reads nobody's program", r)


def run_stats_prints_summary_at_exit(ctx):
    with Target(ctx, "echo_threads", run_options=("--stats",)) as t:
        t.connect(2)
        check(t.stop() == 0, "daemon exits 0")
        err = t.stderr_text()
        check(f"gonet stats (pid {t.pid}, mode threads):" in err and
              re.search(r"^\s+threads_parked\s+\d+$", err, re.M),
              f"summary on stderr at exit: {err!r}")


def passthrough_mode_publishes_stats_without_backtraces(ctx):
    with Target(ctx, "echo_threads", run_options=("--mode", "passthrough")) as t:
        t.connect(1)
        s = ctx.stats_json(t.pid)
        check(s["mode"] == "passthrough", f"mode passthrough: {s}")
        r = ctx.gonet_cmd("dump", t.pid)
        check(r.returncode == 0 and "mode passthrough" in r.stdout and
              "without backtraces" in r.stdout, "dump explains what it cannot show", r)
        for c in t.clients:
            c.sendall(b"x")
            check(c.recv(8) == b"x", "connection still echoes (no signal was sent)")


LOSE_FD_PROGRAM = r"""
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
# A raw close_range(3, ~0U, 0) syscall: past every libc call gonet interposes.
if libc.syscall(436, 3, 0xffffffff, 0) != 0:
    sys.exit("close_range: %d" % ctypes.get_errno())
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print("listening on", s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.sendall(c.recv(16))
    c.close()
"""


def program_that_lost_gonets_fd_is_reached_by_root_only(ctx):
    if os.getuid() != 0:
        return SKIP  # needs root for map_files and to switch to another owner
    gonet = os.path.join(ctx.tmp, "gonet")
    shutil.copy(ctx.gonet, gonet)
    script = os.path.join(ctx.tmp, "lose_fd.py")
    with open(script, "w") as f:
        f.write(LOSE_FD_PROGRAM)
    for path in (ctx.tmp, gonet, script):
        os.chmod(path, 0o755)
    ctx.gonet = gonet
    target = Target(ctx, "echo_threads", run_options=("--lib", os.path.join(ctx.build,
                                                                             "libgonet.so")))
    target.cmd = ["setpriv", "--reuid=nobody", f"--regid={pwd.getpwnam('nobody').pw_gid}",
                  "--clear-groups", "--", *target.cmd[:target.cmd.index("--") + 1],
                  "/usr/bin/python3", script]
    with target as t:
        check(segment_fd(t.pid) is None, "the raw syscall closed gonet's fd too")
        t.connect(1)
        r = ctx.gonet_cmd("stats", t.pid, user="nobody")
        check(r.returncode == 1 and "closed gonet's fd behind its back" in r.stderr and
              "only root" in r.stderr, "its own user is told why it cannot look", r)
        r = ctx.gonet_cmd("stats", t.pid, "--json")
        check(r.returncode == 0 and json.loads(r.stdout)["pid"] == t.pid,
              "root still reads the segment, through /proc/PID/map_files", r)


def commands_refuse_bad_input(ctx):
    for cmd in ("stats", "dump"):
        r = ctx.gonet_cmd(cmd, "notapid")
        check(r.returncode == 2 and f"usage: gonet {cmd} PID" in r.stderr, "bad PID", r)
        r = ctx.gonet_cmd(cmd, "--help")
        check(r.returncode == 0 and f"gonet {cmd} PID" in r.stdout, "help", r)
        # This test runner is not under gonet.
        r = ctx.gonet_cmd(cmd, os.getpid())
        check(r.returncode == 1 and "does not run under gonet" in r.stderr, "not gonet", r)
    r = ctx.gonet_cmd("stats", os.getpid(), "--watch", "soon")
    check(r.returncode == 2 and "bad --watch interval" in r.stderr, "bad interval", r)


BEHAVIOURS = {f.__name__: f for f in [
    stats_shows_parked_connections_of_running_daemon,
    stats_watch_prints_deltas_until_program_exits,
    dump_lists_each_parked_connection_with_backtrace,
    dump_by_unprivileged_owner_works,
    segment_is_a_memfd_that_goes_with_the_process,
    killed_program_leaves_nothing_and_is_reported_gone,
    forked_worker_has_its_own_segment,
    other_users_process_refused,
    run_stats_prints_summary_at_exit,
    passthrough_mode_publishes_stats_without_backtraces,
    program_that_lost_gonets_fd_is_reached_by_root_only,
    commands_refuse_bad_input,
]}


def run_behaviours(behaviours, needs):
    """The command line of an operator test file: run one named behaviour against a build dir
    (skip if the binaries it needs are not built), in a temp dir, as a subreaper."""
    p = argparse.ArgumentParser()
    p.add_argument("behaviour", choices=sorted(behaviours))
    p.add_argument("--build", required=True)
    args = p.parse_args()
    for need in needs:
        if not os.path.exists(os.path.join(args.build, need)):
            print(f"skip: {need} not built in {args.build}")
            return SKIP
    become_subreaper()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            rc = behaviours[args.behaviour](Context(args, tmp))
        except Failure as e:
            print(f"FAIL {args.behaviour}: {e}")
            return 1
        except subprocess.TimeoutExpired as e:
            print(f"FAIL {args.behaviour}: {e}")
            return 1
    if rc == SKIP:
        print(f"skip {args.behaviour}")
        return SKIP
    print(f"ok {args.behaviour}")
    return 0


def main():
    return run_behaviours(BEHAVIOURS, ("gonet", "libgonet.so", "echo_threads", "prefork"))


if __name__ == "__main__":
    sys.exit(main())
