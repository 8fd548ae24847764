"""Soak of real Debian servers (issue 17): redis-server (event-driven, the database of tests/real)
and `python3 -m http.server` (Python's ThreadingHTTPServer: a thread per connection, which fibers
mode turns into fibers), natively and under gonet in threads and fibers mode.

Each cell starts the server in a fresh working directory, warms it up, measures its baseline
(fds, the program's own threads, RSS) and drives it for SOAK_SECONDS with client threads that
connect, make requests whose replies are checked byte for byte (redis: SET of a random binary
value then GET of it; HTTP: GET of a file whose bytes the client knows) and end each connection at
random (clean close, RST, close mid-request, close without reading the reply). Under gonet the
server runs with gonet's fault injection (SERVER_FAULT: resets, accept aborts, delays) and the
clients with refused connects (CLIENT_FAULT, passthrough preload, in every cell), and a monitor
runs `gonet stats PID --json` and `gonet dump PID` every second while loaded. Then the server
gets its usual stop signal (redis SIGTERM, http.server SIGINT: Ctrl-C). A cell fails on:

  crash     the server died during the load, or gonet reported a fault
  replies   a reply was wrong, or none came within the client's timeout (a hang)
  inspect   a `gonet stats` or `gonet dump` failed while loaded
  answers   the server does not answer a clean request after the load
  fds/threads/rss  not back to the baseline after the load (threads: the program's own, not
            gonet's gonet-* threads; RSS: within RSS_SLACK_KIB)
  stats     the exit summary breaks parks == wakes_* + threads_parked, or invariant_failures != 0
  stop      the stop signal does not end the server with its usual status, or it takes more than
            STOP_FACTOR times the native cell's stop (plus STOP_NOISE_S for the machine's noise)
  trace     a file is left in the working directory, /dev/shm or /tmp that the server made
            (compared by name before and after: a redis dump, a gonet segment file), or any
            process still maps the server's segment
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

SERVER_FAULT = "read:ECONNRESET:p=0.001;write:delay=1ms:p=0.01;accept:ECONNABORTED:p=0.01"
CLIENT_FAULT = "connect:ECONNREFUSED:p=0.01"
MODES = {"native": None, "threads": "threads", "fibers": "fibers"}
CLIENT_THREADS = 24
CLIENT_TIMEOUT_S = 20  # a reply slower than this is a hang
START_BOUND_S = 20
SETTLE_BOUND_S = 30
STOP_BOUND_S = 60
STOP_FACTOR = 5
STOP_NOISE_S = 0.5
RSS_SLACK_KIB = 48 * 1024
HTTP_SIZES = (0, 1, 100, 4096, 65536, 300000)
SEGMENT_LINK = "/memfd:gonet-stats (deleted)"


def pattern(size):
    """The bytes of the HTTP file of this size."""
    return bytes((i * 7 + size) % 251 for i in range(size))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cut(Exception):
    """The server ended the connection (an injected fault): counted, not a failure."""


class Wrong(Exception):
    """A reply that is not what was asked for: a failure."""


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S)
        self.buf = b""

    def fill(self):
        try:
            data = self.s.recv(65536)
        except socket.timeout:
            raise
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Cut(str(e))
        if not data:
            raise Cut("eof")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n", 1)
        return head

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        while True:
            try:
                self.fill()
            except Cut:
                return self.buf

    def send(self, data):
        try:
            self.s.sendall(data)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Cut(str(e))

    def close(self, how):
        if how == "rst":
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()


def redis_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Redis:
    name = "redis-server"
    stop_signal = signal.SIGTERM
    stop_status = 0

    def command(self, port, work):
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", work, "--logfile", ""]

    def prepare(self, work):
        pass

    def session(self, port, rng, tid, tally):
        """One connection: a few SET/GET pairs, then an ending chosen at random."""
        c = Conn(port)
        ending = rng.choice(["clean", "clean", "rst", "mid", "noread"])
        conn_id = rng.getrandbits(48)
        try:
            for i in range(rng.randint(1, 20)):
                # Unique per connection: an earlier connection's SET still queued in the server
                # must not overwrite this one's. Each pair is deleted again (a bounded data set).
                key = b"k%d:%d:%d" % (tid, conn_id, i)
                value = rng.randbytes(rng.choice([0, 1, 10, 1000, 20000]))
                if ending == "mid" and i == 0:
                    c.send(redis_cmd(b"SET", key, value)[:7])
                    break
                c.send(redis_cmd(b"SET", key, value))
                if ending == "noread":
                    break
                reply = c.line()
                if reply != b"+OK":
                    raise Wrong(f"SET -> {reply[:60]!r}")
                c.send(redis_cmd(b"GET", key))
                head = c.line()
                if head != b"$%d" % len(value):
                    raise Wrong(f"GET header {head[:60]!r}, want ${len(value)}")
                if c.exact(len(value) + 2) != value + b"\r\n":
                    raise Wrong("GET value differs")
                c.send(redis_cmd(b"DEL", key))
                if c.line() != b":1":
                    raise Wrong("DEL of a key just set")
                tally.add("exchanges")
        finally:
            c.close("rst" if ending == "rst" else "close")

    def probe(self, port):
        c = Conn(port)
        try:
            c.send(redis_cmd(b"SET", b"probe", b"v") + redis_cmd(b"GET", b"probe"))
            return c.line() == b"+OK" and c.line() == b"$1" and c.exact(3) == b"v\r\n"
        finally:
            c.close("close")


class PyHttp:
    name = "python3 http.server"
    stop_signal = signal.SIGINT  # Ctrl-C: it prints "Keyboard interrupt received, exiting."
    stop_status = 0

    def command(self, port, work):
        return ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1",
                "--directory", work, str(port)]

    def prepare(self, work):
        for size in HTTP_SIZES:
            with open(os.path.join(work, f"f{size}"), "wb") as f:
                f.write(pattern(size))

    def get(self, c, size):
        c.send(b"GET /f%d HTTP/1.0\r\nHost: x\r\n\r\n" % size)
        status = c.line()
        if not status.startswith(b"HTTP/1.0 200"):
            raise Wrong(f"status {status[:60]!r}")
        while c.line():
            pass
        body = c.rest()
        if body != pattern(size):
            raise Wrong(f"body of /f{size}: {len(body)} bytes, differs")

    def session(self, port, rng, tid, tally):
        c = Conn(port)
        ending = rng.choice(["clean", "clean", "clean", "rst", "mid", "noread"])
        size = rng.choice(HTTP_SIZES)
        try:
            if ending == "mid":
                c.send(b"GET /f%d HT" % size)
            elif ending == "noread":
                c.send(b"GET /f%d HTTP/1.0\r\n\r\n" % size)
            else:
                self.get(c, size)
                tally.add("exchanges")
        finally:
            c.close("rst" if ending == "rst" else "close")

    def probe(self, port):
        c = Conn(port)
        try:
            self.get(c, 4096)
            return True
        except (Cut, Wrong):
            return False
        finally:
            c.close("close")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}
        self.failures = []

    def add(self, what, k=1):
        with self.lock:
            self.n[what] = self.n.get(what, 0) + k

    def fail(self, what):
        with self.lock:
            self.failures.append(what)


def drive(server, port, seconds, seed, tally):
    """Client threads for `seconds`. Refused connects come from CLIENT_FAULT (the load runs in a
    passthrough-preloaded child process: see load_main)."""
    end = time.monotonic() + seconds

    def worker(tid):
        rng = random.Random(seed * 1000 + tid)
        while time.monotonic() < end:
            try:
                tally.add("connects")
                server.session(port, rng, tid, tally)
            except ConnectionRefusedError:
                tally.add("refused")
            except Cut:
                tally.add("cut")
            except socket.timeout:
                tally.fail("no reply within %ds (hang)" % CLIENT_TIMEOUT_S)
                return
            except Wrong as e:
                tally.fail(f"wrong reply: {e}")
            except OSError as e:
                tally.add("cut")  # ECONNRESET on connect, EPIPE: the server's injected faults
                tally.add(f"oserror {e.errno}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


SERVERS = {"redis": Redis, "pyhttp": PyHttp}


def load_main(argv):
    """The load client, run as a child under libgonet.so in passthrough mode with CLIENT_FAULT:
    real_servers.py load SERVER PORT SECONDS SEED; prints one JSON line."""
    server = SERVERS[argv[0]]()
    tally = Tally()
    drive(server, int(argv[1]), int(argv[2]), int(argv[3]), tally)
    print(json.dumps({"n": tally.n, "failures": tally.failures[:20],
                      "failure_count": len(tally.failures)}), flush=True)
    return 0


def program_threads(pid):
    """The program's own threads (gonet's are named gonet-*), and gonet's."""
    own, gonet = 0, 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/comm") as f:
                    if f.read().startswith("gonet-"):
                        gonet += 1
                    else:
                        own += 1
            except OSError:
                pass
    except OSError:
        pass
    return own, gonet


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def fd_links(pid):
    out = {}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
    except OSError:
        pass
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_until(pred, bound_s, pause_s=0.1):
    end = time.monotonic() + bound_s
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(pause_s)
    return True


