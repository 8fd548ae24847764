#!/usr/bin/python3
"""Leave nothing behind (issue 17): programs under gonet that die however they die (SIGTERM,
SIGKILL, a crash), in every mode, and programs that close every fd, fork or exec, leave no file
and no segment anywhere, while `gonet stats PID` and `gonet dump PID` work on the live ones and
refuse another user.

Where "anywhere" is: the test re-runs itself in a mount namespace of its own with fresh tmpfs on
/dev/shm, /tmp, /var/tmp and /run, the places a process writes scratch files and segments, so
only the test's own processes can create anything there; each check lists them (every file and
directory, recursively) before the program starts and after it is gone, and fails on any
difference. Its target's working directory is a fresh directory in that /tmp, so a file the
program (or the kernel: a core dump) leaves there is seen too; RLIMIT_CORE is 0, because a core
file of a crash is the program's native behaviour, not gonet's.

Usage: leave_no_trace_test.py CHECK --build DIR (one ctest test per check, ops.no_trace.CHECK).
Needs root (the namespace; another user to refuse); skips otherwise.
"""

import argparse
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Failure, become_subreaper, kill_group, wait_group_empty  # noqa: E402

LIMIT_S = 30  # safety net for every wait; a healthy run is far below it
SCRATCH = ("/dev/shm", "/tmp", "/var/tmp", "/run")
SEGMENT_LINK = "/memfd:gonet-stats (deleted)"  # core/stats/stats_shm.h kSegmentLink
INNER = "GONET_NO_TRACE_INNER"

