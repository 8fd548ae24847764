#!/usr/bin/env python3
"""Real programs from Debian packages under libgonet.so (issue 3, "Real programs under the shim").

Each check runs the same exchange natively and preloaded and compares what the client saw.
Usage: run_real.py --build DIR --check NAME --mode threads|passthrough|fibers
Exit: 0 pass, 1 fail, 77 skip (a program or libgonet.so is missing).
"""
import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class Env:
    def __init__(self, build, mode):
        self.lib = os.path.join(build, "libgonet.so")
        self.mode = mode

    def environ(self, preload):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if preload:
            env["LD_PRELOAD"] = self.lib
            env["GONET_MODE"] = self.mode
        return env


def start(cmd, env, **kw):
    return subprocess.Popen(cmd, env=env, start_new_session=True, **kw)


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check_curl_http_server(e):
    """curl fetches a 2 MiB file from `python3 -m http.server`; bytes identical (both preloaded)."""
    with tempfile.TemporaryDirectory() as d:
        blob = os.urandom(2 * 1024 * 1024)
        with open(os.path.join(d, "blob.bin"), "wb") as f:
            f.write(blob)
        results = {}
        for preload in (False, True):
            port = free_port()
            srv = start(["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                        e.environ(preload), cwd=d, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
            try:
                wait_port(port, srv)
                got = []
                for _ in range(3):
                    out = subprocess.run(["curl", "-sS", "--max-time", "20",
                                          f"http://127.0.0.1:{port}/blob.bin"],
                                         env=e.environ(preload), capture_output=True, timeout=30)
                    got.append((out.returncode, hashlib.sha256(out.stdout).hexdigest()))
                results[preload] = got
            finally:
                stop(srv, signal.SIGINT)
        want = [(0, hashlib.sha256(blob).hexdigest())] * 3
        print("native:", results[False])
        print("preloaded:", results[True])
        return results[False] == want and results[True] == want


def echo_exchange(port, rounds=50):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    digest = hashlib.sha256()
    for i in range(rounds):
        msg = bytes((i + k) % 251 for k in range(100 + i * 37))
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("EOF in the middle of an echo")
            got += chunk
        digest.update(got)
        if got != msg:
            return "mismatch"
    s.close()
    return digest.hexdigest()


def check_socat_exec_child(e):
    """A preloaded socat forks, and its EXEC:cat child inherits the socket on stdin/stdout."""
    if not shutil.which("socat"):
        print("socat not installed")
        return SKIP
    results = {}
    for preload in (False, True):
        port = free_port()
        srv = start(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat"],
                    e.environ(preload), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(port, srv)
            results[preload] = [echo_exchange(port) for _ in range(3)]
        finally:
            stop(srv)
    print("native:", results[False][0][:16], "preloaded:", results[True][0][:16])
    return results[False] == results[True] and "mismatch" not in results[True]


PY_PAIR = r'''
import hashlib, os, socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(64)
port = srv.getsockname()[1]
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d: return
            c.sendall(d)
def acceptor():
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=acceptor, daemon=True).start()
out = [None] * 16
def client(i):
    s = socket.create_connection(("127.0.0.1", port))
    h = hashlib.sha256()
    for k in range(100):
        msg = bytes((i * 7 + k + j) % 256 for j in range(1 + (k * 131) % 20000))
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(65536)
        assert got == msg
        h.update(got)
    s.shutdown(socket.SHUT_WR)
    assert s.recv(10) == b""
    s.close()
    out[i] = h.hexdigest()
ts = [threading.Thread(target=client, args=(i,)) for i in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
print(hashlib.sha256("".join(out).encode()).hexdigest())
'''


def check_python_blocking_pair(e):
    """A Python blocking server (thread per connection) and 16 blocking client threads."""
    outs = {}
    for preload in (False, True):
        r = subprocess.run(["/usr/bin/python3", "-c", PY_PAIR], env=e.environ(preload),
                           capture_output=True, text=True, timeout=60)
        outs[preload] = (r.returncode, r.stdout.strip())
        if r.returncode != 0:
            print(r.stderr[-2000:])
    print("native:", outs[False], "preloaded:", outs[True])
    return outs[False] == outs[True] and outs[False][0] == 0


PY_ACCEPT_CTRL_C = r'''
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
try:
    s.accept()
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(3)
'''


def check_python_ctrl_c_in_accept(e):
    """Ctrl-C (SIGINT) stops a preloaded Python server blocked in accept, as natively."""
    outs = {}
    for preload in (False, True):
        p = start(["/usr/bin/python3", "-c", PY_ACCEPT_CTRL_C], e.environ(preload),
                  stdout=subprocess.PIPE, text=True)
        try:
            p.stdout.readline()
            time.sleep(0.3)  # the outcome is the same if it is not in accept yet: Python retries
            os.kill(p.pid, signal.SIGINT)
            out, _ = p.communicate(timeout=10)
            outs[preload] = (p.returncode, out.strip())
        finally:
            stop(p, signal.SIGKILL)
    print("native:", outs[False], "preloaded:", outs[True])
    return outs[False] == outs[True] == (3, "KeyboardInterrupt")


def redis_syscalls(e, preload, requests):
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "strace.txt")
        srv = start(["strace", "-f", "-c", "-o", log, "redis-server", "--port", str(port),
                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--daemonize", "no", "--dir", d],
                    e.environ(preload), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, srv)
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            for i in range(requests):
                s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n%03d\r\n" % (i % 1000))
                if s.recv(100) != b"+OK\r\n":
                    raise RuntimeError("bad reply")
            s.close()
            time.sleep(0.2)
        finally:
            stop(srv, signal.SIGINT)
        total = 0
        with open(log) as f:
            for line in f:
                parts = line.split()
                if parts and parts[-1] == "total":
                    total = int(parts[3])  # % time, seconds, usecs/call, calls, [errors,] total
        return total


def check_redis_no_extra_syscalls(e):
    """redis-server (event-driven) makes no more syscalls per request preloaded than native.

    Per-request cost is the difference between a long and a short run, so start-up work (gonet's
    own initialisation included) cancels out."""
    for tool in ("redis-server", "strace"):
        if not shutil.which(tool):
            print(f"{tool} not installed")
            return SKIP
    per = {}
    for preload in (False, True):
        small = redis_syscalls(e, preload, 500)
        large = redis_syscalls(e, preload, 2500)
        per[preload] = (large - small) / 2000.0
    print(f"syscalls per request: native {per[False]:.2f}, preloaded {per[True]:.2f}")
    return per[True] <= per[False] + 0.05


CHECKS = {
    "curl_python_http_server": check_curl_http_server,
    "socat_exec_child": check_socat_exec_child,
    "python_blocking_pair": check_python_blocking_pair,
    "python_ctrl_c_in_accept": check_python_ctrl_c_in_accept,
    "redis_no_extra_syscalls": check_redis_no_extra_syscalls,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--check", required=True, choices=sorted(CHECKS))
    ap.add_argument("--mode", default="threads")
    a = ap.parse_args()
    e = Env(os.path.abspath(a.build), a.mode)
    if not os.path.exists(e.lib):
        print("libgonet.so not built")
        return SKIP
    r = CHECKS[a.check](e)
    if r == SKIP:
        return SKIP
    print("PASS" if r else "FAIL")
    return 0 if r else 1


if __name__ == "__main__":
    sys.exit(main())
