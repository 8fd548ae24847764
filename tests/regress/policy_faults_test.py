#!/usr/bin/env python3
"""Deadline policy and fault injection, driven from outside as an operator or tester would.

Each check starts real programs with `gonet run` and looks only at what they do.
Usage: policy_faults_test.py --build DIR --check NAME   (exit 0 pass, 1 fail, 77 skip)
"""
import argparse
import errno
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Failure, run_check  # noqa: E402

LIMIT_S = 20


def check(cond, what):
    if not cond:
        raise Failure(what)


class Ctx:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.gonet = os.path.join(self.build, "gonet")

    def env(self):
        return {k: v for k, v in os.environ.items()
                if not k.startswith("GONET_") and k != "LD_PRELOAD"}

    def start(self, gonet_args, program):
        """Starts `gonet run ARGS -- PROGRAM`; returns (proc, port) once it listens."""
        p = subprocess.Popen([self.gonet, "run", *gonet_args, "--", *program], env=self.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        line = p.stdout.readline()
        if "listening on" not in line:
            stop(p)
            raise Failure(f"server did not start: {line!r} {p.stderr.read()[-500:]}")
        return p, int(line.split()[-1])

    def python(self, gonet_args, code, timeout=LIMIT_S):
        """Runs a Python snippet under `gonet run ARGS`; returns (rc, stdout, stderr)."""
        r = subprocess.run([self.gonet, "run", *gonet_args, "--", "/usr/bin/python3", "-c", code],
                           env=self.env(), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout.strip(), r.stderr


def stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def wait_eof(sock, limit_s):
    """Seconds until the peer closes sock (EOF or reset), or None if it stays open."""
    sock.settimeout(limit_s)
    start = time.monotonic()
    try:
        data = sock.recv(100)
        return time.monotonic() - start if data == b"" else None
    except ConnectionResetError:
        return time.monotonic() - start
    except socket.timeout:
        return None


def read_timeout_cuts_idle_connection_keeps_active(ctx):
    """--read-timeout: the daemon's recv on an idle connection fails with EAGAIN, as if the
    daemon had set SO_RCVTIMEO; echo_threads then closes it. An active connection survives."""
    p, port = ctx.start(["--read-timeout", "300ms", "--stats"],
                        [os.path.join(ctx.build, "echo_threads"), "--port", "0"])
    try:
        idle = socket.create_connection(("127.0.0.1", port))
        active = socket.create_connection(("127.0.0.1", port))
        active.settimeout(5)
        start = time.monotonic()
        while time.monotonic() - start < 1.5:  # five times the timeout
            active.sendall(b"ping")
            check(active.recv(10) == b"ping", "the active connection keeps echoing")
            time.sleep(0.1)
        cut = wait_eof(idle, 5)
        check(cut is not None, "the idle connection was cut by the read timeout")
        active.sendall(b"still")
        check(active.recv(10) == b"still", "the active connection survived")
    finally:
        stop(p)
    err = p.stderr.read()
    check("deadline_policy_timeouts" in err and
          "deadline_policy_timeouts   0" not in err, f"the policy timeout is counted: {err}")


def program_timeout_wins_over_policy(ctx):
    """A daemon's own SO_RCVTIMEO (http_threads --idle-timeout 3000) wins over --read-timeout."""
    p, port = ctx.start(["--read-timeout", "200ms"],
                        [os.path.join(ctx.build, "http_threads"), "--port", "0",
                         "--idle-timeout", "3000"])
    try:
        idle = socket.create_connection(("127.0.0.1", port))
        check(wait_eof(idle, 1.0) is None, "still open well after the policy's 200 ms")
        check(wait_eof(idle, 10) is not None, "closed by the program's own idle timeout")
    finally:
        stop(p)


CONNECT_TO_FULL_BACKLOG = r'''
import errno, socket, time
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(0)
addr = lst.getsockname()
held = []
for i in range(16):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(addr)
    except BlockingIOError:
        pass
    held.append(c)
time.sleep(0.3)
s = socket.socket()
t = time.monotonic()
try:
    s.connect(addr)
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno), round(time.monotonic() - t, 1) >= 0.2)
'''


def connect_timeout_returns_einprogress(ctx):
    """--connect-timeout bounds a blocking connect that would hang (a listener whose backlog is
    full): it fails with EINPROGRESS, what the kernel says for SO_SNDTIMEO on connect."""
    rc, out, err = ctx.python(["--connect-timeout", "300ms"], CONNECT_TO_FULL_BACKLOG)
    check(rc == 0 and out == "EINPROGRESS True", f"connect -> {out!r} (rc {rc}) {err[-300:]}")


def fault_connect_refused_makes_curl_fail(ctx):
    """The issue's example: curl exits 7 (could not connect) with the server up."""
    p, port = ctx.start([], [os.path.join(ctx.build, "http_threads"), "--port", "0"])
    try:
        ok = subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"],
                            env=ctx.env(), timeout=LIMIT_S)
        check(ok.returncode == 0, "curl works without the fault")
        r = subprocess.run([ctx.gonet, "run", "--stats", "--fault", "connect:ECONNREFUSED:p=1",
                            "--", "curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"],
                           env=ctx.env(), capture_output=True, text=True, timeout=LIMIT_S)
        check(r.returncode == 7, f"curl exit {r.returncode}, want 7")
        check("fault connect" in r.stderr and "1 failed" in r.stderr,
              f"the injection is counted: {r.stderr[-400:]}")
    finally:
        stop(p)


# One program per fault kind: it makes a pair of connected sockets, then the call under test
# twice; the rule (n=1) fails the first call only.
FAULT_PRELUDE = r'''
import errno, os, socket, time
def name(e): return errno.errorcode.get(e.errno)
def attempt(label, f):
    try:
        r = f(); return "%s ok" % label
    except OSError as e:
        return "%s %s" % (label, name(e))
def listener():
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(8); return l
'''

FAULT_KINDS = [
    ("socket:EMFILE:n=1",
     'keep = []\nprint(attempt("socket", lambda: keep.append(socket.socket())),'
     ' attempt("again", lambda: keep.append(socket.socket())))',
     "socket EMFILE again ok"),
    ("accept:ECONNABORTED:n=1",
     'lst = listener()\n'
     'c1 = socket.create_connection(lst.getsockname())\n'
     'c2 = socket.create_connection(lst.getsockname())\nkeep = []\n'
     'print(attempt("accept", lambda: keep.append(lst.accept())),'
     ' attempt("again", lambda: keep.append(lst.accept())))',
     "accept ECONNABORTED again ok"),
    ("read:ECONNRESET:n=1",
     'lst = listener()\n'
     'c = socket.create_connection(lst.getsockname()); s, _ = lst.accept()\n'
     'c.sendall(b"x")\nprint(attempt("recv", lambda: s.recv(10)), s.recv(10))',
     "recv ECONNRESET b'x'"),
    ("write:EPIPE:n=1",
     'lst = listener()\n'
     'c = socket.create_connection(lst.getsockname()); s, _ = lst.accept()\n'
     'print(attempt("send", lambda: s.send(b"y")), attempt("again", lambda: s.send(b"y")),'
     ' c.recv(10))',
     "send EPIPE again ok b'y'"),
    ("connect:ECONNREFUSED:n=1",
     'lst = listener()\n'
     'print(attempt("connect", lambda: socket.create_connection(lst.getsockname())),'
     ' attempt("again", lambda: socket.create_connection(lst.getsockname())))',
     "connect ECONNREFUSED again ok"),
    ("connect:delay=300ms",
     'lst = listener()\n'
     't = time.monotonic(); c = socket.create_connection(lst.getsockname())\n'
     'print("delayed", time.monotonic() - t >= 0.25)',
     "delayed True"),
    ("close:EIO:n=1",
     'c = socket.socket(); fd = c.detach()\n'
     'print(attempt("close", lambda: os.close(fd)), attempt("again", lambda: os.close(fd)))',
     "close EIO again EBADF"),
]


def fault_each_kind_on_a_python_program(ctx):
    """Every OP of --fault, on a Python program: socket, accept, read (recv family), write (send
    family), connect (errno and delay) and close (the fd is closed anyway, as the kernel does)."""
    for spec, code, want in FAULT_KINDS:
        rc, out, err = ctx.python(["--stats", "--fault", spec], FAULT_PRELUDE + code)
        check(rc == 0 and out == want, f"{spec}: got {out!r} (rc {rc}), want {want!r}\n"
                                       f"{err[-600:]}")
        check("faults_injected            1" in err, f"{spec}: one injection counted: "
                                                     f"{err[-900:]}")


def fault_port_filter_spares_other_ports(ctx):
    """connect:ECONNREFUSED:port=P refuses connects to P only."""
    code = r'''
import errno, socket
a = socket.socket(); a.bind(("127.0.0.1", 0)); a.listen(4)
b = socket.socket(); b.bind(("127.0.0.1", 0)); b.listen(4)
res = []
for l in (a, b):
    try:
        socket.create_connection(l.getsockname()); res.append("ok")
    except OSError as e:
        res.append(errno.errorcode.get(e.errno))
print(b.getsockname()[1], " ".join(res))
'''
    # The port is only known inside the program, so pick it first and pass it in.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    code = code.replace('b.bind(("127.0.0.1", 0))', f'b.bind(("127.0.0.1", {port}))')
    rc, out, err = ctx.python(["--fault", f"connect:ECONNREFUSED:port={port}"], code)
    check(rc == 0 and out == f"{port} ok ECONNREFUSED", f"got {out!r} (rc {rc}) {err[-300:]}")


def fault_seed_makes_random_faults_reproducible(ctx):
    code = r'''
import socket
res = []
for i in range(40):
    try:
        socket.socket().close(); res.append("1")
    except OSError:
        res.append("0")
print("".join(res))
'''
    runs = [ctx.python(["--fault", "socket:EMFILE:p=0.5", "--fault-seed", seed], code)[1]
            for seed in ("7", "7", "8")]
    check(runs[0] == runs[1], f"same seed, same faults: {runs[0]} vs {runs[1]}")
    check(runs[0] != runs[2] and "0" in runs[0] and "1" in runs[0],
          f"another seed, other faults, and p=0.5 both fails and passes: {runs}")


CHECKS = {f.__name__: f for f in (
    read_timeout_cuts_idle_connection_keeps_active, program_timeout_wins_over_policy,
    connect_timeout_returns_einprogress, fault_connect_refused_makes_curl_fail,
    fault_each_kind_on_a_python_program, fault_port_filter_spares_other_ports,
    fault_seed_makes_random_faults_reproducible)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--check", required=True, choices=sorted(CHECKS))
    a = ap.parse_args()
    ctx = Ctx(a.build)
    for f in ("gonet", "libgonet.so", "echo_threads", "http_threads"):
        if not os.path.exists(os.path.join(ctx.build, f)):
            print(f"{f} not built")
            return SKIP
    return run_check(CHECKS, a.check, ctx)


if __name__ == "__main__":
    sys.exit(main())