# The program under test: a thread-per-connection echo server (a thread per client, so fibers
# mode has fibers), told by its arguments what to do to its fds first. "crash" on a connection
# makes it dereference NULL in that connection's thread.
TARGET = r"""
import ctypes, os, resource, socket, sys, threading
args = sys.argv[1:]
libc = ctypes.CDLL(None, use_errno=True)
if "--exec" in args:
    # Exec this very program again (its segment must be replaced, not kept or doubled).
    args.remove("--exec")
    os.execv(sys.executable, [sys.executable, sys.argv[0], "--execd", *args])
if "--close-all" in args:
    # What daemons do at start-up, every way libc offers: close() of every number up to the
    # limit, close_range(), closefrom(), and dup2() over every number that is open.
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # gonet's own fd answers as a number the program never opened: EBADF, and stays gonet's.
    seg = [int(f) for f in os.listdir("/proc/self/fd")
           if os.path.islink(f"/proc/self/fd/{f}") and
           os.readlink(f"/proc/self/fd/{f}") == "/memfd:gonet-stats (deleted)"]
    try:
        os.close(seg[0])
        print("close of gonet's fd: ok", flush=True)
    except OSError as e:
        print("close of gonet's fd:", os.strerror(e.errno), flush=True)
    for fd in range(3, limit):
        try:
            os.close(fd)
        except OSError:
            pass
    os.closerange(3, limit)
    libc.closefrom(3)
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) > 2:
            try:
                os.dup2(2, int(fd))
                os.close(int(fd))
            except OSError:
                pass
    print("open fds:", " ".join(sorted(os.listdir("/proc/self/fd"), key=int)), flush=True)

def serve(c):
    while True:
        data = c.recv(64)
        if not data:
            break
        if data == b"crash":
            ctypes.string_at(0)
        c.sendall(data)
    c.close()

s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print("listening on", s.getsockname()[1], flush=True)
if "--fork" in args:
    pid = os.fork()
    if pid == 0:
        print("child", os.getpid(), flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


KEPT = []  # the checkout and build, bound back under a scratch place (fresh_scratch)


def scratch_listing():
    """Every path under the scratch places, with its kind; the kept checkout is not looked into."""
    out = set()
    for top in SCRATCH:
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in KEPT]
            for name in dirs + files:
                out.add(os.path.join(root, name))
    return out


def segment_fds(pid):
    fds = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == SEGMENT_LINK:
                    fds.append(int(fd))
            except OSError:
                pass
    except OSError:
        pass
    return fds


def check(cond, what, result=None):
    if not cond:
        if result is not None:
            what += (f"\n  command: {result.args}\n  rc: {result.returncode}\n"
                     f"  stdout: {result.stdout}\n  stderr: {result.stderr}")
        raise Failure(what)


class Context:
    def __init__(self, build, tmp):
        self.build = build
        self.tmp = tmp
        # nobody must be able to run the CLI: a copy outside the build tree.
        self.gonet = os.path.join(tmp, "gonet")
        shutil.copy(os.path.join(build, "gonet"), self.gonet)
        self.script = os.path.join(tmp, "target.py")
        with open(self.script, "w") as f:
            f.write(TARGET)
        for path in (tmp, self.gonet, self.script):
            os.chmod(path, 0o755)

    def gonet_cmd(self, *args, user=None):
        cmd = [self.gonet, *map(str, args)]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}",
                   "--clear-groups", "--", *cmd]
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("GONET_")}
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LIMIT_S)


def inspect_live(ctx, pid, mode):
    """gonet stats and dump work on pid for its user (root) and refuse nobody."""
    r = ctx.gonet_cmd("stats", pid)
    check(r.returncode == 0 and f"gonet stats: pid {pid}, mode {mode}," in r.stdout,
          f"gonet stats {pid} reads the live program", r)
    r = ctx.gonet_cmd("dump", pid)
    check(r.returncode == 0 and f"gonet dump: pid {pid}, mode {mode}," in r.stdout,
          f"gonet dump {pid} dumps the live program", r)
    r = ctx.gonet_cmd("stats")
    check(r.returncode == 0 and re.search(rf"^{pid}\s+{mode}\s", r.stdout, re.M),
          f"gonet stats lists {pid}", r)
    for cmd in ("stats", "dump"):
        r = ctx.gonet_cmd(cmd, pid, user="nobody")
        check(r.returncode == 1 and "belongs to root" in r.stderr and
              "only its own user or root" in r.stderr, f"gonet {cmd} refuses nobody", r)
    fds = segment_fds(pid)
    check(len(fds) == 1, f"pid {pid} holds exactly one segment fd: {fds}")


def echo(port, payload=b"ping"):
    with socket.create_connection(("127.0.0.1", port), timeout=LIMIT_S) as c:
        c.sendall(payload)
        check(c.recv(64) == payload, "echo round trip")


def run_case(ctx, mode, ending, *target_args):
    """Starts the target under gonet in `mode`, inspects it live, ends it by `ending`
    ("term", "kill", "crash"), and compares the scratch places before and after."""
    work = tempfile.mkdtemp(dir=ctx.tmp)
    before = scratch_listing()
    cmd = [ctx.gonet, "run", "--mode", mode, "--lib", os.path.join(ctx.build, "libgonet.so"),
           "--", "/usr/bin/python3", ctx.script, *target_args]
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("GONET_")}
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
    pids = [proc.pid]
    try:
        lines = []
        while not lines or not lines[-1].startswith("listening on"):
            line = proc.stdout.readline()
            if not line:
                raise Failure(f"{cmd}: no 'listening on' line; stderr: {proc.stderr.read()}")
            lines.append(line)
        port = int(lines[-1].split()[2])
        if "--close-all" in target_args:
            check(lines[0].strip() == "close of gonet's fd: Bad file descriptor",
                  f"close() of gonet's fd fails as for a free number: {lines[0]!r}")
            open_fds = lines[1].split()[2:]
            check(open_fds[:3] == ["0", "1", "2"],
                  f"the program's own view after closing everything: {lines[1]!r}")
        if "--fork" in target_args:
            child = proc.stdout.readline()
            check(child.startswith("child "), f"fork child announces itself: {child!r}")
            pids.append(int(child.split()[1]))
        echo(port)
        for pid in pids:
            inspect_live(ctx, pid, mode)
        if len(pids) == 2:
            inodes = {os.stat(f"/proc/{p}/fd/{segment_fds(p)[0]}").st_ino for p in pids}
            check(len(inodes) == 2, "the forked child has a segment of its own")
        if ending == "term":
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
        elif ending == "kill":
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        else:
            with socket.create_connection(("127.0.0.1", port), timeout=LIMIT_S) as c:
                c.sendall(b"crash")
                c.recv(64)  # EOF or a reset: the process is gone
        status = proc.wait(LIMIT_S)
        want = {"term": -signal.SIGTERM, "kill": -signal.SIGKILL, "crash": -signal.SIGSEGV}
        check(status == want[ending], f"the program died of its signal (status {status})")
    finally:
        kill_group(proc.pid)
        proc.wait(LIMIT_S)
        stragglers = wait_group_empty(proc.pid)
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
    check(not stragglers, f"processes left: {stragglers}")
    check(not re.search(r"gonet: fatal", err), f"gonet itself did not fault: {err!r}")
    for pid in pids:
        r = ctx.gonet_cmd("stats", pid)
        check(r.returncode == 1 and f"no process {pid}" in r.stderr, f"{pid} is gone", r)
    after = scratch_listing()
    shutil.rmtree(work)
    left = sorted((after - before) - {work})
    check(not left, f"left behind: {left}")


CHECKS = {}
for _mode in ("threads", "fibers", "passthrough"):
    for _ending in ("term", "kill", "crash"):
        CHECKS[f"{_mode}_{_ending}_leaves_nothing"] = (
            lambda ctx, m=_mode, e=_ending: run_case(ctx, m, e))
CHECKS["program_closing_every_fd_keeps_its_segment"] = (
    lambda ctx: run_case(ctx, "threads", "term", "--close-all"))
CHECKS["forked_child_has_its_own_and_leaves_nothing"] = (
    lambda ctx: run_case(ctx, "threads", "kill", "--fork"))
CHECKS["exec_replaces_the_segment_and_leaves_nothing"] = (
    lambda ctx: run_case(ctx, "fibers", "term", "--exec"))


def fresh_scratch(build):
    """In the private mount namespace: fresh tmpfs on every SCRATCH place. The checkout and the
    build may themselves live under one of them (a clone in /tmp): they are held by an O_PATH
    fd across the mount and bound back at their own path, so the test still runs its binaries."""
    keep = [d for d in (os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), build) if any(d == t or d.startswith(t + "/") for t in SCRATCH)]
    held = [(d, os.open(d, os.O_PATH | os.O_DIRECTORY)) for d in keep]
    for d in SCRATCH:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "none", d], check=True)
    for d, fd in held:
        KEPT.append(d)
        os.makedirs(d, exist_ok=True)
        # --no-canonicalize: mount would resolve /proc/self/fd/N to the path, now the empty tmpfs.
        subprocess.run(["mount", "--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", d],
                       check=True, pass_fds=(fd,))
        os.close(fd)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("check", choices=sorted(CHECKS))
    p.add_argument("--build", required=True)
    args = p.parse_args()
    build = os.path.abspath(args.build)
    for need in ("gonet", "libgonet.so"):
        if not os.path.exists(os.path.join(build, need)):
            print(f"skip: {need} not built in {build}")
            return SKIP
    if os.environ.get(INNER) != "1":
        if os.getuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
            print("skip: needs root, unshare and setpriv")
            return SKIP
        env = dict(os.environ, **{INNER: "1"})
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                               sys.executable, os.path.abspath(__file__), args.check, "--build",
                               build], env=env).returncode
    fresh_scratch(build)
    become_subreaper()
    tmp = tempfile.mkdtemp(dir="/tmp")
    try:
        CHECKS[args.check](Context(build, tmp))
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"FAIL {args.check}: {e}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok {args.check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
