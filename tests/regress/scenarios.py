"""The regression scenarios, one function per sample daemon.

A scenario starts its daemon under the mode being tested, drives it with blocking_client (run
under the same mode: it is a legacy program too), curl or Python's socket module, and compares
what the client saw with the literal result a native run gives. The literals are checked by the
'native' variant of each test, so a preloaded variant passes only if it matches native exactly:
same counts, same bytes, same errno names.
"""

import os
import signal
import socket
import struct
import tempfile
import threading

from harness import Daemon, Failure, group_members, run_program


class Context:
    def __init__(self, build, mode, native, corrupt):
        self.build = build
        self.mode = mode
        self.native = native  # the Mode used when a scenario compares against a native run
        self.corrupt = corrupt  # --corrupt N: the Nth check's expectation is made wrong
        self.checks = 0

    def daemon(self, name, *args):
        return Daemon(self.build, self.mode, name, *args)

    def client(self, port, *args, mode=None):
        mode = mode or self.mode
        cmd = [os.path.join(self.build, "blocking_client"), "--port", str(port), *map(str, args)]
        rc, out, err = run_program(cmd, mode.env())
        return cmd, rc, out, err

    def check(self, label, got, expected, detail=""):
        self.checks += 1
        if self.checks == self.corrupt:
            expected = ("corrupted expectation", expected)
        if got != expected:
            raise Failure(f"{label} [{self.mode}]\n  expected: {expected!r}\n  got:      {got!r}"
                          + (f"\n  {detail}" if detail else ""))
        print(f"ok   {label}", flush=True)

    def expect_client(self, label, port, args, lines):
        """Runs blocking_client and checks its whole output and its exit code (0 iff the
        expected output has no error lines)."""
        cmd, got_rc, out, err = self.client(port, *args)
        rc = 0 if len(lines) == 1 else 1
        self.check(label, (got_rc, out.splitlines()), (rc, lines),
                   f"command: {self.mode.shell_prefix()}{' '.join(cmd)}\n"
                   f"  client stderr: {err.strip()}")


def summary(conns, connected, ok, errors, nbytes, eof=None):
    line = f"conns={conns} connected={connected} ok={ok} errors={errors} bytes={nbytes}"
    return line if eof is None else f"{line} eof={eof}"


def pattern(seed, n):
    """examples::PatternByte, for payloads checked in Python."""
    return bytes((seed + i) % 251 for i in range(n))


def all_ok(conns, requests, size):
    return [summary(conns, conns, conns * requests, 0, conns * requests * size)]


def check_stops_cleanly(ctx, d, label, sig=signal.SIGTERM, via_tid=None):
    try:
        d.stop(sig, via_tid)
    except Failure as e:
        raise Failure(f"{label} [{ctx.mode}]: {e}")
    ctx.check(label, True, True)


def echo_threads(ctx):
    with ctx.daemon("echo_threads") as d:
        ctx.expect_client("echo_threads.many_connections_echo_exactly", d.port,
                          ["--conns", 16, "--requests", 40, "--size", 4096], all_ok(16, 40, 4096))
        ctx.expect_client("echo_threads.hundred_concurrent_connections", d.port,
                          ["--conns", 100, "--requests", 5, "--size", 512], all_ok(100, 5, 512))
        # Messages far larger than the initial socket buffers: partial sends and reads on both
        # sides. Not much larger: the client sends a whole message before reading, so the
        # echo must fit in the buffers between them (autotuned well above 1 MiB on loopback).
        ctx.expect_client("echo_threads.large_messages_survive_partial_io", d.port,
                          ["--conns", 2, "--requests", 3, "--size", 1 << 20],
                          all_ok(2, 3, 1 << 20))
        ctx.check("echo_threads.half_close_drains_echo_then_eof", _half_close_echo(d.port),
                  (HALF_CLOSE_BYTES, True))
        # Connection threads blocked in recv must not keep the process from exiting; their
        # peers see the connection end.
        held = [_echoing_connection(d.port) for _ in range(3)]
        try:
            check_stops_cleanly(ctx, d, "echo_threads.sigterm_exits_0_with_connections_in_recv")
            ctx.check("echo_threads.held_connections_end_at_exit",
                      [_recv_until_closed(s) for s in held], [b""] * 3)
        finally:
            for s in held:
                s.close()
    # Excess clients wait in the backlog until a connection thread frees its slot.
    with ctx.daemon("echo_threads", "--max-conns", 2) as d:
        ctx.expect_client("echo_threads.max_conns_queues_excess_clients", d.port,
                          ["--conns", 6, "--requests", 5, "--size", 1000], all_ok(6, 5, 1000))
        check_stops_cleanly(ctx, d, "echo_threads.sigterm_wakes_slot_wait")