def listing():
    out = set()
    for d in ("/dev/shm", "/tmp"):
        try:
            out |= {os.path.join(d, f) for f in os.listdir(d)}
        except OSError:
            pass
    return out


def segment_mapped_by_anyone(pid):
    """Whether any process still maps a gonet segment whose header names pid (a dead server's
    segment kept alive by someone): every process of ours that maps one is asked."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/maps") as f:
                if SEGMENT_LINK not in f.read():
                    continue
            for fd in os.listdir(f"/proc/{p}/fd"):
                if os.readlink(f"/proc/{p}/fd/{fd}") == SEGMENT_LINK:
                    with open(f"/proc/{p}/fd/{fd}", "rb") as seg:
                        head = seg.read(24)
                    if len(head) == 24 and struct.unpack_from("<i", head, 16)[0] == pid:
                        return int(p)
        except OSError:
            pass
    return None


class Cell:
    def __init__(self, build, server_key, mode, seconds, seed, native_stop_s):
        self.build, self.key, self.mode = build, server_key, mode
        self.server = SERVERS[server_key]()
        self.seconds, self.seed, self.native_stop_s = seconds, seed, native_stop_s
        self.violations = []
        self.row = {}
        self.stop_s = None

    def env(self, preload_mode, fault, seed):
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("GONET_")}
        if preload_mode is not None:
            env.update(LD_PRELOAD=os.path.join(self.build, "libgonet.so"),
                       GONET_MODE=preload_mode, GONET_FAULT=fault, GONET_FAULT_SEED=str(seed),
                       GONET_STATS="1" if preload_mode != "passthrough" else "0")
        return env

    def gonet(self, *args):
        return subprocess.run([os.path.join(self.build, "gonet"), *map(str, args)],
                              capture_output=True, text=True, timeout=60)

    def load(self, port, seconds, seed):
        return subprocess.Popen(
            ["/usr/bin/python3", os.path.abspath(__file__), "load", self.key, str(port),
             str(seconds), str(seed)],
            env=self.env("passthrough", CLIENT_FAULT, seed + 1),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def monitor(self, pid, stop, tally):
        """gonet stats and dump every second while loaded."""
        while not stop.wait(1.0):
            for cmd in (("stats", pid, "--json"), ("dump", pid)):
                r = self.gonet(*cmd)
                tally.add(f"gonet {cmd[0]}")
                if r.returncode != 0:
                    tally.fail(f"gonet {' '.join(map(str, cmd))}: rc {r.returncode} "
                               f"{r.stderr.strip()[:160]}")

    def run(self):
        self.row = {"server": self.key, "mode": self.mode}
        work = tempfile.mkdtemp(prefix="soak-real-")
        self.server.prepare(work)
        work_before = set(os.listdir(work))
        before = listing()
        port = free_port()
        errpath = os.path.join(self.build, f"soak-{self.key}-{self.mode}.stderr")
        errf = open(errpath, "w+")
        preload = MODES[self.mode]
        proc = subprocess.Popen(self.server.command(port, work), cwd=work,
                                env=self.env(preload, SERVER_FAULT, self.seed),
                                stdout=subprocess.DEVNULL, stderr=errf, start_new_session=True)
        try:
            self._drive(proc, port)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        errf.seek(0)
        stderr = errf.read()
        errf.close()
        for needle in ("gonet: fatal", "invariant broken", "Segmentation", "terminate called",
                       "AddressSanitizer"):
            if needle in stderr:
                self.violations.append(f"crash: '{needle}' in {errpath}")
        if preload is not None:
            import run_soak  # the summary parser and the parks identity
            blocks = run_soak.parse_summaries(stderr)
            if not blocks:
                self.violations.append(f"stats: no GONET_STATS summary in {errpath}")
            for b in blocks:
                self.violations += run_soak.stats_violations(b, f"pid {b['pid']}")
                self.row["parks"] = b.get("parks", 0)
                self.row["faults"] = b.get("faults_injected", 0)
        left = sorted((set(os.listdir(work)) - work_before) |
                      {f for f in listing() - before if re.search(rf"\b{proc.pid}\b", f)})
        if left:
            self.violations.append(f"trace: left behind {left}")
        holder = segment_mapped_by_anyone(proc.pid)
        if holder is not None:
            self.violations.append(f"trace: process {holder} maps pid {proc.pid}'s segment")
        shutil.rmtree(work, ignore_errors=True)
        return not self.violations

    def _drive(self, proc, port):
        if not wait_until(lambda: self._answers(port) or proc.poll() is not None, START_BOUND_S):
            self.violations.append("start: the server did not answer")
            return
        if proc.poll() is not None:
            self.violations.append(f"start: exited with status {proc.poll()}")
            return
        # Warm-up: one second of the same load, so that what the server and gonet make once
        # (gonet's epoll instance and eventfd, its offload helpers, the program's caches) is in
        # the baseline rather than counted as a leak.
        # The first `gonet dump` that takes a backtrace makes libunwind open its memory-validation
        # pipe (two fds, kept for the process's life: README, Known limits), so the warm-up
        # dumps until one has a backtrace (a thread or fiber caught waiting in a socket call).
        warm = self.load(port, 2, self.seed + 7)
        if MODES[self.mode] is not None:
            self.gonet("stats", proc.pid)
            for _ in range(40):
                if "  #0 " in self.gonet("dump", proc.pid).stdout or warm.poll() is not None:
                    break
                time.sleep(0.05)
        warm.communicate(timeout=START_BOUND_S + CLIENT_TIMEOUT_S)
        fd0, (thr0, _), rss0 = fd_count(proc.pid), program_threads(proc.pid), rss_kib(proc.pid)
        links0 = fd_links(proc.pid)
        load = self.load(port, self.seconds, self.seed)
        tally = Tally()
        stop = threading.Event()
        mon = None
        if MODES[self.mode] is not None:
            mon = threading.Thread(target=self.monitor, args=(proc.pid, stop, tally))
            mon.start()
        fd_peak, thr_peak, rss_peak = fd0, thr0, rss0
        hard_end = time.monotonic() + self.seconds + CLIENT_TIMEOUT_S + 60
        while load.poll() is None and time.monotonic() < hard_end:
            fd_peak = max(fd_peak, fd_count(proc.pid))
            thr_peak = max(thr_peak, program_threads(proc.pid)[0])
            rss_peak = max(rss_peak, rss_kib(proc.pid))
            time.sleep(0.25)
        stop.set()
        if mon is not None:
            mon.join()
        if load.poll() is None:
            load.kill()
            self.violations.append("replies: the load client did not finish (hang)")
        out, err = load.communicate()
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = {"n": {}, "failures": [f"no summary: {err.strip()[-300:]}"],
                      "failure_count": 1}
        n = result["n"]
        for f in result["failures"]:
            self.violations.append(f"replies: {f}")
        for f in tally.failures[:10]:
            self.violations.append(f"inspect: {f}")
        self.row.update(connects=n.get("connects", 0), exchanges=n.get("exchanges", 0),
                        cut=n.get("cut", 0), refused=n.get("refused", 0),
                        inspections=tally.n.get("gonet stats", 0) + tally.n.get("gonet dump", 0))
        if proc.poll() is not None:
            self.violations.append(f"crash: the server exited during the load ({proc.poll()})")
            return
        if not wait_until(lambda: fd_count(proc.pid) <= fd0, SETTLE_BOUND_S):
            extra = sorted(set(fd_links(proc.pid).items()) - set(links0.items()))
            dump = self.gonet("dump", proc.pid).stdout if MODES[self.mode] else ""
            self.violations.append(f"fds: {fd_count(proc.pid)} after the load, baseline {fd0}: "
                                   f"{extra}\n{dump}")
        if not wait_until(lambda: program_threads(proc.pid)[0] <= thr0, SETTLE_BOUND_S):
            self.violations.append(f"threads: {program_threads(proc.pid)[0]} after the load, "
                                   f"baseline {thr0}")
        rss1 = rss_kib(proc.pid)
        if rss1 > rss0 + RSS_SLACK_KIB:
            self.violations.append(f"rss: {rss1} KiB after the load, baseline {rss0} KiB")
        own1, gonet1 = program_threads(proc.pid)
        self.row.update(fds=f"{fd0}/{fd_peak}/{fd_count(proc.pid)}",
                        threads=f"{thr0}/{thr_peak}/{own1}+{gonet1}",
                        rss=f"{rss0 // 1024}/{rss_peak // 1024}/{rss1 // 1024}")
        if not self._answers(port):
            self.violations.append("answers: no clean answer after the load")
        t0 = time.monotonic()
        proc.send_signal(self.server.stop_signal)
        try:
            status = proc.wait(timeout=STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            self.violations.append(f"stop: still running {STOP_BOUND_S}s after "
                                   f"{signal.Signals(self.server.stop_signal).name} (hang)")
            return
        self.stop_s = time.monotonic() - t0
        self.row["stop"] = f"{self.stop_s * 1000:.0f}ms"
        if status != self.server.stop_status:
            self.violations.append(f"stop: status {status} after "
                                   f"{signal.Signals(self.server.stop_signal).name}")
        if self.native_stop_s is not None:
            limit = self.native_stop_s * STOP_FACTOR + STOP_NOISE_S
            if self.stop_s > limit:
                self.violations.append(f"stop: {self.stop_s:.3f}s, native "
                                       f"{self.native_stop_s:.3f}s (limit {limit:.3f}s)")

    def _answers(self, port):
        try:
            return self.server.probe(port)
        except (OSError, Cut, Wrong):
            return False


def run_all(build, seconds, seed, filters):
    """Runs every real-server cell that the filters select; prints a table; returns failures."""
    if not shutil.which("redis-server"):
        print("soak: skipped redis-server (not installed: apt-get install redis-server)")
        skip = {"redis"}
    else:
        skip = set()
    cells = [(k, m) for k in SERVERS for m in MODES if k not in skip]
    cells = [(k, m) for k, m in cells
             if not filters or any(f in f"{k}/{m}" for f in filters)]
    if not cells:
        return 0
    print(f"\nsoak (real servers): {len(cells)} cells x {seconds}s, {CLIENT_THREADS} client "
          f"threads; server fault '{SERVER_FAULT}' (under gonet), client fault '{CLIENT_FAULT}'; "
          f"gonet stats + dump every second", flush=True)
    print(f"{'server':<8} {'mode':<8} {'conns':>7} {'exch':>7} {'cut':>6} {'refused':>7} "
          f"{'inspect':>7} {'fds b/p/e':>12} {'threads b/p/e+g':>16} {'RSS MiB b/p/e':>14} "
          f"{'stop':>7} {'parks':>8} {'faults':>7}  result")
    failed = 0
    native_stop = {}
    for i, (key, mode) in enumerate(cells):
        cell = Cell(build, key, mode, seconds, seed + 100 + i, native_stop.get(key))
        ok = cell.run()
        if mode == "native" and cell.stop_s is not None:
            native_stop[key] = cell.stop_s
        r = cell.row
        print(f"{key:<8} {mode:<8} {r.get('connects', 0):>7} {r.get('exchanges', 0):>7} "
              f"{r.get('cut', 0):>6} {r.get('refused', 0):>7} {r.get('inspections', 0):>7} "
              f"{r.get('fds', '-'):>12} {r.get('threads', '-'):>16} {r.get('rss', '-'):>14} "
              f"{r.get('stop', '-'):>7} {r.get('parks', '-'):>8} {r.get('faults', '-'):>7}  "
              f"{'ok' if ok else 'FAIL'}", flush=True)
        for v in cell.violations:
            print(f"    {v}", flush=True)
        failed += not ok
    print(f"soak (real servers): {len(cells) - failed} cells ok, {failed} failed")
    return failed


if __name__ == "__main__":
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        sys.exit(load_main(sys.argv[2:]))
    sys.exit(1 if run_all(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build"),
                          int(os.environ.get("SOAK_SECONDS", "15")),
                          int(os.environ.get("SOAK_SEED", "1")),
                          [f for f in os.environ.get("SOAK_CELLS", "").split(",") if f])
             else 0)