def _echoing_connection(port):
    """A connection whose server thread has echoed once, so it is now blocked in recv."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"hello")
    got = b""
    while len(got) < 5:
        chunk = s.recv(5 - len(got))
        if not chunk:
            raise Failure("echo connection closed before echoing")
        got += chunk
    return s


def _recv_until_closed(s):
    """Reads until EOF or reset; returns what arrived after the last echo (b"" expected)."""
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


HALF_CLOSE_BYTES = 200000


def _half_close_echo(port):
    """Sends HALF_CLOSE_BYTES in one go, shuts down the sending side, and reads until EOF. The
    server sees its EOF while echo data may still be queued: it must still deliver all of it,
    then close. Returns (bytes echoed, whether they match what was sent)."""
    data = pattern(7, HALF_CLOSE_BYTES)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        sender = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = _recv_until_closed(s)
        sender.join(30)
    return len(got), got == data


def _curl(ctx, *args):
    return run_program(["curl", "--silent", "--show-error", "--max-time", "30", *args],
                       ctx.mode.env())


def http_threads(ctx):
    with ctx.daemon("http_threads") as d:
        ctx.expect_client("http_threads.keepalive_requests_return_exact_bodies", d.port,
                          ["--mode", "http", "--conns", 8, "--requests", 20, "--size", 10000],
                          all_ok(8, 20, 10000))
        ctx.expect_client("http_threads.large_bodies_arrive_whole", d.port,
                          ["--mode", "http", "--conns", 2, "--requests", 2, "--size", 8 << 20],
                          all_ok(2, 2, 8 << 20))
        # Pipelined requests in one segment: the server must keep the bytes after each head.
        with socket.create_connection(("127.0.0.1", d.port), timeout=30) as s:
            s.sendall(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /bytes/5 HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            bodies = [r.split(b"\r\n\r\n", 1)[1] for r in
                      _recv_until_closed(s).split(b"HTTP/1.1 200 OK\r\n")[1:]]
        ctx.check("http_threads.pipelined_requests_answered_in_order", bodies,
                  [pattern(0, 3), pattern(0, 5), b"hello from http_threads\n"])
        base = f"http://127.0.0.1:{d.port}"
        rc, out, err = _curl(ctx, base + "/")
        ctx.check("http_threads.curl_get_root", (rc, out), (0, "hello from http_threads\n"), err)
        # Two URLs in one curl run share one keep-alive connection: the second makes no connect.
        with tempfile.TemporaryDirectory() as tmp:
            a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
            rc, out, err = _curl(ctx, "-w", "%{http_code} %{num_connects}\n",
                                 "-o", a, base + "/bytes/100000", "-o", b, base + "/bytes/7")
            ctx.check("http_threads.curl_reuses_keepalive_connection", (rc, out),
                      (0, "200 1\n200 0\n"), err)
            with open(a, "rb") as fa, open(b, "rb") as fb:
                ctx.check("http_threads.curl_bodies_match_pattern", (fa.read(), fb.read()),
                          (pattern(0, 100000), pattern(0, 7)))
        rc, out, err = _curl(ctx, "-o", "/dev/null", "-w", "%{http_code}", base + "/nope")
        ctx.check("http_threads.curl_unknown_path_is_404", (rc, out), (0, "404"), err)
        check_stops_cleanly(ctx, d, "http_threads.sigterm_exits_0")
    # SO_RCVTIMEO on the server's connection ends an idle keep-alive connection: the client,
    # blocked in recv with a much longer timeout of its own, sees EOF.
    with ctx.daemon("http_threads", "--idle-timeout", 200) as d:
        ctx.expect_client("http_threads.idle_timeout_closes_silent_connection", d.port,
                          ["--mode", "http", "--conns", 3, "--requests", 0, "--await-close",
                           "--recv-timeout", 30000],
                          [summary(3, 3, 0, 0, 0, eof=3)])
        # The timeout also ends a connection that stalls halfway through a request head.
        with socket.create_connection(("127.0.0.1", d.port), timeout=30) as s:
            s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n")
            ctx.check("http_threads.idle_timeout_closes_stalled_request",
                      _recv_until_closed(s), b"")
        check_stops_cleanly(ctx, d, "http_threads.sigint_exits_0", signal.SIGINT)


def prefork(ctx):
    workers = 4
    with ctx.daemon("prefork", "--workers", workers) as d:
        ctx.check("prefork.parent_and_workers_running", len(group_members(d.proc.pid)),
                  workers + 1)
        # Four times more clients than workers: the rest wait in the backlog.
        ctx.expect_client("prefork.serves_many_clients", d.port,
                          ["--conns", 16, "--requests", 20, "--size", 2048], all_ok(16, 20, 2048))
        # Each worker serves one connection at a time, so later runs are served only if the
        # workers went back to accept.
        for run in range(3):
            ctx.expect_client(f"prefork.workers_return_to_accept.run{run}", d.port,
                              ["--conns", 8, "--requests", 5, "--size", 100], all_ok(8, 5, 100))
        ctx.check("prefork.half_close_drains_echo_then_eof", _half_close_echo(d.port),
                  (HALF_CLOSE_BYTES, True))
        ctx.check("prefork.no_worker_died", len(group_members(d.proc.pid)), workers + 1,
                  d.stderr_text())
        check_stops_cleanly(ctx, d, "prefork.sigterm_is_forwarded_to_workers")


def _exec_child_holds_socket(d):
    """Holds one connection open, echoes through it, and lists the daemon's children serving
    it as (comm, whether fds 0 and 1 are the same socket)."""
    with socket.create_connection(("127.0.0.1", d.port), timeout=30) as s:
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            chunk = s.recv(4 - len(got))
            if not chunk:
                break
            got += chunk
        children = []
        for pid in group_members(d.proc.pid):
            if pid == d.proc.pid:
                continue
            try:
                with open(f"/proc/{pid}/comm") as f:
                    name = f.read().strip()
                fds = [os.readlink(f"/proc/{pid}/fd/{n}") for n in (0, 1)]
            except OSError:
                continue
            children.append((name, fds[0] == fds[1] and fds[0].startswith("socket:")))
        return got, children


def inetd_child(ctx):
    with ctx.daemon("inetd_child") as d:
        got, children = _exec_child_holds_socket(d)
        # /proc/PID/comm keeps the first 15 characters of the program's name.
        ctx.check("inetd_child.exec_child_inherits_socket_as_stdio", (got, children),
                  (b"ping", [("inetd_echo_child"[:15], True)]))
        ctx.expect_client("inetd_child.exec_child_per_connection_echoes", d.port,
                          ["--conns", 8, "--requests", 10, "--size", 8192], all_ok(8, 10, 8192))
        ctx.expect_client("inetd_child.exec_child_large_messages", d.port,
                          ["--conns", 2, "--requests", 2, "--size", 1 << 20],
                          all_ok(2, 2, 1 << 20))
        check_stops_cleanly(ctx, d, "inetd_child.sigterm_exits_0_children_reaped")
    # A program that never heard of sockets serves the connection: /bin/cat.
    with ctx.daemon("inetd_child", "--exec", "/bin/cat") as d:
        ctx.expect_client("inetd_child.cat_as_child_echoes", d.port,
                          ["--conns", 4, "--requests", 10, "--size", 8192], all_ok(4, 10, 8192))
        ctx.check("inetd_child.cat_half_close_drains_echo_then_eof", _half_close_echo(d.port),
                  (HALF_CLOSE_BYTES, True))
        check_stops_cleanly(ctx, d, "inetd_child.cat_server_sigterm_exits_0")


def udp_echo(ctx):
    with ctx.daemon("udp_echo") as d:
        ctx.expect_client("udp_echo.datagrams_echo_exactly", d.port,
                          ["--udp", "--conns", 4, "--requests", 50, "--size", 1200],
                          all_ok(4, 50, 1200))
        ctx.expect_client("udp_echo.connected_socket_echoes", d.port,
                          ["--udp", "--udp-connect", "--conns", 2, "--requests", 10, "--size", 100],
                          all_ok(2, 10, 100))
        ctx.expect_client("udp_echo.near_max_datagram", d.port,
                          ["--udp", "--conns", 1, "--requests", 5, "--size", 60000],
                          all_ok(1, 5, 60000))
        # Message boundaries: three datagrams sent back to back come back as three, in order,
        # the empty one included.
        sizes = [0, 1, 1000]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(30)
            for i, n in enumerate(sizes):
                s.sendto(pattern(i, n), ("127.0.0.1", d.port))
            got = [s.recvfrom(65536)[0] for _ in sizes]
        ctx.check("udp_echo.message_boundaries_kept", got,
                  [pattern(i, n) for i, n in enumerate(sizes)])
        # Ctrl-C must stop a blocking server under gonet as it does natively.
        check_stops_cleanly(ctx, d, "udp_echo.sigint_interrupts_recvfrom_and_exits_0",
                            signal.SIGINT)
    # A process-directed signal may run its handler on any thread that does not block it. The
    # daemon has one thread of its own; any other thread (a runtime's) must not change how the
    # stop goes. The handler runs there while the daemon's thread sits in recvfrom, so the stop
    # comes from the handler's shutdown(): a blocking recvfrom on a shut-down UDP socket
    # returns 0.
    with ctx.daemon("udp_echo") as d:
        ctx.expect_client("udp_echo.echoes_before_foreign_thread_stop", d.port,
                          ["--udp", "--conns", 1, "--requests", 1, "--size", 10],
                          all_ok(1, 1, 10))
        check_stops_cleanly(ctx, d, "udp_echo.stop_handled_on_another_thread_exits_0",
                            signal.SIGTERM, via_tid=d.threads()[-1])


def _listener(backlog):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s


def blocking_client(ctx):
    """Client-side errors, with the server played by this process."""
    # A bound socket that does not listen answers a SYN with RST, and holds the port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        ctx.expect_client("blocking_client.connect_to_closed_port_is_refused", port,
                          ["--conns", 3], [summary(3, 0, 0, 3, 0), "connect: ECONNREFUSED count=3"])
    # A connected UDP socket learns of the ICMP port-unreachable as ECONNREFUSED on recv.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        ctx.expect_client("blocking_client.udp_to_closed_port_is_refused", port,
                          ["--udp", "--udp-connect", "--conns", 2, "--recv-timeout", 30000],
                          [summary(2, 2, 0, 2, 0), "recv: ECONNREFUSED count=2"])
    # SO_RCVTIMEO: a server that takes the connection (the backlog does) but never answers.
    with _listener(8) as silent:
        ctx.expect_client("blocking_client.recv_timeout_is_eagain", silent.getsockname()[1],
                          ["--requests", 1, "--recv-timeout", 200],
                          [summary(1, 1, 0, 1, 0), "recv: EAGAIN count=1"])
    # SO_SNDTIMEO on send: a peer that never reads lets the buffers fill, then the blocked
    # send gives up with EAGAIN (SendAll has already retried the partial count it got first).
    with _listener(8) as sink:
        ctx.expect_client("blocking_client.send_timeout_is_eagain", sink.getsockname()[1],
                          ["--requests", 1, "--size", 64 << 20, "--connect-timeout", 200],
                          [summary(1, 1, 0, 1, 0), "send: EAGAIN count=1"])
    # A server that reads the request and resets the connection.
    with _listener(8) as resetter:
        t = threading.Thread(target=_accept_read_reset, args=(resetter,))
        t.start()
        try:
            ctx.expect_client("blocking_client.peer_reset_is_econnreset",
                              resetter.getsockname()[1],
                              ["--requests", 1, "--size", 10, "--recv-timeout", 30000],
                              [summary(1, 1, 0, 1, 0), "recv: ECONNRESET count=1"])
        finally:
            t.join(30)
    # SO_SNDTIMEO on connect: a listener with backlog 1 that never accepts queues two
    # connections; Linux drops the SYN of the third, so its connect times out with
    # EINPROGRESS. The native result is measured first, then required of the mode.
    args = ["--serial", "--conns", 4, "--requests", 0, "--connect-timeout", 300]
    expected = [summary(4, 2, 0, 2, 0), "connect: EINPROGRESS count=2"]
    if not ctx.mode.native:
        with _listener(1) as full:
            cmd, rc, out, err = ctx.client(full.getsockname()[1], *args, mode=ctx.native)
            expected = out.splitlines()
    with _listener(1) as full:
        ctx.expect_client("blocking_client.connect_timeout_on_full_backlog_is_einprogress",
                          full.getsockname()[1], args, expected)


def _accept_read_reset(listener):
    listener.settimeout(30)
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    with conn:
        conn.settimeout(30)
        try:
            conn.recv(10, socket.MSG_WAITALL)
        except OSError:
            pass
        # SO_LINGER with a zero timeout turns close into a reset.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


SCENARIOS = {
    "echo_threads": echo_threads,
    "http_threads": http_threads,
    "prefork": prefork,
    "inetd_child": inetd_child,
    "udp_echo": udp_echo,
    "blocking_client": blocking_client,
}
